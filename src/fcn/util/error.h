// fcn::Error: the one exception type for bad user input (files, flags, tensors from users).
// Messages name the file/flag/key, what was found and what was expected; the CLI prints them as one line.
#pragma once

#include <stdexcept>
#include <string>

namespace fcn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Joins a context (a file, a flag) and a message as "context: message".
[[noreturn]] void fail(const std::string& context, const std::string& message);

// First line of a (possibly multi-line) LibTorch error message, without its C++ backtrace.
std::string first_line(const std::string& message);

}  // namespace fcn
