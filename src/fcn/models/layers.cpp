#include "fcn/models/layers.h"

#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {
namespace {
thread_local FlopCounter* active_counter = nullptr;
}  // namespace

FlopCounter::FlopCounter() {
  TORCH_CHECK(active_counter == nullptr, "FlopCounter: nested counters are not supported");
  active_counter = this;
}
FlopCounter::~FlopCounter() { active_counter = nullptr; }

void count_flops(double flops) {
  if (active_counter != nullptr) active_counter->flops_ += flops;
}

torch::Tensor conv(torch::nn::Conv2d layer, const torch::Tensor& x) {
  auto y = layer->forward(x);
  if (active_counter != nullptr) {
    const auto& w = layer->weight;  // out x in/groups x kh x kw
    count_flops(2.0 * static_cast<double>(y.numel()) * static_cast<double>(w.numel() / w.size(0)));
  }
  return y;
}

torch::Tensor conv(torch::nn::ConvTranspose2d layer, const torch::Tensor& x) {
  torch::Tensor y;
  if (x.scalar_type() == torch::kBFloat16 && x.is_cpu()) {
    // LibTorch 1.13 has no bf16 transposed convolution on CPU; the upsamplers are a sliver of the
    // FLOPs, so they run in fp32.
    const auto& o = layer->options;
    const auto bias = layer->bias.defined() ? layer->bias.to(torch::kFloat) : torch::Tensor();
    y = torch::conv_transpose2d(x.to(torch::kFloat), layer->weight.to(torch::kFloat), bias, o.stride(), c10::get<torch::ExpandingArray<2>>(o.padding()),
                                o.output_padding(), o.groups(), o.dilation())
            .to(torch::kBFloat16);
  } else {
    y = layer->forward(x);
  }
  if (active_counter != nullptr) {
    const auto& w = layer->weight;  // in x out/groups x kh x kw: each input pixel scatters a kernel
    count_flops(2.0 * static_cast<double>(x.numel()) * static_cast<double>(w.numel() / w.size(0)));
  }
  return y;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

torch::Tensor linear(torch::nn::Linear layer, const torch::Tensor& x) {
  auto y = layer->forward(x);
  count_flops(2.0 * static_cast<double>(y.numel()) * static_cast<double>(layer->weight.size(1)));
  return y;
}

torch::Tensor crop(const torch::Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width) {
  TORCH_CHECK(top >= 0 && left >= 0 && top + height <= x.size(2) && left + width <= x.size(3),
              "crop window [", top, ":", top + height, ", ", left, ":", left + width,
              "] leaves a map of ", x.size(2), "x", x.size(3));
  return x.slice(2, top, top + height).slice(3, left, left + width);
}

torch::Tensor center_crop(const torch::Tensor& x, int64_t height, int64_t width) {
  return crop(x, (x.size(2) - height) / 2, (x.size(3) - width) / 2, height, width);
}

torch::Tensor pad_to_multiple(const torch::Tensor& x, int64_t multiple) {
  const int64_t pad_h = (multiple - x.size(2) % multiple) % multiple;
  const int64_t pad_w = (multiple - x.size(3) % multiple) % multiple;
  if (pad_h == 0 && pad_w == 0) return x;
  return torch::constant_pad_nd(x, {0, pad_w, 0, pad_h}, 0.0);
}

void check_input(const torch::Tensor& x, int64_t channels, const char* net) {
  if (!x.defined() || x.dim() != 4)
    fail(net, "input must be N x C x H x W, got " + (x.defined() ? std::to_string(x.dim()) : std::string("no")) +
                  " dimensions");
  if (x.size(1) != channels)
    fail(net, "input has " + std::to_string(x.size(1)) + " channels, the net expects " + std::to_string(channels));
  if (!x.is_floating_point()) fail(net, "input must be floating point, got " + std::string(c10::toString(x.scalar_type())));
  if (x.size(0) == 0 || x.size(2) == 0 || x.size(3) == 0) fail(net, "input is empty (a zero dimension)");
}

}  // namespace fcn
