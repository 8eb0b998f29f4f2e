#include "fcn/data/instances.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <type_traits>
#include <vector>

#include <torch/torch.h>

namespace fcn {
namespace {

// Union-find over a parent array, with path halving; a set's root is its smallest member.
int64_t root_of(std::vector<int64_t>& parent, int64_t x) {
  while (parent[static_cast<size_t>(x)] != x) x = parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
  return x;
}

void unite(std::vector<int64_t>& parent, int64_t a, int64_t b) {
  a = root_of(parent, a);
  b = root_of(parent, b);
  if (a != b) parent[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
}

// One row or column of the squared-distance transform: d[q] = min_p (q - p)^2 + f[p], by the lower
// envelope of the parabolas rooted at each p (Felzenszwalb & Huttenlocher, algorithm DT(f)).
void squared_distance_1d(const std::vector<double>& f, std::vector<double>& d, std::vector<int64_t>& v, std::vector<double>& z) {
  const auto n = static_cast<int64_t>(f.size());
  const double inf = std::numeric_limits<double>::infinity();
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    if (f[static_cast<size_t>(q)] == inf) continue;
    double s = -inf;
    while (k >= 0) {
      const int64_t p = v[static_cast<size_t>(k)];
      s = ((f[static_cast<size_t>(q)] + static_cast<double>(q * q)) - (f[static_cast<size_t>(p)] + static_cast<double>(p * p))) /
          static_cast<double>(2 * (q - p));
      if (s > z[static_cast<size_t>(k)]) break;
      --k;
    }
    ++k;
    v[static_cast<size_t>(k)] = q;
    z[static_cast<size_t>(k)] = k == 0 ? -inf : s;
    z[static_cast<size_t>(k + 1)] = inf;
  }
  if (k < 0) {
    std::fill(d.begin(), d.end(), inf);
    return;
  }
  int64_t j = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[static_cast<size_t>(j + 1)] < static_cast<double>(q)) ++j;
    const int64_t p = v[static_cast<size_t>(j)];
    d[static_cast<size_t>(q)] = static_cast<double>((q - p) * (q - p)) + f[static_cast<size_t>(p)];
  }
}

}  // namespace

namespace {

// Each class's components of H x W labels (0 and `ignore` make none), 4- or 8-connected, in one scan:
// ids numbered class by class (ascending), each class's in raster order of their first pixel (what
// connected_components of each class's mask, offset by the classes before, gives), with each id's class
// and pixels (entry 0: none). Union-find over provisional labels; no mask or copy per class.
struct Components {
  torch::Tensor ids;  // H x W int64
  std::vector<int64_t> classes{0}, pixels{0};
};

Components components_of(const torch::Tensor& labels, int64_t ignore, int connectivity) {
  TORCH_CHECK(connectivity == 4 || connectivity == 8, "connected components: connectivity 4 or 8");
  const auto values = labels.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t h = values.size(0), w = values.size(1), n = h * w;
  Components out;
  out.ids = torch::empty({h, w}, torch::kLong);
  const int64_t* in = values.data_ptr<int64_t>();
  int64_t* id = out.ids.data_ptr<int64_t>();
  std::vector<int64_t> parent{0}, class_of{0};  // provisional labels' sets (a root is its smallest member) and classes
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t i = y * w + x, v = in[i];
      if (v == 0 || v == ignore) {
        id[i] = 0;
        continue;
      }
      int64_t label = 0;
      const auto join = [&](int64_t j) {  // a visited neighbour of the same class (labelled, as v makes objects)
        if (in[j] != v) return;
        if (label == 0) label = id[j];
        else if (id[j] != label) unite(parent, label, id[j]);
      };
      if (connectivity == 8 && y > 0 && in[i - w] == v) {
        label = id[i - w];  // 8-connected, the pixel above joins the left, upper-left and upper-right ones already
      } else {
        if (x > 0) join(i - 1);
        if (y > 0) {
          join(i - w);
          if (connectivity == 8 && x > 0) join(i - w - 1);
          if (connectivity == 8 && x + 1 < w) join(i - w + 1);
        }
      }
      if (label == 0) label = static_cast<int64_t>(parent.size()), parent.push_back(label), class_of.push_back(v);
      id[i] = label;
    }
  for (size_t r = 1; r < parent.size(); ++r) parent[r] = parent[static_cast<size_t>(parent[r])];  // each its root: roots are the smallest
  std::vector<int64_t> order(parent.size(), 0);  // each set's number within its class, by its first pixel in raster order
  std::map<int64_t, int64_t> per_class;
  for (int64_t i = 0; i < n; ++i) {
    if (id[i] == 0) continue;
    const auto root = static_cast<size_t>(parent[static_cast<size_t>(id[i])]);
    if (order[root] == 0) order[root] = ++per_class[class_of[root]];
    id[i] = static_cast<int64_t>(root);
  }
  std::map<int64_t, int64_t> before;  // the components of the classes below each
  int64_t total = 0;
  for (const auto& [c, count] : per_class) before[c] = total, total += count;
  std::vector<int64_t> number(parent.size(), 0);
  out.classes.assign(static_cast<size_t>(total + 1), 0), out.pixels.assign(static_cast<size_t>(total + 1), 0);
  for (size_t r = 1; r < parent.size(); ++r)
    if (order[r] > 0) number[r] = before[class_of[r]] + order[r], out.classes[static_cast<size_t>(number[r])] = class_of[r];
  for (int64_t i = 0; i < n; ++i)
    if (id[i] != 0) id[i] = number[static_cast<size_t>(id[i])], ++out.pixels[static_cast<size_t>(id[i])];
  return out;
}

}  // namespace

