// classes.json of a dataset folder: names and colours.
#include <torch/torch.h>

#include "fcn/data/dataset.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({ fcn::parse_classes_json(std::string(bytes.begin(), bytes.end()), "classes.json"); })
