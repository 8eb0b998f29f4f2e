// Resource limits: every reader checks what a file declares (image size, tensor shape, class count,
// nesting depth) against the file's real size and against these bounds *before* allocating, so a
// 2 KB file cannot ask for 100 GB. A limit exceeded is an fcn::Error naming the file and the limit
// (and, where raising it makes sense, how: `--max-pixels`). docs/reliability.md lists them.
#pragma once

#include <cstdint>
#include <string>

namespace fcn {

struct Limits {
  int64_t max_pixels = int64_t{1} << 28;         // per image (16384 x 16384); `--max-pixels`, FCN_MAX_PIXELS
  int64_t max_tensor_bytes = int64_t{1} << 34;   // one tensor read from a file (16 GiB)
  int64_t max_classes = 65536;                   // classes of a net or a dataset
  int64_t max_nesting = 256;                     // containers inside containers in a pickle
  int64_t max_side = 65536;                      // one side of an image or input size
};

// The process's limits (FCN_MAX_PIXELS read once from the environment).
const Limits& limits();
void set_max_pixels(int64_t pixels);  // throws fcn::Error when not positive

// What is wrong with an image of height x width against the limits ("" when nothing). The message names the
// size width x height, as image tools do, or as `written` where given (a flag's text, e.g. "'70000x10' (height x width)").
std::string image_size_problem(int64_t height, int64_t width, const std::string& written = "");
// Throws fcn::Error(subject, image_size_problem(...)) when an image of height x width exceeds max_pixels or max_side.
void check_image_size(const std::string& subject, int64_t height, int64_t width, const std::string& written = "");
// a * b, or an fcn::Error(subject, what + " overflows") when it does not fit in int64.
int64_t checked_mul(const std::string& subject, const std::string& what, int64_t a, int64_t b);

}  // namespace fcn
