// What a net costs: parameters and floating-point operations of one forward pass, counted by
// running it once (layers.h's FlopCounter), so any architecture is measured the same way.
#pragma once

#include <cstdint>

#include "fcn/models/net.h"

namespace fcn {

int64_t parameter_count(const NetImpl& net);
// FLOPs (2 per multiply-add) of one forward pass at height x width.
double forward_flops(NetImpl& net, int64_t height, int64_t width);

}  // namespace fcn
