#include "fcn/util/error.h"

namespace fcn {

void fail(const std::string& subject, const std::string& message) { throw Error(subject, message); }

std::string first_line(const std::string& message) {
  const auto end = message.find('\n');
  return end == std::string::npos ? message : message.substr(0, end);
}

}  // namespace fcn
