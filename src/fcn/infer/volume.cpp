#include "fcn/infer/volume.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <tuple>
#include <type_traits>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/infer/picture.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

void check_options(const VolumeOptions& options, const NiftiVolume& volume, int64_t classes, const std::string& source) {
  VolumeWindow window;
  window.values = options.window, window.percentiles = options.percentiles;
  if (const auto problem = window.problem(); !problem.empty()) fail("VolumeOptions", problem);
  if (options.min_object < 1) fail("VolumeOptions.min_object", "must be at least 1 (got " + std::to_string(options.min_object) + ")");
  if (!is_volume_connectivity(options.connectivity))
    fail("VolumeOptions.connectivity", "must be 6, 18 or 26 (got " + std::to_string(options.connectivity) + ")");
  if (!options.probabilities) return;
  const int64_t bytes = classes * volume.slices * volume.height * volume.width * 4;
  if (bytes > limits().max_tensor_bytes)
    fail(source, "VolumeOptions.probabilities: " + std::to_string(classes) + " classes' probabilities over this volume would hold " +
                     std::to_string(bytes >> 20) + " MiB, past the limit of " + std::to_string(limits().max_tensor_bytes >> 20) + " MiB");
}

// A case's channels, checked: one size, and a count the net takes (one channel goes to a net of 3 as gray;
// a 2.5-D net takes each channel's 2N + 1 slices as its channels).
void check_channels(const std::vector<NiftiVolume>& channels, int64_t in_channels, int64_t context, const std::string& source) {
  if (channels.empty()) fail(source, "has no channels");
  for (const auto& channel : channels)
    if (channel.voxels.sizes() != channels.front().voxels.sizes())
      fail(source, "has channels of different sizes: " + c10::str(channels.front().voxels.sizes()) + " and " + c10::str(channel.voxels.sizes()));
  const auto count = static_cast<int64_t>(channels.size());
  if (context > 0) {
    if (count * slices_a_sample(context) != in_channels)
      fail(source, "is a case of " + std::to_string(count) + " channel(s), but the model takes " + std::to_string(in_channels / slices_a_sample(context)) +
                       " channel(s)' slice with " + std::to_string(context) + " neighbour(s) on either side (slice_context: " +
                       std::to_string(in_channels) + " inputs)");
    return;
  }
  if (count != in_channels && !(count == 1 && in_channels == 3))
    fail(source, "is a case of " + std::to_string(count) + " channel(s) but the model takes " + std::to_string(in_channels) +
                     (count == 1 ? " (its other channels: nnU-Net's NAME_0001.nii.gz ... beside NAME_0000, or a 4-D file)" : ""));
}

// The pixels a volume's slices are resampled to for the net (options', else the model's; none where not
// resampled), checked against the predictor's own resize and scales.
std::optional<std::array<double, 2>> pixels_for_net(const Predictor& predictor, const VolumeOptions& options) {
  const auto pixel_mm = volume_pixels(options, predictor.model().meta);
  if (!pixel_mm) return pixel_mm;
  if (const auto problem = pixel_mm_problem(*pixel_mm); !problem.empty()) fail("VolumeOptions.pixel_mm", problem);
  const auto& given = predictor.options();
  if (given.resize_height > 0 || given.scales != std::vector<double>{1.0})
    fail("VolumeOptions.resample", "slices resampled to " + number_text((*pixel_mm)[0]) + " x " + number_text((*pixel_mm)[1]) +
                                       " mm pixels (the model's, or VolumeOptions.pixel_mm) cannot also be resized or scaled "
                                       "(PredictOptions.resize, PredictOptions.scales): give one");
  return pixel_mm;
}

