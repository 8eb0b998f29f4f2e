#include "fcn/util/limits.h"

#include <cstdlib>

#include "fcn/util/error.h"

namespace fcn {
namespace {

Limits& mutable_limits() {
  static Limits limits = [] {
    Limits l;
    if (const char* env = std::getenv("FCN_MAX_PIXELS")) {
      char* end = nullptr;
      const long long value = std::strtoll(env, &end, 10);
      if (end == env || *end != '\0' || value <= 0) fail("FCN_MAX_PIXELS", "must be a positive integer, got '" + std::string(env) + "'");
      l.max_pixels = value;
    }
    return l;
  }();
  return limits;
}

}  // namespace

const Limits& limits() { return mutable_limits(); }

void set_max_pixels(int64_t pixels) {
  if (pixels <= 0) fail("Limits.max_pixels", "must be positive, got " + std::to_string(pixels));
  mutable_limits().max_pixels = pixels;
}

std::string image_size_problem(int64_t height, int64_t width, const std::string& written) {
  const auto& l = limits();
  const std::string size = !written.empty() ? written : std::to_string(width) + "x" + std::to_string(height);
  if (height <= 0 || width <= 0) return "image size " + size + " is empty";
  if (height > l.max_side || width > l.max_side)
    return "image is " + size + ", over the limit of " + std::to_string(l.max_side) + " px a side";
  if (height * width > l.max_pixels)
    return "image is " + size + " = " + std::to_string(height * width) + " pixels, over the limit of " +
           std::to_string(l.max_pixels) + " (raise it with Limits.max_pixels)";
  return "";
}

void check_image_size(const std::string& subject, int64_t height, int64_t width, const std::string& written) {
  const auto problem = image_size_problem(height, width, written);
  if (!problem.empty()) fail(subject, problem);
}

int64_t checked_mul(const std::string& subject, const std::string& what, int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) fail(subject, what + " overflows 64 bits (corrupt file?)");
  return out;
}

}  // namespace fcn
