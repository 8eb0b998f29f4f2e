// Inference for users who ship C++: a model file in, per-pixel labels and class probabilities out,
// for an image of any size, whole or in overlapping tiles (the U-Net paper's overlap-tile strategy
// with mirrored borders), optionally averaged over flips, rotations and scales (test-time augmentation).
//
//   fcn::Predictor predict{"fcn8s.fcn", torch::kCPU};
//   fcn::Prediction result = predict(fcn::read_image("scene.png"));
//   fcn::write_png("scene-mask.png", result.colorize());
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "fcn/infer/fast_path.h"
#include "fcn/models/model.h"

namespace fcn {

struct PredictOptions {
  // 0: the whole image in one pass. Otherwise the side of the (input) tiles; it is rounded up to
  // the nearest size the net accepts (a multiple of 32 for FCN, a legal size for a valid U-Net).
  int64_t tile = 0;
  int64_t overlap = 64;  // pixels shared by neighbouring tiles (output side), blended smoothly
  int64_t batch = 1;     // tiles per forward pass (and in fcn::evaluate, small images per forward pass)
  bool flip = false;     // test-time augmentation: also the horizontally mirrored image
  bool rot90 = false;    // also the image rotated by 90, 180 and 270 degrees
  // Multi-scale inference: the image resized (bilinear) by each factor, segmented (with the views
  // above), the probabilities resized back and averaged over the scales. {1}: the image as it is.
  std::vector<double> scales = {1.0};
  // > 0: the image is resized (bilinear, aspect ratio not kept) to height x width for the net and
  // the logits resized back. 0: the image is mirror-padded to a legal size and cropped back.
  int64_t resize_height = 0, resize_width = 0;
  // bf16 runs the net in bfloat16 (fast on CPUs with AVX512-BF16/AMX); probabilities stay float32.
  torch::Dtype dtype = torch::kFloat;
  // Weights and activations in channels-last (NHWC) layout, oneDNN's fast layout on AVX-512 CPUs.
  // false keeps the net's own layout (validation inside training leaves the weights as they are).
  bool channels_last = true;
  // Choose the layout (replacing channels_last), the CPU allocator policy and the upsampling path
  // for this machine: the choice `fcn tune` cached for this net, dtype, batch and thread count,
  // else the ISA rule (fcn/infer/fast_path.h). The allocator and upsampling switches are
  // process-wide, so it is off by default in the library; the fcn CLI turns it on.
  bool fast_path = false;
  // Binary nets (one logit channel): a pixel is foreground where sigmoid(logit) > threshold.
  double threshold = 0.5;
};

// How the options segment an image, in words: "whole image", "tiles of 256 px, overlap 64", "resized
// to 128x128", with "; scales 0.5, 1" and "; test-time augmentation: flip, rot90" where there are some.
std::string describe_inference(const PredictOptions& options);

// Images given to the net together in one forward pass (fcn eval, fcn predict, training's
// validation) hold at most this many pixels between them: small images gain (per-image overheads
// shared), large ones go one at a time.
constexpr int64_t kPassPixels = int64_t{1} << 20;
// Images of one size given to the net together, at most (fcn predict's images, frames and slices).
constexpr size_t kImagesPerPass = 8;
// Whether an image of `next` sizes (C x H x W) may join a pass that holds `count` images of `first`
// sizes: the same size, fewer than `most` images so far, and at most kPassPixels together.
bool joins_pass(at::IntArrayRef first, size_t count, at::IntArrayRef next, size_t most);

// Class probabilities from logits along `dim`: softmax, or for a binary net's single channel the
// pair (1 - sigmoid, sigmoid), so that every net has one probability per label class.
torch::Tensor class_probabilities(const torch::Tensor& logits, int64_t dim);
// The class of each pixel of K x H x W scores: the index of the largest along dim 0, the first where
// tied, as argmax(0) gives (but for NaN scores); 5-16x faster than LibTorch 1.13's argmax across planes.
torch::Tensor class_labels(const torch::Tensor& scores);

struct Prediction {
  torch::Tensor labels;  // H x W int64 class indices
  torch::Tensor probs;   // label classes x H x W float32 (softmax or sigmoid pair, averaged over TTA views)
  std::vector<std::string> class_names;
  std::vector<std::array<uint8_t, 3>> palette;
  double milliseconds = 0;  // network time for this image (all tiles and views)
  // The image channel overlay() shows in gray: a 2.5-D net's centre slice (its first channel's); -1: the
  // image as a picture (to_rgb8: gray, RGB, alpha dropped; past 4 channels the first in gray).
  int64_t picture_channel = -1;

