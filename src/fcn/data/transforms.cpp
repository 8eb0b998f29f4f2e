#include "fcn/data/transforms.h"

#include <cmath>

#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {

Sample augment(const Sample& input, const AugmentOptions& options, std::mt19937_64& rng) {
  Sample out = input;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double scale = options.min_scale() + (options.max_scale() - options.min_scale()) * uniform(rng);
  if (std::abs(scale - 1.0) > 1e-9) {
    const int64_t h = std::max<int64_t>(1, std::lround(static_cast<double>(input.image.size(1)) * scale));
    const int64_t w = std::max<int64_t>(1, std::lround(static_cast<double>(input.image.size(2)) * scale));
    out.image = torch::upsample_bilinear2d(input.image.unsqueeze(0), {h, w}, false).squeeze(0);
    out.mask = torch::upsample_nearest2d(input.mask.unsqueeze(0).unsqueeze(0).to(torch::kFloat), {h, w})
                   .squeeze(0)
                   .squeeze(0)
                   .to(torch::kLong);
  }
  if (options.crop() > 0) {
    const int64_t c = options.crop();
    const int64_t pad_h = std::max<int64_t>(0, c - out.image.size(1)), pad_w = std::max<int64_t>(0, c - out.image.size(2));
    if (pad_h > 0 || pad_w > 0) {
      out.image = torch::constant_pad_nd(out.image, {0, pad_w, 0, pad_h}, 0.0);
      out.mask = torch::constant_pad_nd(out.mask, {0, pad_w, 0, pad_h}, static_cast<double>(kIgnoreLabel));
    }
    const int64_t top = static_cast<int64_t>(rng() % static_cast<uint64_t>(out.image.size(1) - c + 1));
    const int64_t left = static_cast<int64_t>(rng() % static_cast<uint64_t>(out.image.size(2) - c + 1));
    out.image = out.image.slice(1, top, top + c).slice(2, left, left + c);
    out.mask = out.mask.slice(0, top, top + c).slice(1, left, left + c);
  }
  if (options.flip() && uniform(rng) < 0.5) {
    out.image = out.image.flip({2});
    out.mask = out.mask.flip({1});
  }
  return out;
}

Batch collate(const std::vector<Sample>& samples) {
  TORCH_CHECK(!samples.empty(), "collate: no samples");
  std::vector<torch::Tensor> images, masks;
  for (const auto& s : samples) {
    if (s.image.sizes() != samples[0].image.sizes())
      fail(s.id, "is " + c10::str(s.image.sizes()) + " but " + samples[0].id + " is " + c10::str(samples[0].image.sizes()) +
                     "; batches need one size: pass --crop PX or --batch 1");
    images.push_back(s.image);
    masks.push_back(s.mask);
  }
  return {torch::stack(images), torch::stack(masks)};
}

}  // namespace fcn