// The predictions of slices given together (one pass where the predictor runs them so), one at a time
// where the pass fails, each slice's error kept for its own result.
std::vector<SliceResult> segment_pass(const Predictor& predictor, std::vector<SliceResult> pass) {
  std::vector<torch::Tensor> images;
  std::vector<std::string> sources;
  for (const auto& slice : pass) images.push_back(slice.image), sources.push_back(slice.source);
  const auto predictions = predictor.pass_or_nothing(images, sources);  // empty: one at a time
  for (size_t k = 0; k < pass.size(); ++k) {
    if (!predictions.empty()) {
      pass[k].prediction = predictions[k];
      continue;
    }
    try {
      pass[k].prediction = predictor(pass[k].image, pass[k].source);
    } catch (const Error&) {
      pass[k].error = std::current_exception();
    } catch (const c10::Error&) {
      pass[k].error = std::current_exception();
    } catch (const std::bad_alloc&) {
      pass[k].error = std::current_exception();
    }
  }
  return pass;
}

// The slice's result into the volume's tensors; false where on_slice says stop.
bool gather(VolumeSegmentation& result, const SliceResult& slice, const std::function<bool(const SliceResult&)>& on_slice) {
  const int64_t k = slice.slice;
  if (slice.error) {
    result.failed_slices.push_back(k);
  } else {
    put_slice(result.labels, result.cut, k, slice.prediction.labels);
    if (result.probabilities.defined()) put_slice(result.probabilities, result.cut, k, slice.prediction.probs);
  }
  result.slices_done = k + 1;
  return !on_slice || on_slice(slice);
}

// Each chosen class's largest object through the volume kept (slices not reached are void: no objects), its
// other objects background: the objects counted through the volume, then made background page by page as
// stored (no volume of ids: 8 bytes a voxel).
void keep_largest(VolumeSegmentation& result, const std::vector<int64_t>& classes, int connectivity) {
  VolumeObjects objects(result.void_label, 1, connectivity);
  const int64_t pages = result.labels.size(0);
  for (int64_t k = 0; k < pages; ++k) objects.add(result.labels[k]);
  const auto drop = largest_objects_kept(objects.object_classes(), objects.object_voxels(), classes).logical_not();
  for (int64_t k = 0; k < pages; ++k) {
    auto slice = result.labels[k];
    slice.masked_fill_(drop.index({objects.page(k, slice)}), 0);  // page k read before its labels change
  }
}

// The ids of `objects` through the volume (void slices make none), numbered as VolumeObjects numbers them over
// its pages as stored, each page labelled once: its components written into the volume of ids, then numbered in
// place. int32, 4 bytes a voxel (int64 past 2^31 - 1 objects).
torch::Tensor object_ids(const VolumeSegmentation& result, VolumeObjects& objects) {
  const int64_t pages = result.labels.size(0);
  auto ids = torch::zeros(result.labels.sizes(), torch::kInt);
  for (int64_t k = 0; k < pages; ++k) {
    auto page = ids[k];
    objects.add(result.labels[k], &page);
  }
  if (objects.count() > std::numeric_limits<int32_t>::max()) ids = ids.to(torch::kLong);
  for (int64_t k = 0; k < pages; ++k) {
    auto page = ids[k];
    objects.number_page(k, page);
  }
  return ids;
}

void find_objects(VolumeSegmentation& result, int64_t min_object, int connectivity, int64_t classes) {
  VolumeObjects objects(result.void_label, min_object, connectivity);
  result.objects = object_ids(result, objects);
  result.object_count = objects.count();
  result.objects_per_class = objects.per_class(classes);
}

