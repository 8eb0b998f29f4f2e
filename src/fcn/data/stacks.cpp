#include "fcn/data/stacks.h"

#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

// A page read_image_page gave (C x H x W in [0, 1]) back in the integers it was stored as: 8-bit where
// every value is a multiple of 1/255 (a 16-bit page whose values are multiples of 257 loses nothing).
torch::Tensor stored_values(const torch::Tensor& page, bool& sixteen_bit) {
  const auto as_8bit = page.mul(255);
  sixteen_bit = !torch::allclose(as_8bit, as_8bit.round(), 0, 1e-3);
  return sixteen_bit ? page.mul(65535).round().to(torch::kInt) : as_8bit.round().to(torch::kByte);
}

void write_page(const std::string& path, const torch::Tensor& page, const std::string& source) {
  bool sixteen_bit = false;
  const auto values = stored_values(page, sixteen_bit);
  const int64_t channels = page.size(0);
  if (sixteen_bit && channels != 1) fail(source, "16-bit colour pages are not supported (16-bit gray or 8-bit pages are)");
  if (sixteen_bit) return write_png16(path, values[0]);
  const int64_t kept = channels >= 3 ? 3 : 1;  // gray or RGB; alpha dropped, as the nets drop it
  write_png(path, values.slice(0, 0, kept).permute({1, 2, 0}).contiguous());
}

// Pages 0..total-1, each written by write(k, image file, mask file) into OUT/.images.partial (and
// .masks.partial where `with_masks`), the folders renamed to images/ and masks/ once every page is in;
// after an error nothing is left behind.
int64_t write_folders(const std::string& out_dir, int64_t total, bool with_masks,
                      const std::function<void(int64_t, const std::string&, const std::string&)>& write,
                      const std::function<void(int64_t, int64_t)>& progress) {
  const fs::path out(out_dir);
  for (const char* folder : {"images", "masks"})
    if (fs::exists(out / folder)) fail(out_dir, std::string("already holds ") + folder + "/: unstack into a new folder");
  const fs::path images = out / ".images.partial", masks = out / ".masks.partial";  // renamed once complete
  const auto clear = [&] { fs::remove_all(images), fs::remove_all(masks); };
  clear();
  fs::create_directories(images);
  if (with_masks) fs::create_directories(masks);
  const size_t digits = std::max<size_t>(3, std::to_string(std::max<int64_t>(total - 1, 0)).size());
  try {
    for (int64_t page = 0; page < total; ++page) {
      std::string name = std::to_string(page);
      name = std::string(digits - name.size(), '0') + name + ".png";
      write(page, (images / name).string(), (masks / name).string());
      if (progress) progress(page + 1, total);
    }
  } catch (...) {  // a bad page: nothing left behind
    clear();
    throw;
  }
  fs::rename(images, out / "images");
  if (with_masks) fs::rename(masks, out / "masks");
  return total;
}

}  // namespace

int64_t unstack_tiff(const std::string& images_tiff, const std::string& masks_tiff, const std::string& out_dir,
                     const std::function<void(int64_t, int64_t)>& progress) {
  TiffStackReader image_stack(images_tiff);
  std::optional<TiffStackReader> mask_stack;
  const auto& pages = image_stack.pages();
  if (!masks_tiff.empty()) {
    const auto& masks = mask_stack.emplace(masks_tiff).pages();
    if (masks.size() != pages.size())
      fail(masks_tiff, "holds " + std::to_string(masks.size()) + " pages but " + images_tiff + " holds " + std::to_string(pages.size()));
    for (size_t k = 0; k < pages.size(); ++k)
      if (masks[k].height != pages[k].height || masks[k].width != pages[k].width)
        fail(masks_tiff, "page " + std::to_string(k) + " is " + std::to_string(masks[k].width) + "x" + std::to_string(masks[k].height) +
                             " but that of " + images_tiff + " is " + std::to_string(pages[k].width) + "x" + std::to_string(pages[k].height));
  }
  const auto write = [&](int64_t page, const std::string& image, const std::string& mask) {
    const auto which = " page " + std::to_string(page);
    write_page(image, image_stack.page(page), images_tiff + which);
    if (mask_stack) write_page(mask, mask_stack->page(page), masks_tiff + which);
  };
  return write_folders(out_dir, static_cast<int64_t>(pages.size()), !masks_tiff.empty(), write, progress);
}

NiftiUnstacked unstack_nifti(const std::string& images_nifti, const std::string& masks_nifti, const std::string& out_dir,
                             std::optional<std::pair<double, double>> window, const std::function<void(int64_t, int64_t)>& progress) {
  const auto volume = read_nifti(images_nifti);
  std::optional<NiftiVolume> labels;
  if (!masks_nifti.empty()) {
    labels = read_nifti(masks_nifti);
    if (labels->voxels.sizes() != volume.voxels.sizes())
      fail(masks_nifti, "is " + std::to_string(labels->width) + "x" + std::to_string(labels->height) + "x" + std::to_string(labels->slices) +
                            " voxels but " + images_nifti + " is " + std::to_string(volume.width) + "x" + std::to_string(volume.height) +
                            "x" + std::to_string(volume.slices));
    const auto v = labels->voxels.to(labels->voxels.is_floating_point() ? torch::kDouble : torch::kLong);  // 65535 fits the comparisons
    const auto bad = v.is_floating_point() ? (v != v.round()) | (v < 0) | (v > 65535) : (v < 0) | (v > 65535);
    if (const auto where = bad.nonzero(); where.size(0) > 0)
      fail(masks_nifti, "voxel (" + std::to_string(where[0][2].item<int64_t>()) + "," + std::to_string(where[0][1].item<int64_t>()) + "," +
                            std::to_string(where[0][0].item<int64_t>()) + ") holds " + number_text(v[where[0][0]][where[0][1]][where[0][2]].item<double>()) +
                            ": a label volume holds class indices 0..65535");
  }
  const auto used = window ? *window : nifti_window(volume);
  const auto most = labels ? static_cast<int64_t>(labels->voxels.max().item<double>()) : int64_t{0};  // checked: 0..65535, whole
  const bool wide = most > 255;
  const auto write = [&](int64_t k, const std::string& image, const std::string& mask) {
    write_png16(image, nifti_slice_image(volume, k, used)[0].mul(65535).round().to(torch::kInt));
    if (!labels) return;
    const auto slice = labels->voxels[k].to(torch::kLong);
    if (wide)
      write_png16(mask, slice);
    else
      write_png(mask, slice.to(torch::kByte).unsqueeze(2).contiguous());
  };
  const int64_t slices = write_folders(out_dir, volume.slices, labels.has_value(), write, progress);
  int64_t named = 0;  // a label volume of several classes: classes.json names them, so the folder reads them all
  if (most >= 2 && most <= 254 && !fs::exists(fs::path(out_dir) / "classes.json")) {
    nlohmann::json names = {"background"};
    for (int64_t c = 1; c <= most; ++c) names.push_back("label " + std::to_string(c));
    const auto text = nlohmann::json{{"names", names}}.dump(2) + "\n";
    write_file_atomic((fs::path(out_dir) / "classes.json").string(), text.data(), text.size());
    named = most + 1;
  }
  return {slices, used, named};
}

}  // namespace fcn
