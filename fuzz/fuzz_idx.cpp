// IDX files (Fashion-MNIST's format, after gunzip); the first byte picks 1..3 dimensions.
#include <torch/torch.h>

#include "fcn/data/fashion_mnist.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  if (bytes.empty()) return 0;
  const std::vector<uint8_t> idx(bytes.begin() + 1, bytes.end());
  fcn::parse_idx(idx, 1 + static_cast<unsigned char>(bytes[0]) % 3, "fuzz.idx");
})
