// Multi-page TIFF stacks and NIfTI volumes as dataset folders. Microscopy volumes come as stacks, and so does the U-Net
// paper's own data (ISBI 2012 EM segmentation: train-volume.tif, 30 pages of 512 x 512, and
// train-labels.tif, 0 = membrane, 255 = cell). fcn trains on folders of images/ + masks/, so a stack
// pair becomes one: page k is images/k.png and masks/k.png, which fcn data split then splits.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fcn/formats/nifti.h"

namespace fcn {

// Writes page k of `images_tiff` to OUT/images/NNN.png and, where `masks_tiff` is given, its page k
// to OUT/masks/NNN.png (NNN: k, zero-padded to 3 or more digits), each as stored: 8-bit, or 16-bit
// for gray pages that use the depth (a 0/255 mask reads as background / foreground, a 16-bit one as
// class indices); an image page of more than 4 channels (a multispectral stack), of 16-bit colour or of
// float samples as OUT/images/NNN.npy (C x H x W: uint8, uint16 or float32, the values as read_image reads
// them back). fcn::Error naming the file where the stacks differ in page count or page size, or OUT
// already holds images/ or masks/. The folders are written as
// OUT/.images.partial and OUT/.masks.partial and renamed when every page is in: a run stopped midway
// leaves no half folder under the names (and the next run starts afresh). `progress(done, total)` is
// called as pages are written; after an error nothing is left behind. Returns the pages written.
int64_t unstack_tiff(const std::string& images_tiff, const std::string& masks_tiff, const std::string& out_dir,
                     const std::function<void(int64_t, int64_t)>& progress = {});

// Names from the dataset.json of the Medical Segmentation Decathlon or nnU-Net task whose folder of volumes
// `volumes_dir` is (imagesTr/, labelsTs/: the file is beside it, in its parent): the object `key`
// ("labels", "modality", nnU-Net v2's "channel_names") as {"0": "background", "1": "left atrium"} or nnU-Net
// v2's {"background": 0, "left atrium": 1}, by index. Empty where the file is missing or malformed or lacks
// the key (plain names then; nnU-Net v2's region lists are left out).
std::map<int64_t, std::string> task_names(const std::string& volumes_dir, const std::string& key);

// A NIfTI volume (MRI, CT: .nii, .nii.gz) and its label volume the same way, slice k along the third
// axis as images/NNN.png and masks/NNN.png (rows j, columns i, as stored): the voxels mapped linearly
// by `window` (fixed values, the volume's own percentiles, else its minimum..maximum) to a 16-bit gray PNG, as fcn predict
// maps a volume's slices for the net; labels as 8-bit PNGs (16-bit past 255). A case of 2 to 4
// channels (a 4-D file, or nnU-Net's NAME_0000.nii.gz with NAME_0001... beside it: read_nifti_case; a later
// channel's file named stands for its case, nifti_case_file) is written as PNGs of that many 16-bit samples (gray + alpha, RGB, RGBA),
// a case of more as uint16 C x H x W .npy arrays (images/NNN.npy; read_image reads both), each channel mapped by
// the window or its own minimum..maximum, and OUT/channels.json names the channels (the task's
// dataset.json "modality" or "channel_names" beside the volumes' folder, else "channel c") so that fcn
// train gives a new net that many inputs. fcn::Error naming the
// file where the volumes differ in size or a label is not an integer 0..65535. Labels up to 2..254
// get OUT/classes.json ("background", "label 1", ...: rename them there) unless one is there, as a
// folder without one reads background / foreground only. Returns the slices written, the window used
// (channel 0's), the classes classes.json names (0: none written) and every channel's window.
// How volumes become slices: the window mapping voxels to 0..1, and for 2.5-D nets `context` N (0..
// kMostSliceContext): each image holds a slice with its N neighbours on either side as its channels (k-1, k,
// k+1 for 1: an RGB PNG; the end slices repeated past the ends), of each of a case's channels in turn (past 4
// planes a .npy array), and channels.json says so ("context": N) so that fcn train makes a net fcn predict
// gives volumes to that way (ModelMeta::slice_context).
// `pixel_mm` {x, y}: each slice resampled in-plane to pixels of that side in mm (bilinearly; labels by
// resample_labels), whatever each volume's voxel sides (nnU-Net resamples to the cases' median spacing:
// check_volume_folder's median_mm), and OUT/slicing.json says so, so that fcn train gives the net's model
// those pixels (ModelMeta::pixel_mm) and fcn predict resamples volumes to them. fcn::Error naming the
// volume whose header gives no voxel size. None: slices as stored.
// `axes` ("RAS"): each volume cut into slices as a volume stored so would be (nifti_slice_axes: axial slices
// whatever plane a case was stored in, all the same way round), its labels alike, and slicing.json says so
// (ModelMeta::axes). fcn::Error naming the volume whose header gives no orientation. "": slices as stored.
struct NiftiSlicing {
  VolumeWindow window;
  int64_t context = 0;
  std::optional<std::array<double, 2>> pixel_mm;
  std::string axes;
  NiftiSlicing(VolumeWindow w = {}, int64_t c = 0, std::optional<std::array<double, 2>> mm = std::nullopt,  // NOLINT: a window alone converts
               std::string codes = "")
      : window(std::move(w)), context(c), pixel_mm(mm), axes(std::move(codes)) {}
};

struct NiftiUnstacked {
  int64_t slices = 0;
  std::pair<double, double> window;
  int64_t classes = 0;
  std::vector<std::pair<double, double>> windows;
  std::vector<std::string> warnings;  // "LABELS: ..." where the label volume does not lie over its scan (nifti_misalignment)
  int64_t height = 0, width = 0;      // the slices' size as written (resampled to pixel_mm where given)
};
NiftiUnstacked unstack_nifti(const std::string& images_nifti, const std::string& masks_nifti, const std::string& out_dir,
                             const NiftiSlicing& slicing = {},
                             const std::function<void(int64_t, int64_t)>& progress = {});

// A folder of NIfTI volumes and a folder of their label volumes, the same file names (a Medical
// Segmentation Decathlon task's imagesTr/ and labelsTr/), as one dataset folder: slice k of NAME.nii.gz
// as images/NAME_NNN.png and masks/NAME_NNN.png, written as unstack_nifti writes them, each volume's
// voxels mapped by `window` (its own percentiles where it gives them, else by its own minimum..maximum, as fcn predict maps a volume by
// default). Hidden files (macOS's ._NAME.nii.gz) are left out. nnU-Net's layout pairs too: imagesTr/
// NAME_0000.nii.gz (channel 0; NAME_0001, ... its other channels) with labelsTr/NAME.nii.gz, slices
// named NAME_NNN. Cases of several channels are written as unstack_nifti writes them, every case with
// the same count (else fcn::Error). With val_fraction in (0, 1) and labels,
// whole volumes are held out for validation (write_split_lists by volume, from `seed`): no patient's
// slices in both splits. fcn::Error naming the file: a volume without its label volume, two volumes of
// one name (a.nii and a.nii.gz), those unstack_nifti names; nothing is left behind then.
struct NiftiFolderUnstacked {
  int64_t volumes = 0, slices = 0;
  int64_t channels = 1;                            // each case's
  std::vector<std::vector<std::pair<double, double>>> windows;  // each case's channels' windows, in name order
  int64_t classes = 0;  // the label volumes' largest label + 1 (0: no labels)
  int64_t named = 0;    // the classes classes.json names (0: none written)
  size_t train_slices = 0, val_slices = 0;  // with val_fraction
  std::vector<std::string> val_volumes;     // the volumes held out, by name (NAME of NAME.nii.gz), sorted
  std::vector<std::string> warnings;        // "LABELS: ..." for each label volume that does not lie over its scan
};
NiftiFolderUnstacked unstack_nifti_folder(const std::string& images_dir, const std::string& masks_dir, const std::string& out_dir,
                                          const NiftiSlicing& slicing = {}, double val_fraction = 0,
                                          uint64_t seed = 0, const std::function<void(int64_t, int64_t)>& progress = {});

// Whether `dir` is a folder of NIfTI cases rather than a dataset folder: no splits (dataset_splits), and a .nii or
// .nii.gz in it that is not hidden (macOS's ._NAME.nii.gz alone makes none).
bool is_volume_folder(const std::string& dir);

// What a folder of NIfTI cases holds, from their headers alone (no voxel is read): each case's size,
// channels, voxel sizes and orientation, and what a 2-D net trained on its slices would suffer (nnU-Net's
// dataset fingerprint, in part). Cases as unstack_nifti_folder pairs them (nnU-Net's channel files as one).
struct VolumeCase {
  std::string name, file;                 // the case's name and its (channel 0's) file
  int64_t channels = 1, width = 0, height = 0, slices = 0;  // as stored, or as cut in `orient`
  std::array<double, 3> voxel_mm{};       // x, y, z (NaN: the header gives none); with `orient`, columns', rows', slices'
  std::string axes;                       // nifti_axis_codes, as stored ("RAS", "LPS", ...; "": no map)
  std::string mask;                       // with a masks folder: its label volume ("": none found)
  std::vector<int64_t> labels;            // the labels present in it, ascending
};
struct VolumeFolderReport {
  std::vector<VolumeCase> cases;          // in name order
  std::array<double, 3> median_mm{};      // each side's median over the cases that give it
  // Mixed orientations (slices of other planes or mirrored), in-plane voxel sizes more than 1.5x apart
  // (the same organ at other scales: NiftiSlicing.pixel_mm resamples them), missing voxel sizes or maps, mixed channel counts.
  std::vector<std::string> warnings;
  std::vector<std::string> errors;        // "FILE: ..." for each case whose header fcn cannot read (the others listed)
  bool mixed_scales = false;              // in-plane voxel sides more than 1.5x apart: unstack with --spacing median
  bool mixed_orientations = false;        // cases stored in several orientations: unstack with --orient RAS
  std::vector<int64_t> label_voxels;      // with a masks folder: each label's voxels over the label volumes read
};
// With `masks_dir` (labelsTr/), each case's label volume is read too, as nnU-Net's dataset check reads them:
// errors for a case without one, one of another size, voxels that are not labels 0..65535, labels the task's
// dataset.json (beside images_dir) does not name; warnings for voxel sizes or a place other than the case's
// (nifti_misalignment) and label volumes no case pairs with. Every problem is listed, not the first alone.
// `progress(done, total)` after each case.
// With `orient` (a code, e.g. "RAS"), each case's size, voxel sides, median_mm and the scale warning are those of
// the slices fcn data unstack --orient cuts (an error for a case whose map cannot tell them); without it, as
// stored, but where the cases are stored in several orientations the scale warning judges their RAS cut.
VolumeFolderReport check_volume_folder(const std::string& images_dir, const std::string& masks_dir = "",
                                       const std::function<void(int64_t, int64_t)>& progress = {}, const std::string& orient = "");

}  // namespace fcn