torch::Tensor connected_components(const torch::Tensor& mask, int connectivity) {
  TORCH_CHECK(mask.dim() == 2, "connected_components: mask must be H x W");
  return components_of(mask.to(torch::kCPU, torch::kBool), -1, connectivity).ids;
}

torch::Tensor instances_from_labels(const torch::Tensor& labels, int64_t ignore, int connectivity) {
  TORCH_CHECK(labels.dim() == 2, "instances_from_labels: labels must be H x W");
  return components_of(labels, ignore, connectivity).ids;
}

torch::Tensor component_classes(const torch::Tensor& ids, const torch::Tensor& labels) {
  const auto flat = ids.to(torch::kCPU, torch::kLong).flatten();
  const int64_t count = flat.numel() == 0 ? 0 : flat.max().item<int64_t>();
  auto classes = torch::zeros({count + 1}, torch::kLong).index_put_({flat}, labels.to(torch::kCPU, torch::kLong).flatten());
  classes[0] = 0;
  return classes;
}

torch::Tensor largest_objects_kept(const std::vector<int64_t>& object_class, const std::vector<int64_t>& object_size,
                                   const std::vector<int64_t>& classes) {
  TORCH_CHECK(object_class.size() == object_size.size(), "largest_objects_kept: classes and sizes of different counts");
  const auto n = static_cast<int64_t>(object_class.size());
  const auto chosen = [&](int64_t c) { return classes.empty() || std::find(classes.begin(), classes.end(), c) != classes.end(); };
  std::map<int64_t, int64_t> best;  // class -> its largest object's id
  for (int64_t id = 1; id < n; ++id)
    if (const auto [at, added] = best.emplace(object_class[id], id); !added && object_size[id] > object_size[at->second]) at->second = id;
  auto keep = torch::ones({std::max<int64_t>(n, 1)}, torch::kBool);
  auto* kept = keep.data_ptr<bool>();
  for (int64_t id = 1; id < n; ++id) kept[id] = !chosen(object_class[id]) || best[object_class[id]] == id;
  return keep;
}

torch::Tensor keep_largest_objects(const torch::Tensor& labels, const torch::Tensor& ids, const std::vector<int64_t>& classes) {
  TORCH_CHECK(labels.sizes() == ids.sizes(), "keep_largest_objects: labels and ids of different sizes");
  const auto flat = ids.to(torch::kCPU, torch::kLong).flatten().contiguous();
  if (flat.numel() == 0) return labels.clone();
  const auto of = component_classes(ids, labels).contiguous();  // each id's class
  const auto sizes = torch::bincount(flat, {}, of.size(0)).contiguous();
  const auto keep = largest_objects_kept({of.data_ptr<int64_t>(), of.data_ptr<int64_t>() + of.numel()},
                                         {sizes.data_ptr<int64_t>(), sizes.data_ptr<int64_t>() + sizes.numel()}, classes);
  const auto drop = keep.logical_not().index({flat}).view(labels.sizes());
  return labels.masked_fill(drop.to(labels.device()), 0);
}

