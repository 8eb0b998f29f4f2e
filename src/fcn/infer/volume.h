// NIfTI volumes (MRI, CT) segmented slice by slice: each slice along the third axis, as stored, mapped
// to a 0..1 image by a window and given to the Predictor (slices of one size up to 8 a pass, where its
// options allow), the labels gathered into a volume that goes back over the scan's header; optionally
// the class probabilities and the objects through the volume (26-connected unless asked otherwise, data/instances.h).
//
//   fcn::Predictor predict{"unet.fcn"};
//   const fcn::NiftiVolume ct = fcn::read_nifti("ct.nii.gz");
//   fcn::VolumeOptions options;
//   options.window = {{-1000.0, 400.0}};  // Hounsfield units to 0..1
//   options.objects = true;
//   const fcn::VolumeSegmentation result = fcn::segment_volume(predict, ct, options);
//   fcn::write_nifti_labels("ct-labels.nii.gz", ct, result.labels);
//   fcn::write_nifti_labels("ct-instances.nii.gz", ct, result.objects);
//   fcn::write_png("ct-overlay.png", fcn::volume_overlay(ct, result));
//   // MRI of several channels: nnU-Net's BRATS_001_0000.nii.gz, _0001, ... or one 4-D file.
//   const auto mri = fcn::read_nifti_case("BRATS_001_0000.nii.gz");
//   const auto labels = fcn::segment_volume(fcn::Predictor{"brats.fcn"}, mri).labels;
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "fcn/formats/nifti.h"
#include "fcn/infer/predictor.h"

namespace fcn {

struct VolumeOptions {
  // Voxel values mapped to 0..1 (clamped), low to high (for CT, Hounsfield units such as -1000, 400);
  // none: the volume's own minimum to maximum (nifti_window). Give the window the net was trained with.
  std::optional<std::pair<double, double>> window;
  // Else percentiles (0..100) of each volume's (each channel's) own voxels, e.g. 0.5, 99.5 for MRI:
  // nifti_percentile_window.
  std::optional<std::pair<double, double>> percentiles;
  bool probabilities = false;  // also the class probabilities, K x slices x H x W float32
  bool objects = false;        // also the objects through the volume (each class's connected components)
  int64_t min_object = 1;      // objects of fewer voxels in all are left out (id 0, not counted): specks
  int connectivity = 26;       // voxels joined into objects by faces, edges and corners (26), faces and edges (18), faces (6)
  // Keep each class's largest object through the volume (connected as above) and make its other objects
  // background (keep_largest_objects): the classes listed, every class where the list is empty; none
  // where not given. Before `objects` are found; on_slice sees each slice's labels before it.
  std::optional<std::vector<int64_t>> largest;
  // Each slice resampled in-plane (bilinear) to pixels of this side in mm {x, y} for the net, and the net's
  // scores resampled back to the scan's voxels before labels are taken; none given: the pixels the net was
  // trained on (ModelMeta::pixel_mm, where fcn data unstack --spacing made its data), else slices as stored.
  // `resample` false: slices as stored whatever the model says. Needs the volume's voxel sizes (pixdim).
  std::optional<std::array<double, 2>> pixel_mm;
  bool resample = true;
  // The orientation each volume is cut in ("RAS": nifti_slice_axes; axial slices whatever plane it was stored
  // in), the labels put back where its voxels lie; none given: the model's (ModelMeta::axes, where fcn data
  // unstack --orient cut its data); "": slices as stored. Needs the volume's map (sform or qform).
  std::optional<std::string> axes;
};

// What segment_volume's on_slice is given after each slice, in slice order.
struct SliceResult {
  int64_t slice = 0;
  std::string source;      // "SOURCE slice K": what errors name
  torch::Tensor image;     // C x H x W float in [0, 1]: the slice's channels as the net saw them
  Prediction prediction;   // labels undefined where the slice failed
  std::exception_ptr error;  // why it failed (fcn::Error, c10::Error, std::bad_alloc); null where it did not
};

struct VolumeSegmentation {
  // slices x H x W as the volume stores them (whatever `cut`): uint8 class indices (up to 255 classes; else
  // int32), void_label where a slice failed or was not reached (a stop); write_nifti_labels writes it over the scan.
  torch::Tensor labels;
  torch::Tensor probabilities;  // VolumeOptions.probabilities: K x slices x H x W float32, NaN where no labels
  // VolumeOptions.objects: slices x H x W int32 ids (int64 past 2^31 - 1 objects), 0 none, 1..object_count numbered in order of the
  // first slice each is on (within it, class by class, then raster order); void slices make none.
  torch::Tensor objects;
  int64_t object_count = 0;
  std::vector<int64_t> objects_per_class;  // classes 0..K-1
  std::pair<double, double> window;        // what mapped the voxels to 0..1 (channel 0's)
  std::vector<std::pair<double, double>> windows;  // each channel's
  int64_t slice_context = 0;               // the net's (ModelMeta::slice_context): its slices k-N..k+N
  std::optional<std::array<double, 2>> pixel_mm;  // the pixels the slices were resampled to for the net; none: as stored
  std::string axes;                        // the orientation the volume was cut in ("RAS"); "": as stored
  SliceAxes cut;                           // how: slice k of the cut is cut_slice(labels, cut, k)
  int64_t slices = 0;                      // the slices it was cut into (the volume's own unless cut otherwise)
  int64_t net_height = 0, net_width = 0;   // the slices' size as the net saw them (the volume's unless resampled)
  int64_t void_label = 255;                // 65535 past 255 classes
  int64_t slices_done = 0;                 // slices of the cut segmented or failed: all of them unless on_slice stopped it
  std::vector<int64_t> failed_slices;      // void in labels (their errors went to on_slice)
  std::vector<std::string> class_names;
  std::vector<std::array<uint8_t, 3>> palette;

