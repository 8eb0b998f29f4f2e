#include "fcn/data/stacks.h"

#include <filesystem>
#include <optional>

#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
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
  const fs::path out(out_dir);
  for (const char* folder : {"images", "masks"})
    if (fs::exists(out / folder)) fail(out_dir, std::string("already holds ") + folder + "/: unstack into a new folder");
  const fs::path images = out / ".images.partial", masks = out / ".masks.partial";  // renamed once complete
  const auto clear = [&] { fs::remove_all(images), fs::remove_all(masks); };
  clear();
  fs::create_directories(images);
  if (!masks_tiff.empty()) fs::create_directories(masks);
  const size_t digits = std::max<size_t>(3, std::to_string(pages.size() - 1).size());
  const auto total = static_cast<int64_t>(pages.size());
  try {
    for (int64_t page = 0; page < total; ++page) {
      std::string name = std::to_string(page);
      name = std::string(digits - name.size(), '0') + name + ".png";
      const auto which = " page " + std::to_string(page);
      write_page((images / name).string(), image_stack.page(page), images_tiff + which);
      if (mask_stack) write_page((masks / name).string(), mask_stack->page(page), masks_tiff + which);
      if (progress) progress(page + 1, total);
    }
  } catch (...) {  // a bad page: nothing left behind
    clear();
    throw;
  }
  fs::rename(images, out / "images");
  if (!masks_tiff.empty()) fs::rename(masks, out / "masks");
  return total;
}

}  // namespace fcn
