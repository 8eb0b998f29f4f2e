// NIfTI-1 volumes (.nii, .nii.gz): the format of MRI and CT research data (and what medical
// segmentation tools — ITK-SNAP, 3D Slicer, nnU-Net — read and write). A volume is segmented slice by
// slice along its third axis as a TIFF stack is page by page; its labels go back into a NIfTI volume
// with the input's header, so that they open aligned over the scan in every viewer. Core layer: zlib
// only (gzip), no OpenCV.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace fcn {

// A volume's voxels and the header they came with. Voxels are slices x height x width (NIfTI's
// k, j, i: slice k is the image of rows j and columns i, as stored, without a viewer's flips), in
// the type they are stored in (uint8, int8, int16, int32, float32, float64; uint16 as int32 and
// uint32 as int64), or float32 where the header scales them (scl_slope, scl_inter). `header` is the
// file's 348-byte header as read, in its byte order (`swapped`: big-endian), kept so that volumes
// written over it carry its geometry: voxel sizes, qform and sform orientation, units.
struct NiftiVolume {
  std::vector<char> header;
  bool swapped = false;
  int64_t width = 0, height = 0, slices = 0;
  torch::Tensor voxels;
};

// .nii or .nii.gz (any letter case), as fcn takes volumes by name.
bool is_nifti_path(const std::string& path);
// A volume's name: NAME of a/b/NAME.nii.gz or NAME.nii (any letter case); another file's stem.
std::string nifti_stem(const std::string& path);

// The volume at `path` (.nii or .nii.gz, gzip read as it streams). fcn::Error naming the file where it
// is not a single-file NIfTI-1 volume (a .hdr/.img pair, NIfTI-2, a 4-D series of several volumes, a
// data type fcn does not read, RGB), where a slice exceeds the image limits, or where the file holds
// fewer voxels than its header says. Only as many bytes as the header declares are ever decompressed.
NiftiVolume read_nifti(const std::string& path);
// The header alone, reading no voxel: sizes, voxel sizes, the map (nifti_affine); voxels left undefined.
// `channels` (where given) gets the 4th dimension's count, 1 for a 3-D file.
NiftiVolume read_nifti_header(const std::string& path, int64_t* channels = nullptr);
// The header's sizes alone (slices x height x width), reading no voxel; `channels`: a 4th dimension
// of channels allowed, as read_nifti_channels allows it.
std::vector<int64_t> nifti_shape(const std::string& path, bool channels = false);

// Volumes of several channels (MRI modalities: FLAIR, T1, T1-Gd, T2; T2 and ADC), in either layout
// medical data comes in. Each channel is a NiftiVolume as read_nifti gives it.
constexpr int64_t kMostNiftiChannels = 16;
// One file whose 4th dimension holds up to kMostNiftiChannels channels (the Medical Segmentation
// Decathlon stores a case so: 240 x 240 x 155 x 4), channel c its c-th 3-D volume, each with the file's
// header; a 3-D file gives one.
std::vector<NiftiVolume> read_nifti_channels(const std::string& path);
// nnU-Net's layout, a file per channel: for NAME_0000.nii.gz with NAME_0001.nii.gz beside it, the files
// NAME_0000, NAME_0001, ... (the same extension) up to the first number missing; any other path alone.
std::vector<std::string> nifti_channel_files(const std::string& path);
// nnU-Net's naming of a case's channel files: {NAME, c} for the stem NAME_000c (4 digits after the
// last '_'), else {"", -1}. Channel 0's stem also names the case's label volume, NAME.nii.gz.
std::pair<std::string, int> nnunet_channel(const std::string& stem);
// NAME_000k.nii.gz (k >= 1) with NAME_0000 beside it: a later channel of that case, not a case itself.
bool is_later_channel_file(const std::string& path);
// The case a file is a channel of, by its channel 0's file: NAME_0000's for a later channel file, else `path`.
std::string nifti_case_file(const std::string& path);
// A case's name: NAME for NAME_0000.nii.gz with later channels beside it, else nifti_stem (a
// single-channel NAME_0000 keeps its name, as fcn has named it).
std::string nifti_case_name(const std::string& path);
// A case's channels: nifti_channel_files' files read (3-D each, one size: fcn::Error naming the one that
// differs), or else read_nifti_channels of the one file.
std::vector<NiftiVolume> read_nifti_case(const std::string& path);
// The same from an uncompressed .nii's bytes; `path` names it in errors.
NiftiVolume parse_nifti(const std::vector<char>& bytes, const std::string& path);

