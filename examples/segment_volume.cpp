// Segment a CT or MRI volume (NIfTI-1) with a trained fcn model through the library API, slice by slice:
//   segment_volume MODEL.fcn VOLUME.nii.gz OUT [LOW HIGH]
//   -> OUT-labels.nii.gz and OUT-instances.nii.gz (the objects through the volume) over the scan's
//      header, OUT-overlay.png (16 slices); LOW HIGH: the voxel window (CT: -1000 400), else the volume's range.
//   A case of several channels (MRI modalities) goes whole to a net of that many inputs: nnU-Net's
//   NAME_0000.nii.gz with NAME_0001.nii.gz ... beside it, or a 4-D volume.
#include <iostream>
#include <string>
#include <vector>

#include "fcn/formats/nifti.h"
#include "fcn/formats/png.h"
#include "fcn/infer/volume.h"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) {
    std::cerr << "usage: segment_volume MODEL.fcn VOLUME.nii.gz OUT [LOW HIGH]\n";
    return 2;
  }
  try {
    const fcn::Predictor predict{argv[1], torch::kCPU};
    const std::vector<fcn::NiftiVolume> channels = fcn::read_nifti_case(argv[2]);
    const fcn::NiftiVolume& volume = channels.front();  // the header the labels go over
    fcn::VolumeOptions options;
    if (argc == 6) options.window = {{std::stod(argv[4]), std::stod(argv[5])}};
    options.objects = true;
    const fcn::VolumeSegmentation result = fcn::segment_volume(predict, channels, options, {}, argv[2]);
    for (const int64_t k : result.failed_slices) std::cerr << "slice " << k << " could not be segmented (void)\n";

    const std::string out = argv[3];
    fcn::write_nifti_labels(out + "-labels.nii.gz", volume, result.labels);
    fcn::write_nifti_labels(out + "-instances.nii.gz", volume, result.objects);
    fcn::write_png(out + "-overlay.png", fcn::volume_overlay(volume, result));
    std::cout << volume.slices << " slices, " << result.object_count << " object(s)\n";
  } catch (const std::exception& e) {
    std::cerr << "segment_volume: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
