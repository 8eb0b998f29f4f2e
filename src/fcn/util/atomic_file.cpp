#include "fcn/util/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "fcn/util/error.h"

namespace fcn {

std::ifstream open_regular_file(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (std::filesystem::is_directory(status)) fail(path, "is a folder, not a file");
  if (!error && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    fail(path, "is not a regular file (a device, pipe or socket)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  return in;
}

std::vector<char> read_file(const std::string& path) {
  auto in = open_regular_file(path);
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) fail(path, "cannot read its size");
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size)) fail(path, "read failed");
  return bytes;
}

std::string partial_path(const std::string& path, const std::string& extension) {
  const std::filesystem::path p(path);
  return (p.parent_path() / ("." + p.stem().string() + ".partial-" + std::to_string(::getpid()) + extension)).string();
}

void write_file_atomic(const std::string& path, const char* data, size_t size) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail(path, std::string("cannot write: ") + std::strerror(errno));
    out.write(data, static_cast<std::streamsize>(size));
    out.flush();
    if (!out) {
      std::remove(temp.c_str());
      fail(path, "write failed (disk full?)");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(temp.c_str());
    fail(path, "cannot rename the temporary file into place: " + why);
  }
}

}  // namespace fcn