VolumeObjects::VolumeObjects(int64_t ignore, int64_t min_voxels, int connectivity)
    : ignore_(ignore), min_voxels_(min_voxels), connectivity_(connectivity) {
  TORCH_CHECK(is_volume_connectivity(connectivity), "VolumeObjects: connectivity 6, 18 or 26");
}

void VolumeObjects::add(const torch::Tensor& labels, torch::Tensor* written) {
  TORCH_CHECK(labels.dim() == 2, "VolumeObjects: a page's labels must be H x W");
  TORCH_CHECK(!written || (written->sizes() == labels.sizes() && written->is_contiguous() &&
                           (written->scalar_type() == torch::kInt || written->scalar_type() == torch::kLong)),
              "VolumeObjects: a page's components go to a contiguous H x W int32 or int64 tensor of the labels' size");
  const auto page_labels = labels.to(torch::kCPU, torch::kLong).contiguous();
  auto found_here = components_of(page_labels, ignore_, plane_connectivity(connectivity_));
  const auto& components = found_here.ids;
  if (written) written->copy_(components);
  const int64_t offset = static_cast<int64_t>(parent_.size()) - 1, found = static_cast<int64_t>(found_here.classes.size()) - 1;
  offsets_.push_back(offset), counts_.push_back(found);
  class_.insert(class_.end(), found_here.classes.begin() + 1, found_here.classes.end());
  voxels_.insert(voxels_.end(), found_here.pixels.begin() + 1, found_here.pixels.end());
  for (int64_t i = 1; i <= found; ++i) parent_.push_back(offset + i);
  if (previous_.defined() && previous_.sizes() == components.sizes()) link(components, page_labels);
  previous_ = components, previous_labels_ = page_labels;
  numbers_.clear();
}

// Each pixel's component united with those of its class on the page before: at the 9 pixels over it (26), the
// pixel over it and its 4 side neighbours (18), or the pixel over it alone (6).
void VolumeObjects::link(const torch::Tensor& components, const torch::Tensor& page_labels) {
  const int64_t h = components.size(0), w = components.size(1), before = offsets_[offsets_.size() - 2], offset = offsets_.back();
  const int64_t *ids = components.data_ptr<int64_t>(), *up = previous_.data_ptr<int64_t>();
  const int64_t *now = page_labels.data_ptr<int64_t>(), *then = previous_labels_.data_ptr<int64_t>();
  const auto join = [&](int64_t at, int64_t over) {
    if (up[over] != 0 && then[over] == now[at]) unite(parent_, before + up[over], offset + ids[at]);
  };
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t at = y * w + x;
      if (ids[at] == 0) continue;
      if (connectivity_ == 6) {
        join(at, at);
        continue;
      }
      if (connectivity_ == 18) {
        join(at, at);
        if (y > 0) join(at, at - w);
        if (y + 1 < h) join(at, at + w);
        if (x > 0) join(at, at - 1);
        if (x + 1 < w) join(at, at + 1);
        continue;
      }
      // Where the pixel to the left is of the same component, its links covered columns x - 1 and x: column
      // x + 1 is left (a third of the look-ups in a run).
      const int64_t from = x > 0 && ids[at - 1] == ids[at] ? x + 1 : std::max<int64_t>(x - 1, 0);
      for (int64_t ny = std::max<int64_t>(y - 1, 0); ny <= std::min(y + 1, h - 1); ++ny)
        for (int64_t nx = from; nx <= std::min(x + 1, w - 1); ++nx) join(at, ny * w + nx);
    }
}