// A label volume over `like`: `labels` (slices x height x width integers, `like`'s size) stored as
// uint8 where they fit, else uint16, else int32, with `like`'s geometry and NIfTI's label intent;
// gzip-compressed where `path` ends in .gz. Atomic (temporary file + rename).
void write_nifti_labels(const std::string& path, const NiftiVolume& like, const torch::Tensor& labels);
// Class probabilities over `like`: K x slices x height x width, written as a 4-D float32 volume whose
// 4th dimension is the class (what nibabel reads as x, y, z, K), with `like`'s geometry and a 0..1
// display range; gzip-compressed where `path` ends in .gz. Atomic.
void write_nifti_probabilities(const std::string& path, const NiftiVolume& like, const torch::Tensor& probabilities);

// One voxel's volume in millilitres from the header's voxel sizes (pixdim) and spatial unit (metres,
// millimetres, micrometres; unknown read as millimetres, as viewers read it); NaN where the sizes are
// missing or not positive.
double nifti_voxel_ml(const NiftiVolume& volume);
// A voxel's sides {x, y, z} (columns i, rows j, slices k) in millimetres, read as nifti_voxel_ml reads them;
// NaN where a size is missing or not positive.
std::array<double, 3> nifti_voxel_mm(const NiftiVolume& volume);

// The header's map from voxel (i, j, k) to place (x, y, z) in mm, 3 x 4 row-major, x = a[0] i + a[1] j +
// a[2] k + a[3]: the sform where sform_code > 0, else the qform (rotation quaternion, voxel sizes, qfac,
// offset) where qform_code > 0; none where the header gives neither (voxel sizes alone).
std::optional<std::array<double, 12>> nifti_affine(const NiftiVolume& volume);
// Where each voxel axis (i, j, k) points, as nibabel's aff2axcodes names it in NIfTI's RAS+ world: the
// world axis it runs along most, R/L, A/P or S/I by its sign ("RAS", "LPS", "LAS", ...); "" without a map.
// The third letter says which planes fcn's slices are: S/I axial, A/P coronal, R/L sagittal.
std::string nifti_axis_codes(const NiftiVolume& volume);
// The planes of a volume's slices from its axis codes' third letter: "axial", "coronal", "sagittal"; "" for "".
std::string slice_plane(const std::string& axis_codes);
// Whether `volume`'s voxels lie where `other`'s do (labels over their scan, a prediction over its truth),
// where both headers give a map: "" where they do (axes within 2.6 degrees, first voxels within half the
// smallest voxel side); else a phrase naming `other_name`: an axis turned or flipped, or the first voxels
// apart by so many mm. Files paired voxel for voxel that fail it do not pair the same places.
std::string nifti_misalignment(const NiftiVolume& volume, const NiftiVolume& other, const std::string& other_name);

// How a volume is cut into slices for a net: the voxel axis (0 i, 1 j, 2 k) its slices go along and those its
// rows and columns run along, each maybe reversed. The default is as stored: slices along k, rows j, columns i.
// Cut by nifti_slice_axes(volume, "RAS"), every volume gives a net the same planes the same way round whatever its
// stored orientation (nibabel's as_closest_canonical without the copy): axial slices from the feet up, rows from
// the back forward, columns from the patient's left to right.
struct SliceAxes {
  std::array<int, 3> axis{0, 1, 2};             // the voxel axis of columns, rows, slices
  std::array<bool, 3> reversed{false, false, false};
  bool stored() const { return axis == std::array<int, 3>{0, 1, 2} && reversed == std::array<bool, 3>{false, false, false}; }
};
// The axes that cut `volume` as a volume stored in `codes` ("RAS", "LPS", ...: one of R/L, A/P, S/I each) would be
// cut as stored, from its header's map (nifti_axis_codes). fcn::Error naming `source`: codes that are not such,
// a header with no map, or axes too oblique to tell (two voxel axes along one world axis).
SliceAxes nifti_slice_axes(const NiftiVolume& volume, const std::string& codes, const std::string& source);
// Whether `codes` are three letters, one of R/L, A/P and S/I each (any order).
bool valid_axis_codes(const std::string& codes);
// fcn::Error naming `subject` where `codes` are not valid_axis_codes: the one wording of that error.
void check_axis_codes(const std::string& codes, const std::string& subject);
// The number of slices, and their height and width, `axes` cut a volume of slices x height x width into.
std::array<int64_t, 3> sliced_shape(const NiftiVolume& volume, const SliceAxes& axes);
// The voxel sides (mm; NaN where the header gives none) of the cut's columns, rows and slices.
std::array<double, 3> sliced_voxel_mm(const NiftiVolume& volume, const SliceAxes& axes);
// Slice k as `axes` cut it, of a tensor laid out as a volume's voxels (slices x height x width, or any leading
// dimensions before those three, as K x slices x height x width probabilities): a view, or a copy where reversed.
torch::Tensor cut_slice(const torch::Tensor& voxels, const SliceAxes& axes, int64_t k);
// The inverse: `slice` (leading dimensions, then the cut's height x width) written where slice k lies in `voxels`.
void put_slice(torch::Tensor& voxels, const SliceAxes& axes, int64_t k, const torch::Tensor& slice);

