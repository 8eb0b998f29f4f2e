// fcn::Error: the one exception type for bad user input (files, options, tensors from users).
// An error has a subject (a file, a key, or a library option such as "PredictOptions.overlap")
// and a message saying what was found and what was expected. The CLI prints it as one line and
// names its own flag where the subject is an option (apps/fcn/flags.h).
#pragma once

#include <stdexcept>
#include <string>

namespace fcn {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what), message_(what) {}
  Error(const std::string& subject, const std::string& message)
      : std::runtime_error(subject.empty() ? message : subject + ": " + message), subject_(subject), message_(message) {}
  const std::string& subject() const { return subject_; }  // empty when the message stands alone
  const std::string& message() const { return message_; }

 private:
  std::string subject_, message_;
};

// A write that failed because the file system holding it takes no writes: every later write there would fail too,
// so a verb that goes on past a bad input (fcn predict over a folder) stops at this one instead. This class itself:
// a read-only file system (EROFS; Linux remounts one read-only after a disk error). Thrown by write_file_atomic and
// fcn's other writers (util/atomic_file.h: fail_write).
class Unwritable : public Error {
 public:
  using Error::Error;
};

// An Unwritable file system that is full, or the user's quota spent: room made, the same writes succeed.
class OutOfSpace : public Unwritable {
 public:
  using Unwritable::Unwritable;
};

// Throws Error(subject, message): what() reads "subject: message".
[[noreturn]] void fail(const std::string& subject, const std::string& message);

// A number as a message shows it: 2, 0.9, 1e-05, nan (std::to_string writes 2.000000 and 0.000000).
std::string number_text(double value);

// First line of a (possibly multi-line) LibTorch error message, without its C++ backtrace.
std::string first_line(const std::string& message);

// `text` safe to print on one terminal line: control characters (newline, escape, DEL) written
// as \n, \t, \r or \xHH, so a file name cannot forge a line or move the cursor.
std::string printable(const std::string& text);

}  // namespace fcn