void VolumeObjects::number() {
  if (numbers_.size() == parent_.size()) return;
  numbers_.assign(parent_.size(), 0);
  std::vector<int64_t> size(parent_.size(), 0);  // each set's voxels, at its root
  for (size_t i = 1; i < parent_.size(); ++i) size[static_cast<size_t>(root_of(parent_, static_cast<int64_t>(i)))] += voxels_[i];
  objects_ = 0;
  object_class_.assign(1, 0), object_voxels_.assign(1, 0);
  for (size_t i = 1; i < parent_.size(); ++i) {  // a set's root is its smallest component: numbered when first met
    const auto root = static_cast<size_t>(root_of(parent_, static_cast<int64_t>(i)));
    if (size[root] < min_voxels_) continue;  // a speck: 0
    if (root == i) object_class_.push_back(class_[i]), object_voxels_.push_back(size[root]);
    numbers_[i] = root == i ? ++objects_ : numbers_[root];
  }
}

const std::vector<int64_t>& VolumeObjects::object_classes() {
  number();
  return object_class_;
}

const std::vector<int64_t>& VolumeObjects::object_voxels() {
  number();
  return object_voxels_;
}

int64_t VolumeObjects::count() {
  number();
  return objects_;
}

std::vector<int64_t> VolumeObjects::per_class(int64_t classes) {
  number();
  std::vector<int64_t> counts(static_cast<size_t>(std::max<int64_t>(classes, 0)), 0);
  for (size_t i = 1; i < parent_.size(); ++i)
    if (root_of(parent_, static_cast<int64_t>(i)) == static_cast<int64_t>(i) && numbers_[i] > 0 && class_[i] >= 0 && class_[i] < classes)
      ++counts[static_cast<size_t>(class_[i])];
  return counts;
}

torch::Tensor VolumeObjects::page(int64_t k, const torch::Tensor& labels) {
  TORCH_CHECK(k >= 0 && k < pages(), "VolumeObjects: no page ", k, " (", pages(), " added)");
  number();
  const auto found_here = components_of(labels, ignore_, plane_connectivity(connectivity_));
  const auto& components = found_here.ids;
  const int64_t offset = offsets_[static_cast<size_t>(k)], found = counts_[static_cast<size_t>(k)];
  TORCH_CHECK(static_cast<int64_t>(found_here.classes.size()) - 1 == found, "VolumeObjects: page ", k, "'s labels are not those add() was given");
  auto ids = torch::zeros({found + 1}, torch::kLong);
  std::copy(numbers_.begin() + offset + 1, numbers_.begin() + offset + found + 1, ids.data_ptr<int64_t>() + 1);
  return ids.index({components});
}

void VolumeObjects::number_page(int64_t k, torch::Tensor& components) {
  TORCH_CHECK(k >= 0 && k < pages(), "VolumeObjects: no page ", k, " (", pages(), " added)");
  TORCH_CHECK(components.is_contiguous() && (components.scalar_type() == torch::kInt || components.scalar_type() == torch::kLong),
              "VolumeObjects: a page's components are a contiguous int32 or int64 tensor");
  number();
  const int64_t offset = offsets_[static_cast<size_t>(k)], found = counts_[static_cast<size_t>(k)];
  TORCH_CHECK(components.scalar_type() == torch::kLong || objects_ <= std::numeric_limits<int32_t>::max(),
              "VolumeObjects: ", objects_, " objects do not fit int32 ids");
  const auto renumber = [&](auto* c) {
    for (int64_t i = 0, n = components.numel(); i < n; ++i) {
      const int64_t local = c[i];
      TORCH_CHECK(local >= 0 && local <= found, "VolumeObjects: page ", k, "'s components are not those add() wrote");
      c[i] = static_cast<std::remove_pointer_t<decltype(c)>>(local == 0 ? 0 : numbers_[static_cast<size_t>(offset + local)]);
    }
  };
  if (components.scalar_type() == torch::kInt) renumber(components.data_ptr<int32_t>());
  else renumber(components.data_ptr<int64_t>());
}

int64_t VolumeObjects::object_of(int64_t k, int64_t component) {
  TORCH_CHECK(k >= 0 && k < pages(), "VolumeObjects: no page ", k, " (", pages(), " added)");
  TORCH_CHECK(component >= 0 && component <= counts_[static_cast<size_t>(k)], "VolumeObjects: page ", k, " has no component ", component);
  number();
  return component == 0 ? 0 : numbers_[static_cast<size_t>(offsets_[static_cast<size_t>(k)] + component)];
}

