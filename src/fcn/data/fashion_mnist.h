// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from Debian's dataset-fashion-mnist package: the
// IDX files, gzip-compressed, read with zlib. Train split -> training data, t10k -> validation.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

struct FashionMnist {
  torch::Tensor images;  // N x 28 x 28 uint8
  torch::Tensor labels;  // N int64 in 0..9
};

// split: "train" or "t10k". Errors name the file (and say which package provides it).
FashionMnist read_fashion_mnist(const std::string& split, const std::string& dir = kFashionMnistDir);
// One IDX file's bytes (after gunzip) of unsigned bytes with `dims` dimensions; sizes checked first.
torch::Tensor parse_idx(const std::vector<uint8_t>& bytes, int dims, const std::string& path);
const std::vector<std::string>& fashion_mnist_classes();  // "T-shirt/top", "Trouser", ...

}  // namespace fcn
