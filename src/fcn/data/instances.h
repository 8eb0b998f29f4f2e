// Object instances in label maps, for U-Net's border weights (data/weight_map.h) and the
// touching-objects separation score (eval/separation.h): connected components, instances from
// class labels where a dataset gives none, and the exact Euclidean distance transform.
#pragma once

#include <array>
#include <vector>

#include <torch/types.h>

namespace fcn {

// Connected components of a boolean H x W mask, 4- or 8-connected: H x W int64 with 0 outside the
// mask and 1..K inside, numbered in raster order of each component's first pixel.
torch::Tensor connected_components(const torch::Tensor& mask, int connectivity = 4);

// Instances from class labels alone: the connected components (4-connected unless said) of each
// class other than background (0) and `ignore`, numbered 1..K over all classes (class by class, in
// raster order within each). Touching objects of one class become one instance, so their border
// gets no weight: give instance masks where objects touch. fcn predict --instances counts objects
// this way, 8-connected.
torch::Tensor instances_from_labels(const torch::Tensor& labels, int64_t ignore = 255, int connectivity = 4);

// Each component's class: for ids (H x W, 0..N, as instances_from_labels gives them, one class per
// component) and the labels they came from, an N+1 vector whose entry i is component i's class
// (entry 0, no component, is 0).
torch::Tensor component_classes(const torch::Tensor& ids, const torch::Tensor& labels);

// Labels with each chosen class's largest object kept and its other objects set to background 0 (nnU-Net's
// "keep the largest component": one organ a class, islands of it elsewhere removed). `ids`: the objects
// of `labels`, one class each (instances_from_labels', or VolumeObjects' pages stacked: any shape, 0 no
// object, left as it is); `classes`: the classes to filter (empty: every class). Largest by pixel (voxel)
// count, a tie keeping the lower id. A copy of `labels` in its dtype.
torch::Tensor keep_largest_objects(const torch::Tensor& labels, const torch::Tensor& ids, const std::vector<int64_t>& classes = {});
// Its choice by each object's class and size (entry `id`; entry 0, no object, ignored): true for an
// object kept (and for 0), false for one made background. For objects counted without a volume of their
// ids (VolumeObjects::object_classes and object_voxels, applied page by page).
torch::Tensor largest_objects_kept(const std::vector<int64_t>& object_class, const std::vector<int64_t>& object_size,
                                   const std::vector<int64_t>& classes = {});

// A 3-D connectivity VolumeObjects takes: 26 (faces, edges, corners), 18 (faces and edges) or 6 (faces).
constexpr bool is_volume_connectivity(int connectivity) { return connectivity == 26 || connectivity == 18 || connectivity == 6; }
// Its connectivity within one plane (a page, a slice, an image): 4 for 6, else 8.
constexpr int plane_connectivity(int connectivity) { return connectivity == 6 ? 4 : 8; }

// Objects through a volume whose label pages come one after another (a TIFF stack's, fcn predict
// --label-stack's): each class's components joined within a page (8-connected) and across pages (a
// pixel joins the objects of its class on the page before at its own place or one of its 8
// neighbours: 26-connected in 3-D), so a cell through 40 slices is one object, not 40. Or, by
// `connectivity`, 18-connected (faces and edges: across pages the pixel's own place and its 4 side
// neighbours) or 6-connected (faces: 4-connected within a page, the own place alone across). Two passes,
// so that the pages need not all be held: add() each page (its components and their links to the page
// before), then page() each again with the same labels for its ids. Where a volume of ids is to be held
// anyway, add() writes each page's components into it and number_page() numbers them in place: each page
// labelled once.
class VolumeObjects {
 public:
  // `ignore`: a label that makes no objects besides background 0 (void, 255; -1: none). Objects of
  // fewer than `min_voxels` voxels through the whole volume are left out (id 0, not counted): specks.
  // `connectivity`: 26, 18 or 6 (c10::Error otherwise).
  explicit VolumeObjects(int64_t ignore = -1, int64_t min_voxels = 1, int connectivity = 26);
  // The next page's H x W integer labels. A page of another size than the one before is not joined to it.
  // `components` (where given: H x W int32 or int64, contiguous, such as page k of the volume that is to hold
  // the ids) gets the page's components, 1..n within the page (0: none), for number_page().
  void add(const torch::Tensor& labels, torch::Tensor* components = nullptr);
  int64_t pages() const { return static_cast<int64_t>(offsets_.size()); }
  // The objects of the pages added so far, and how many of them each class 0..classes-1 has.
  int64_t count();
  std::vector<int64_t> per_class(int64_t classes);
  // Each object's class and voxels through the volume, by id (entry 0: none), count() + 1 entries.
  const std::vector<int64_t>& object_classes();
  const std::vector<int64_t>& object_voxels();
  // Page k's objects, H x W int64: 0 none, else 1..count(), numbered in order of the first page each
  // is on (within it, class by class, then raster order). `labels`: the labels add() was given for it.
  torch::Tensor page(int64_t k, const torch::Tensor& labels);
  // The same ids from page k's components as add() wrote them, in place (its dtype kept: int32 where count()
  // fits). No page is labelled again.
  void number_page(int64_t k, torch::Tensor& components);
  // The id of page k's component `component` (1..n, as add() wrote them; 0: none, or a speck).
  int64_t object_of(int64_t k, int64_t component);

 private:
  void number();  // the final ids of the objects so far, in numbers_ (0: a speck)
  void link(const torch::Tensor& components, const torch::Tensor& page_labels);  // page to the page before
  int64_t ignore_, min_voxels_;
  int connectivity_;
  std::vector<int64_t> offsets_, counts_;   // per page: its first component's id - 1, its components
  std::vector<int64_t> parent_{0}, class_{0}, voxels_{0};  // union-find over every page's components (0: none), each one's class and pixels
  std::vector<int64_t> numbers_;            // component -> object id (1..count), after number()
  std::vector<int64_t> object_class_, object_voxels_;  // by object id, after number()
  int64_t objects_ = 0;
  torch::Tensor previous_, previous_labels_;  // the last page's components and labels
};

// For every pixel of an H x W boolean mask, the Euclidean distance to the nearest true pixel
// (0 on the mask): exact, in linear time (Felzenszwalb & Huttenlocher, "Distance Transforms of
// Sampled Functions", 2012). An empty mask gives +infinity everywhere. H x W float32.
torch::Tensor distance_transform(const torch::Tensor& mask);

// The same through a D x H x W boolean volume whose voxels are spacing {z, y, x} apart (millimetres, say):
// each voxel's Euclidean distance to the nearest true voxel in those units, exact. D x H x W float32.
torch::Tensor distance_transform_3d(const torch::Tensor& mask, std::array<double, 3> spacing = {1, 1, 1});

}  // namespace fcn
