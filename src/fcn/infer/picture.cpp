#include "fcn/infer/picture.h"

#include <algorithm>

#include <torch/torch.h>

#ifdef FCN_WITH_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace fcn {

torch::Tensor colorize(const torch::Tensor& labels, const std::vector<std::array<uint8_t, 3>>& palette) {
  TORCH_CHECK(labels.dim() == 2, "colorize: H x W labels expected");
  auto table = torch::full({257, 3}, 160, torch::kByte);  // row 256: anything outside the palette
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(palette.size()), 256);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c) table[i][c] = palette[static_cast<size_t>(i)][static_cast<size_t>(c)];
  auto index = labels.to(torch::kCPU, torch::kLong);
  index = torch::where((index >= 0) & (index < n), index, torch::full_like(index, 256));
  return table.index_select(0, index.flatten()).view({labels.size(0), labels.size(1), 3});
}

torch::Tensor to_rgb8(const torch::Tensor& image) {
  TORCH_CHECK(image.dim() == 3, "to_rgb8: C x H x W expected");
  auto rgb = image.to(torch::kCPU, torch::kFloat);
  if (rgb.size(0) == 1 || rgb.size(0) == 2 || rgb.size(0) > 4) rgb = rgb.slice(0, 0, 1).expand({3, -1, -1});  // > 4: bands, not colour
  rgb = rgb.slice(0, 0, 3);
  return rgb.clamp(0, 1).mul(255).round().to(torch::kByte).permute({1, 2, 0}).contiguous();
}

torch::Tensor blend(const torch::Tensor& picture, const torch::Tensor& colors, double alpha) {
  TORCH_CHECK(picture.sizes() == colors.sizes(), "blend: pictures of different sizes");
  return (picture.to(torch::kFloat) * (1 - alpha) + colors.to(torch::kFloat) * alpha).round().to(torch::kByte);
}

torch::Tensor enlarge(const torch::Tensor& picture, int64_t min_side) {
  const int64_t side = std::min(picture.size(0), picture.size(1));
  const int64_t factor = side > 0 ? std::max<int64_t>(1, (min_side + side - 1) / side) : 1;
  if (factor == 1) return picture;
  return picture.repeat_interleave(factor, 0).repeat_interleave(factor, 1).contiguous();
}

torch::Tensor with_outlines(const torch::Tensor& picture, const torch::Tensor& ids, std::array<uint8_t, 3> colour) {
  TORCH_CHECK(ids.dim() == 2 && picture.dim() == 3 && ids.size(0) == picture.size(0) && ids.size(1) == picture.size(1),
              "with_outlines: ids must be H x W of the H x W x 3 picture");
  const auto id = ids.to(torch::kLong);
  auto edge = torch::zeros(id.sizes(), torch::kBool);
  const int64_t h = id.size(0), w = id.size(1);
  if (h > 1) {  // neighbours above and below
    const auto differs = id.slice(0, 1).ne(id.slice(0, 0, h - 1));
    edge.slice(0, 1).logical_or_(differs);
    edge.slice(0, 0, h - 1).logical_or_(differs);
  }
  if (w > 1) {  // left and right
    const auto differs = id.slice(1, 1).ne(id.slice(1, 0, w - 1));
    edge.slice(1, 1).logical_or_(differs);
    edge.slice(1, 0, w - 1).logical_or_(differs);
  }
  edge.logical_and_(id.gt(0));
  auto out = picture.clone();
  out.index_put_({edge}, torch::tensor({colour[0], colour[1], colour[2]}, torch::kByte));
  return out;
}