  // H x W x 3 uint8 picture of the labels in the model's palette.
  torch::Tensor colorize() const;
  // The labels' colours blended over `image` (C x H x W in [0, 1], as read_image returns):
  // H x W x 3 uint8. `alpha` is the weight of the label colour.
  torch::Tensor overlay(const torch::Tensor& image, double alpha = 0.5) const;
  // Pixels per class (num_classes entries).
  std::vector<int64_t> class_pixels() const;
};

class Predictor {
 public:
  // Loads a model file (fcn::Error naming it when it is not a segmentation model). The net is put
  // in eval mode and moved to `device`, options.dtype and layout (a Model passed in is shared, so
  // it is converted too). Errors in `options` name the field ("PredictOptions.overlap").
  // For large images on the CPU, fcn's CPU allocator helps (fcn/util/allocator.h); a program
  // installs it once with fcn::install_cpu_allocator(), as the fcn CLI does.
  explicit Predictor(const std::string& model_path, torch::Device device = torch::kCPU, PredictOptions options = {});
  Predictor(Model model, torch::Device device = torch::kCPU, PredictOptions options = {});

  // image: C x H x W float in [0, 1] (fcn::read_image). Channels are adapted to the model (gray
  // replicated, alpha dropped). `source` names the image in errors.
  Prediction operator()(const torch::Tensor& image, const std::string& source = "image") const;
  Prediction operator()(const std::string& image_path) const;
  // Several images in one forward pass where they can share one: all the same size, and no tiles,
  // resize or test-time augmentation (else one at a time). The same predictions as one at a time
  // to float rounding; faster for small images (FCN-8s VGG16-w0.25 at 64 x 64: 14 -> 4 ms/image in
  // eights). `sources` names each image in errors (one per image); `milliseconds` is the share of
  // the pass.
  std::vector<Prediction> operator()(const std::vector<torch::Tensor>& images,
                                     const std::vector<std::string>& sources) const;
  // Whether that call runs images of one size in one pass with these options (no tiles, resize, TTA or scales).
  bool passes_together() const;
  // That call for a pass of two or more images gathered by joins_pass; empty for one image or where
  // the pass fails (out of memory, a bad image: any exception), so that the caller segments them one
  // at a time and each error names its image.
  std::vector<Prediction> pass_or_nothing(const std::vector<torch::Tensor>& images, const std::vector<std::string>& sources) const;

  // This predictor with each image resized (bilinear) to height x width for the net and its logits resized
  // back (PredictOptions.resize_height/width), sharing the net and its path: a volume's slices resampled
  // to the pixels the net was trained on (segment_volume). fcn::Error: scales set (PredictOptions.scales),
  // a size past the image limits.
  Predictor resized(int64_t height, int64_t width) const;
  // Raw logits (num_classes x H x W, float32 on the CPU) of one view, whole or tiled per options.
  torch::Tensor logits(const torch::Tensor& image, const std::string& source = "image") const;

  const Model& model() const { return model_; }
  const PredictOptions& options() const { return options_; }
  torch::Device device() const { return device_; }
  // What runs the net: with options.fast_path, the chosen path; else options' layout ("flag").
  const FastPath& path() const { return path_; }

 private:
  Predictor(Model model, torch::Device device, PredictOptions options, const std::string& source);
  torch::Tensor forward(const torch::Tensor& input) const;  // N x C x h x w normalised -> N x K x h x w
  torch::Tensor whole(const torch::Tensor& input) const;    // N x C x H x W -> N x K x H x W
  Prediction result(const torch::Tensor& probs, double milliseconds, const std::string& source) const;
  torch::Tensor tiled(const torch::Tensor& input) const;
  torch::Tensor views_together(const torch::Tensor& input) const;  // TTA, whole image: summed probabilities
  torch::Tensor probabilities(const torch::Tensor& image, const std::string& source) const;  // one scale, views averaged
  bool whole_unresized() const;  // each image whole (no tiles) and as it is (no resize)

  Model model_;
  torch::Device device_;
  PredictOptions options_;
  FastPath path_;
};

// Reflection padding by any amount (repeated reflection where a pad exceeds the side; a side of
// one pixel is replicated): the U-Net paper's mirrored borders. x: N x C x H x W.
torch::Tensor mirror_pad(const torch::Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);

// Smooth blending weights for a tile side: sin^2 ramps over `overlap` pixels at both ends, 1 inside.
torch::Tensor tile_window(int64_t side, int64_t overlap);

}  // namespace fcn