  bool complete() const { return labels.defined() && slices_done == slices; }
};

// Segments every slice of `volume` with `predictor`. A slice that fails (out of memory, NaN scores) is
// void in the labels and the rest go on; on_slice (where given) sees each slice's result, its error
// included, and returns false to stop after it (Ctrl-C). `source` names the volume in errors.
// Errors (fcn::Error naming the option): probabilities past fcn::limits().max_tensor_bytes, a window
// that is not finite and increasing, min_object < 1; resampling (VolumeOptions.pixel_mm) of a volume
// whose header gives no voxel size, or with the predictor's own resize or scales.
VolumeSegmentation segment_volume(const Predictor& predictor, const NiftiVolume& volume, const VolumeOptions& options = {},
                                  const std::function<bool(const SliceResult&)>& on_slice = {},
                                  const std::string& source = "volume");
// The same for a case of several channels (read_nifti_case: MRI modalities), slice k of every channel
// given to the net together, channel c mapped by options.window or else by its own minimum..maximum.
// A 2.5-D net (ModelMeta::slice_context N) is given one channel's slices k-N..k+N together, the end
// slices repeated past the ends, as fcn data unstack --context wrote its training slices.
// fcn::Error naming `source`: channels of different sizes, or a channel count the net does not take (one
// channel goes to a net of 3 as gray; any other count must be the net's).
VolumeSegmentation segment_volume(const Predictor& predictor, const std::vector<NiftiVolume>& channels, const VolumeOptions& options = {},
                                  const std::function<bool(const SliceResult&)>& on_slice = {},
                                  const std::string& source = "volume");

// The pixels segment_volume resamples a volume's slices to for a model of `meta` under `options`:
// options.pixel_mm, else the model's (ModelMeta::pixel_mm); none where options.resample is off or neither
// gives any (slices as stored). Unchecked: segment_volume checks it.
std::optional<std::array<double, 2>> volume_pixels(const VolumeOptions& options, const ModelMeta& meta);

// Slice k as segment_volume gave it to the net (SliceResult.image again): each channel mapped by its
// window in result.windows, or one channel's slices k-N..k+N for a 2.5-D net. For work on a slice after
// the volume is whole (an overlay of the labels that VolumeOptions.largest kept) without holding every
// slice's image. fcn::Error: channels or k not those of the result.
torch::Tensor volume_slice_image(const std::vector<NiftiVolume>& channels, const VolumeSegmentation& result, int64_t k);
// Slice k's labels as the net's labels of it were put into the volume (after VolumeOptions.largest): H x W of
// the cut, in the labels' dtype. fcn::Error: k not a slice of the result.
torch::Tensor volume_slice_labels(const VolumeSegmentation& result, int64_t k);

// A volume's picture: up to 16 slices of the cut evenly spaced through it (first and last included), each shown as
// the net saw it with its labels blended in (alpha 0.5) and its objects outlined in white where there
// are some, in rows of 4 with a legend of the classes present; slices enlarged so the shorter side is at
// least 128 pixels. H x W x 3 uint8 (write_png).
torch::Tensor volume_overlay(const NiftiVolume& volume, const VolumeSegmentation& result);

}  // namespace fcn