// Slice k as an image for a net: 1 x H x W float32 in [0, 1], the voxels mapped linearly from
// window.first to window.second (clamped). nifti_window(): the volume's own minimum and maximum, the
// window where none is given (a CT user gives one in Hounsfield units, e.g. -1000,400).
torch::Tensor nifti_slice_image(const NiftiVolume& volume, int64_t k, std::pair<double, double> window, const SliceAxes& axes = {});
std::pair<double, double> nifti_window(const NiftiVolume& volume);
// Slice k of a case as a net sees it (and fcn data unstack writes it): each channel's slice mapped by
// its window, C x H x W in [0, 1]; with `context` N > 0 (a 2.5-D net), each channel's slices k - N ..
// k + N instead, the end slices repeated past the ends: C (2N + 1) planes, channel by channel.
// Slices are cut by `axes` (as stored by default).
torch::Tensor nifti_case_slice(const std::vector<NiftiVolume>& channels, int64_t k, const std::vector<std::pair<double, double>>& windows,
                               int64_t context = 0, const SliceAxes& axes = {});
// In-plane resampling (nnU-Net's, for a 2-D net): slices whose pixels are `pixel_mm` {x, y} mm wide and
// high, whatever the scanner's voxel sides, so that a net sees one anatomy at one scale. "" where
// pixel_mm is usable (finite, 0.001..1000 mm), else what is wrong: the one check of a pixel size.
std::string pixel_mm_problem(const std::array<double, 2>& pixel_mm);
// The height and width of `volume`'s slices resampled to pixel_mm: round(height x voxel y / pixel y),
// round(width x voxel x / pixel x), at least 1. fcn::Error naming `source`: pixel_mm_problem, a header that
// gives no in-plane voxel size, a slice past the image limits.
// Slices cut by `axes`: their rows' and columns' voxel sides.
std::pair<int64_t, int64_t> resampled_slice_size(const NiftiVolume& volume, const std::array<double, 2>& pixel_mm, const std::string& source,
                                                 const SliceAxes& axes = {});
// Labels (H x W integers, any values: 255 void included) resampled to height x width: each value's
// indicator interpolated bilinearly (half-pixel centres, as images are resampled), the largest taken (the
// lower value where tied), so borders stay smooth and no value is made up (nnU-Net resamples labels so,
// order 1). The labels' dtype kept.
torch::Tensor resample_labels(const torch::Tensor& labels, int64_t height, int64_t width);
// The `low` and `high` percentiles (0..100) of the volume's finite voxels, each interpolated linearly
// between the two voxels it falls between (numpy's percentile): exact, from a copy of the voxels.
std::pair<double, double> nifti_percentile_window(const NiftiVolume& volume, double low, double high);

// How a volume's voxels map to 0..1 for a net: fixed voxel values (CT in Hounsfield units, -1000..400),
// percentiles of each volume's own voxels (MRI, whose intensity scale differs from scan to scan: 0.5..99.5
// leaves out the few hottest voxels that would squeeze the rest into a few grey levels), or, neither
// given, each volume's own minimum..maximum (nifti_window).
struct VolumeWindow {
  std::optional<std::pair<double, double>> values;
  std::optional<std::pair<double, double>> percentiles;
  VolumeWindow() = default;
  VolumeWindow(std::nullopt_t) {}                                                   // NOLINT: as std::optional takes it
  VolumeWindow(std::optional<std::pair<double, double>> fixed) : values(fixed) {}  // NOLINT
  bool given() const { return values.has_value() || percentiles.has_value(); }
  // "" where the window is one fcn can use, else what is wrong: values not finite with low < high,
  // percentiles not 0 <= low < high <= 100, or both given. The one place these bounds are checked.
  std::string problem() const;
  // The window for `volume`; fcn::Error with problem() where there is one.
  std::pair<double, double> of(const NiftiVolume& volume) const;
};

}  // namespace fcn