torch::Tensor with_legend(const torch::Tensor& picture, const std::vector<int64_t>& classes,
                          const std::vector<std::string>& names, const std::vector<std::array<uint8_t, 3>>& palette) {
  constexpr int64_t kRow = 22, kSwatch = 14, kMargin = 6, kTextWidth = 150;
  const int64_t height = std::max<int64_t>(picture.size(0), kMargin * 2 + kRow * static_cast<int64_t>(classes.size()));
  auto canvas = torch::full({height, picture.size(1) + kMargin * 2 + kSwatch + kTextWidth, 3}, 255, torch::kByte);
  canvas.slice(0, 0, picture.size(0)).slice(1, 0, picture.size(1)).copy_(picture);
  const int64_t x0 = picture.size(1) + kMargin;
  for (size_t i = 0; i < classes.size(); ++i) {
    const int64_t y = kMargin + kRow * static_cast<int64_t>(i);
    const auto cls = static_cast<size_t>(classes[i]);
    const auto color = cls < palette.size() ? palette[cls] : std::array<uint8_t, 3>{160, 160, 160};
    auto swatch = canvas.slice(0, y, y + kSwatch).slice(1, x0, x0 + kSwatch);
    swatch.fill_(0);  // a 1-pixel black frame, so black and white classes show
    for (int64_t c = 0; c < 3; ++c) swatch.slice(0, 1, kSwatch - 1).slice(1, 1, kSwatch - 1).select(2, c).fill_(color[static_cast<size_t>(c)]);
#ifdef FCN_WITH_OPENCV
    cv::Mat view(static_cast<int>(canvas.size(0)), static_cast<int>(canvas.size(1)), CV_8UC3, canvas.data_ptr<uint8_t>());
    const std::string text = cls < names.size() ? names[cls] : "class " + std::to_string(cls);
    cv::putText(view, text, {static_cast<int>(x0 + kSwatch + 6), static_cast<int>(y + kSwatch - 2)}, cv::FONT_HERSHEY_SIMPLEX,
                0.45, {0, 0, 0}, 1, cv::LINE_AA);
#else
    (void)names;
#endif
  }
  return canvas;
}

torch::Tensor colormap(const torch::Tensor& values) {
  // Control points of a viridis-like map: monotone in lightness, readable in grey print.
  static const float kStops[][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  const auto stops = torch::from_blob(const_cast<float*>(&kStops[0][0]), {5, 3}, torch::kFloat);
  const auto v = values.to(torch::kCPU, torch::kFloat).clamp(0, 1).mul(4);
  const auto low = v.floor().clamp_max(3).to(torch::kLong);
  const auto t = (v - low.to(torch::kFloat)).unsqueeze(-1);
  const auto a = stops.index_select(0, low.flatten()).view({values.size(0), values.size(1), 3});
  const auto b = stops.index_select(0, (low + 1).flatten()).view({values.size(0), values.size(1), 3});
  return (a + (b - a) * t).round().to(torch::kByte);
}

torch::Tensor hconcat(const std::vector<torch::Tensor>& pictures, int64_t gap) {
  TORCH_CHECK(!pictures.empty(), "hconcat: no pictures");
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < pictures.size(); ++i) {
    if (i > 0) parts.push_back(torch::full({pictures[i].size(0), gap, 3}, 255, torch::kByte));
    parts.push_back(pictures[i]);
  }
  return torch::cat(parts, 1);
}

torch::Tensor grid(const std::vector<torch::Tensor>& pictures, int64_t columns, int64_t gap) {
  TORCH_CHECK(!pictures.empty() && columns > 0, "grid: no pictures");
  const auto blank = torch::full_like(pictures[0], 255);
  std::vector<torch::Tensor> rows;
  for (size_t first = 0; first < pictures.size(); first += static_cast<size_t>(columns)) {
    std::vector<torch::Tensor> row;
    for (size_t i = first; i < first + static_cast<size_t>(columns); ++i) row.push_back(i < pictures.size() ? pictures[i] : blank);
    if (!rows.empty()) rows.push_back(torch::full({gap, rows[0].size(1), 3}, 255, torch::kByte));
    rows.push_back(hconcat(row, gap));
  }
  return torch::cat(rows, 0);
}

}  // namespace fcn