torch::Tensor distance_transform_3d(const torch::Tensor& mask, std::array<double, 3> spacing) {
  TORCH_CHECK(mask.dim() == 3, "distance_transform_3d: mask must be D x H x W");
  for (const double s : spacing) TORCH_CHECK(s > 0 && std::isfinite(s), "distance_transform_3d: spacings must be positive");
  const auto inside = mask.to(torch::kCPU, torch::kBool).contiguous();
  const int64_t sizes[3] = {inside.size(0), inside.size(1), inside.size(2)};
  const int64_t strides[3] = {sizes[1] * sizes[2], sizes[2], 1};
  const double inf = std::numeric_limits<double>::infinity();
  // Squared distances kept as float between the passes (each line worked in double): the grid is the
  // result, 4 bytes a voxel, where a double grid and its copies were 28.
  auto grid = torch::empty(inside.sizes(), torch::kFloat);
  float* g = grid.data_ptr<float>();
  const bool* in = inside.data_ptr<bool>();
  for (int64_t i = 0; i < grid.numel(); ++i) g[i] = in[i] ? 0.0F : std::numeric_limits<float>::infinity();
  const auto longest = static_cast<size_t>(std::max({sizes[0], sizes[1], sizes[2]}));
  for (int axis = 0; axis < 3; ++axis) {  // the squared distance along z, then y, then x, each over the one before
    const int64_t n = sizes[axis], stride = strides[axis], lines = grid.numel() / std::max<int64_t>(n, 1);
    const double scale = spacing[static_cast<size_t>(axis)] * spacing[static_cast<size_t>(axis)];  // (s (q - p))^2 = s^2 ((q - p)^2 + f / s^2)
    // Lines are independent: the threads take runs of them, each with its own buffers.
    at::parallel_for(0, lines, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t begin, int64_t end) {
      std::vector<double> f(static_cast<size_t>(n)), d(static_cast<size_t>(n)), z(longest + 1);
      std::vector<int64_t> v(longest);
      for (int64_t line = begin; line < end; ++line) {
        // The line's first voxel: `line` counts the voxels of the other two axes in raster order.
        const int64_t inner = axis == 2 ? 1 : strides[axis], start = (line / inner) * inner * n + line % inner;
        for (int64_t q = 0; q < n; ++q) f[static_cast<size_t>(q)] = g[start + q * stride] / scale;
        std::fill(d.begin(), d.end(), inf);
        squared_distance_1d(f, d, v, z);
        for (int64_t q = 0; q < n; ++q) g[start + q * stride] = static_cast<float>(d[static_cast<size_t>(q)] * scale);
      }
    });
  }
  return grid.sqrt_();
}

torch::Tensor distance_transform(const torch::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2, "distance_transform: mask must be H x W");
  const auto inside = mask.to(torch::kCPU, torch::kBool).contiguous();
  const int64_t h = inside.size(0), w = inside.size(1);
  const double inf = std::numeric_limits<double>::infinity();
  auto grid = torch::empty({h, w}, torch::kDouble);
  double* g = grid.data_ptr<double>();
  const bool* in = inside.data_ptr<bool>();
  const int64_t n = std::max(h, w);
  std::vector<double> f, d;
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::vector<double> z(static_cast<size_t>(n + 1));
  for (int64_t x = 0; x < w; ++x) {  // columns: squared distance to the nearest mask pixel in the column
    f.assign(static_cast<size_t>(h), inf);
    d.assign(static_cast<size_t>(h), inf);
    for (int64_t y = 0; y < h; ++y)
      if (in[y * w + x]) f[static_cast<size_t>(y)] = 0;
    squared_distance_1d(f, d, v, z);
    for (int64_t y = 0; y < h; ++y) g[y * w + x] = d[static_cast<size_t>(y)];
  }
  for (int64_t y = 0; y < h; ++y) {  // rows, over the column transform: the 2-D squared distance
    f.assign(g + y * w, g + (y + 1) * w);
    d.assign(static_cast<size_t>(w), inf);
    squared_distance_1d(f, d, v, z);
    std::copy(d.begin(), d.end(), g + y * w);
  }
  return grid.sqrt().to(torch::kFloat);
}

}  // namespace fcn
