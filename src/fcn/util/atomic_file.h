// Whole-file reads and atomic writes (temp file in the same folder + rename), so a crash or a
// Ctrl-C never leaves a half-written model, checkpoint or output behind.
#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace fcn {

std::vector<char> read_file(const std::string& path);  // throws fcn::Error naming the file
// The file open for binary reading, where it is a regular file: a folder, a device or a pipe (which
// could block), or one that cannot be opened, is an fcn::Error naming it, as read_file says it.
std::ifstream open_regular_file(const std::string& path);
void write_file_atomic(const std::string& path, const char* data, size_t size);
// Where a file written in pieces (a video, a TIFF stack) goes until it is complete and renamed onto
// `path`: DIR/.STEM.partial-PID`extension` beside it, hidden, with the extension its writer goes by.
std::string partial_path(const std::string& path, const std::string& extension);
inline void write_file_atomic(const std::string& path, const std::vector<char>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace fcn
