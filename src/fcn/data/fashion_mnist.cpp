#include "fcn/data/fashion_mnist.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>

#include <torch/torch.h>

#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

std::vector<uint8_t> gunzip(const std::string& path) {
  if (!std::filesystem::exists(path))
    fail(path, "not found (Fashion-MNIST comes from the Debian package dataset-fashion-mnist: make deps)");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) fail(path, "cannot open");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  int n = 0;
  const auto bound = static_cast<size_t>(limits().max_tensor_bytes);
  while ((n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0 && out.size() <= bound)
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  const bool failed = n < 0;
  gzclose(file);
  if (failed) fail(path, "corrupt gzip data");
  if (out.size() > bound) fail(path, "decompresses to more than Limits.max_tensor_bytes (a gzip bomb?)");
  return out;
}

uint32_t big_endian(const std::vector<uint8_t>& bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) | (uint32_t{bytes[offset + 2]} << 8) |
         bytes[offset + 3];
}

}  // namespace

// IDX: magic (0x00 0x00 type dims), dims as big-endian uint32, then the data.
torch::Tensor parse_idx(const std::vector<uint8_t>& bytes, int dims, const std::string& path) {
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header || big_endian(bytes, 0) != 0x0800u + static_cast<uint32_t>(dims))
    fail(path, "not an IDX file of unsigned bytes with " + std::to_string(dims) + " dimensions");
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (int d = 0; d < dims; ++d) {
    shape.push_back(big_endian(bytes, 4 + 4 * static_cast<size_t>(d)));
    count = checked_mul(path, "the IDX size", count, shape.back());
  }
  if (bytes.size() - header != static_cast<uint64_t>(count)) fail(path, "size does not match its IDX header (truncated?)");
  auto tensor = torch::empty(shape, torch::kByte);
  if (count > 0) std::memcpy(tensor.data_ptr(), bytes.data() + header, static_cast<size_t>(count));
  return tensor;
}

namespace {

torch::Tensor read_idx(const std::string& path, int dims) { return parse_idx(gunzip(path), dims, path); }

}  // namespace

FashionMnist read_fashion_mnist(const std::string& split, const std::string& dir) {
  if (split != "train" && split != "t10k") fail("fashion-mnist", "split '" + split + "' is not train or t10k");
  FashionMnist data;
  data.images = read_idx(dir + "/" + split + "-images-idx3-ubyte.gz", 3);
  data.labels = read_idx(dir + "/" + split + "-labels-idx1-ubyte.gz", 1).to(torch::kLong);
  if (data.images.size(0) == 0 || data.images.size(0) != data.labels.size(0) || data.images.size(1) != 28 || data.images.size(2) != 28)
    fail(dir, "Fashion-MNIST " + split + " images and labels do not match");
  if (data.labels.max().item<int64_t>() > 9) fail(dir, "Fashion-MNIST labels beyond 9");
  return data;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace fcn
