// What every harness asserts: a parser given any bytes returns or throws fcn::Error (one clear
// line). Anything else — another exception, a crash, a sanitizer report, a hang, more than the
// RSS limit — is a finding (libFuzzer stops and writes the input to artifacts/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fcn/util/error.h"
#include "fcn/util/limits.h"

#define FCN_FUZZ_TARGET(...)                                                    \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {     \
    const std::vector<char> bytes(reinterpret_cast<const char*>(data),           \
                                  reinterpret_cast<const char*>(data) + size);   \
    try {                                                                        \
      __VA_ARGS__;                                                               \
    } catch (const fcn::Error&) {                                                \
    }                                                                            \
    return 0;                                                                    \
  }