// keep_largest and find_objects in one labelling (--largest with objects): every object found once, the ones
// not kept made background, and the kept ones of min_object voxels or more renumbered in their order, 1, 2, ...
// That is what find_objects gives over the filtered labels: making other objects background changes no kept
// object's voxels, nor its first page, class and pixel, by which VolumeObjects numbers them.
void keep_largest_and_find(VolumeSegmentation& result, const std::vector<int64_t>& chosen, int64_t min_object, int connectivity,
                           int64_t classes) {
  VolumeObjects objects(result.void_label, 1, connectivity);  // specks too: each class's largest is chosen among all its objects
  auto ids = object_ids(result, objects);
  const auto& object_class = objects.object_classes();
  const auto& object_voxels = objects.object_voxels();
  const auto kept = largest_objects_kept(object_class, object_voxels, chosen);
  const bool* keep = kept.data_ptr<bool>();
  std::vector<int64_t> renumber(object_class.size(), 0);
  result.objects_per_class.assign(static_cast<size_t>(std::max<int64_t>(classes, 0)), 0);
  result.object_count = 0;
  for (size_t id = 1; id < object_class.size(); ++id) {
    if (!keep[id] || object_voxels[id] < min_object) continue;
    renumber[id] = ++result.object_count;
    if (object_class[id] >= 0 && object_class[id] < classes) ++result.objects_per_class[static_cast<size_t>(object_class[id])];
  }
  const auto apply = [&](auto* labels, auto* id) {
    for (int64_t i = 0, n = ids.numel(); i < n; ++i) {
      const auto object = static_cast<size_t>(id[i]);
      if (!keep[object]) labels[i] = 0;
      id[i] = static_cast<std::remove_pointer_t<decltype(id)>>(renumber[object]);
    }
  };
  const bool byte = result.labels.scalar_type() == torch::kByte, narrow = ids.scalar_type() == torch::kInt;
  if (byte && narrow) apply(result.labels.data_ptr<uint8_t>(), ids.data_ptr<int32_t>());
  else if (byte) apply(result.labels.data_ptr<uint8_t>(), ids.data_ptr<int64_t>());
  else if (narrow) apply(result.labels.data_ptr<int32_t>(), ids.data_ptr<int32_t>());
  else apply(result.labels.data_ptr<int32_t>(), ids.data_ptr<int64_t>());
  result.objects = std::move(ids);
}

}  // namespace

VolumeSegmentation segment_volume(const Predictor& predictor, const NiftiVolume& volume, const VolumeOptions& options,
                                  const std::function<bool(const SliceResult&)>& on_slice, const std::string& source) {
  return segment_volume(predictor, std::vector<NiftiVolume>{volume}, options, on_slice, source);
}

VolumeSegmentation segment_volume(const Predictor& predictor, const std::vector<NiftiVolume>& channels, const VolumeOptions& options,
                                  const std::function<bool(const SliceResult&)>& on_slice, const std::string& source) {
  const int64_t classes = predictor.model().net->label_classes();
  const int64_t context = predictor.model().meta.slice_context;
  check_channels(channels, predictor.model().net->in_channels(), context, source);
  const auto& volume = channels.front();
  check_options(options, volume, classes, source);
  VolumeSegmentation result;
  VolumeWindow how;
  how.values = options.window, how.percentiles = options.percentiles;
  for (const auto& channel : channels) result.windows.push_back(how.of(channel));
  result.window = result.windows.front();
  result.slice_context = context;
  result.axes = options.axes ? *options.axes : predictor.model().meta.axes;
  if (!result.axes.empty()) result.cut = nifti_slice_axes(volume, result.axes, source);
  const auto shape = sliced_shape(volume, result.cut);  // the cut's slices, height, width
  result.slices = shape[0];
  result.pixel_mm = pixels_for_net(predictor, options);
  std::tie(result.net_height, result.net_width) =
      result.pixel_mm ? resampled_slice_size(volume, *result.pixel_mm, source, result.cut) : std::make_pair(shape[1], shape[2]);
  const auto resampled = result.net_height != shape[1] || result.net_width != shape[2];
  const auto net = resampled ? predictor.resized(result.net_height, result.net_width) : predictor;  // a copy sharing the net
  result.void_label = classes <= 255 ? 255 : 65535;
  result.class_names = predictor.model().meta.class_names;
  result.palette = predictor.model().meta.palette;
  result.labels = torch::full({volume.slices, volume.height, volume.width}, result.void_label, classes <= 255 ? torch::kByte : torch::kInt);
  if (options.probabilities)
    result.probabilities = torch::full({classes, volume.slices, volume.height, volume.width}, std::numeric_limits<float>::quiet_NaN(), torch::kFloat);
  const size_t most = net.passes_together() ? kImagesPerPass : 1;
  std::vector<SliceResult> pass;
  bool going = true;
  for (int64_t k = 0; k < result.slices && going; ++k) {
    SliceResult slice;
    slice.slice = k;
    slice.source = source + " slice " + std::to_string(k);
    slice.image = nifti_case_slice(channels, k, result.windows, context, result.cut);
    pass.push_back(std::move(slice));
    if (pass.size() < most && k + 1 < result.slices) continue;
    for (const auto& done : segment_pass(net, std::move(pass)))
      if (going) going = gather(result, done, on_slice);
    pass.clear();
  }
  if (options.largest && options.objects) keep_largest_and_find(result, *options.largest, options.min_object, options.connectivity, classes);
  else if (options.largest) keep_largest(result, *options.largest, options.connectivity);  // no volume of ids held
  else if (options.objects) find_objects(result, options.min_object, options.connectivity, classes);
  return result;
}

