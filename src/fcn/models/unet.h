// U-Net (Ronneberger, Fischer, Brox 2015): the encoder-decoder FCN whose decoder concatenates
// the encoder's maps at each scale. `kValid` is the paper's net (unpadded 3x3 convs, cropped
// skips, output smaller than the input: 572 -> 388 at depth 4); `kSame` pads the convs and the
// input (to a multiple of 2^depth) and returns logits of exactly the input's size.
#pragma once

#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include "fcn/models/net.h"

namespace fcn {

enum class Padding { kValid, kSame };
enum class Upsample { kTransposed, kBilinear };
Padding parse_padding(const std::string& name);     // "valid" | "same"
Upsample parse_upsample(const std::string& name);   // "transposed" | "bilinear"
std::string padding_name(Padding padding);
std::string upsample_name(Upsample upsample);

struct UNetOptions {
  TORCH_ARG(int64_t, depth) = 4;            // number of 2x2 poolings (the paper: 4)
  TORCH_ARG(int64_t, base_channels) = 64;   // channels at full resolution, doubled per level
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, num_classes) = 2;
  TORCH_ARG(Padding, padding) = Padding::kSame;
  TORCH_ARG(Upsample, upsample) = Upsample::kTransposed;
  TORCH_ARG(bool, batch_norm) = false;
  // The paper: "Drop-out layers at the end of the contracting path perform further implicit data
  // augmentation": dropout with this probability on the bottom block's output, in training only.
  TORCH_ARG(double, dropout) = 0.0;
};

// Two 3x3 convs with ReLU (and batch norm when asked): one U-Net level.
class DoubleConvImpl : public torch::nn::Module {
 public:
  DoubleConvImpl(int64_t in, int64_t out, int64_t padding, bool batch_norm);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
};
TORCH_MODULE(DoubleConv);

class UNetImpl : public NetImpl {
 public:
  explicit UNetImpl(const UNetOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string arch() const override { return "unet"; }
  int64_t in_channels() const override { return options.in_channels(); }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  static std::shared_ptr<NetImpl> from_config(const nlohmann::json& config);
  void pretty_print(std::ostream& stream) const override;
  int64_t input_alignment() const override { return int64_t{1} << options.depth(); }
  // Valid padding: the output is smaller than the input, and only some sides are legal.
  int64_t output_side(int64_t input) const override { return options.padding() == Padding::kValid ? output_size(input) : input; }
  int64_t legal_input_at_least(int64_t side) const override;
  int64_t input_for_output(int64_t side) const override;

  // Output side for an input side (same: the input; valid: smaller), or -1 if the input side is
  // not legal (valid: every map before a pool must be even and positive).
  int64_t output_size(int64_t input_size) const;
  // Smallest legal input side whose output is at least `output_size` (valid; same: the size).
  int64_t input_size_for(int64_t output_size) const;
  // The legal input sides nearest below and above `input_size` (below is 0 if none).
  std::pair<int64_t, int64_t> nearest_legal_sizes(int64_t input_size) const;

  UNetOptions options;
  std::vector<DoubleConv> encoder;  // enc0 .. enc{depth-1}, then `bottom`
  DoubleConv bottom{nullptr};
  std::vector<torch::nn::Conv2d> up_convs;             // bilinear: 1x1 conv halving channels
  std::vector<torch::nn::ConvTranspose2d> up_transposed;  // transposed: 2x2 stride 2
  std::vector<DoubleConv> decoder;  // dec{depth-1} .. dec0 (applied deepest first)
  torch::nn::Conv2d score{nullptr};
};
TORCH_MODULE(UNet);

}  // namespace fcn
