// Split files (ImageSets/Segmentation/SPLIT.txt): ids one per line, whitespace around them trimmed.
#include <torch/torch.h>

#include "fcn/data/dataset.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const std::string text(bytes.begin(), bytes.end());
  for (const auto& id : fcn::split_ids(text))
    if (id.empty() || id.front() == ' ' || id.back() == ' ' || id.find('\n') != std::string::npos) __builtin_trap();
})