std::optional<std::array<double, 2>> volume_pixels(const VolumeOptions& options, const ModelMeta& meta) {
  if (!options.resample) return std::nullopt;
  return options.pixel_mm ? options.pixel_mm : meta.pixel_mm;
}

torch::Tensor volume_slice_image(const std::vector<NiftiVolume>& channels, const VolumeSegmentation& result, int64_t k) {
  if (channels.size() != result.windows.size() || !result.labels.defined() || channels.front().voxels.sizes() != result.labels.sizes())
    fail("volume_slice_image", "the channels are not those of the result (" + std::to_string(channels.size()) + " channel(s), " +
                                   std::to_string(result.windows.size()) + " window(s))");
  if (k < 0 || k >= result.slices)
    fail("volume_slice_image", "has no slice " + std::to_string(k) + " (slices 0.." + std::to_string(result.slices - 1) + ")");
  return nifti_case_slice(channels, k, result.windows, result.slice_context, result.cut);
}

torch::Tensor volume_slice_labels(const VolumeSegmentation& result, int64_t k) {
  if (!result.labels.defined() || k < 0 || k >= result.slices)
    fail("volume_slice_labels", "has no slice " + std::to_string(k) + " (slices 0.." + std::to_string(result.slices - 1) + ")");
  return cut_slice(result.labels, result.cut, k);
}

torch::Tensor volume_overlay(const NiftiVolume& volume, const VolumeSegmentation& result) {
  if (!result.labels.defined() || result.labels.size(0) != volume.slices) fail("volume_overlay", "the result is not this volume's");
  const int64_t slices = result.slices, shown = std::min<int64_t>(slices, 16);
  std::vector<torch::Tensor> tiles;
  for (int64_t i = 0; i < shown; ++i) {
    const int64_t k = shown == 1 ? 0 : (i * (slices - 1) + (shown - 1) / 2) / (shown - 1);  // evenly spaced, first and last included
    const auto labels = cut_slice(result.labels, result.cut, k);
    auto tile = enlarge(blend(to_rgb8(nifti_slice_image(volume, k, result.window, result.cut)), colorize(labels, result.palette), 0.5), 128);
    if (result.objects.defined()) tile = with_outlines(tile, enlarge(cut_slice(result.objects, result.cut, k), 128));
    tiles.push_back(tile);
  }
  const auto& names = result.class_names;
  const auto counts = torch::bincount(result.labels.flatten());  // uint8 or int32 labels as they lie (void's bin past the names)
  std::vector<int64_t> present;
  for (int64_t c = 0; c < std::min<int64_t>(counts.size(0), static_cast<int64_t>(names.size())); ++c)
    if (counts[c].item<int64_t>() > 0) present.push_back(c);
  return with_legend(grid(tiles, std::min<int64_t>(shown, 4)), present, names, result.palette);
}

}  // namespace fcn
