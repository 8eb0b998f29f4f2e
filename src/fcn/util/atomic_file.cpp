#include "fcn/util/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fcntl.h>
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

std::optional<std::vector<char>> read_head(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<char> head(n);
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return head;
}

std::string partial_path(const std::string& path, const std::string& extension) {
  const std::filesystem::path p(path);
  return (p.parent_path() / ("." + p.stem().string() + ".partial-" + std::to_string(::getpid()) + extension)).string();
}

int space_error(const std::string& path, int error_number) {
  if (error_number == ENOSPC || error_number == EDQUOT) return error_number;
  if (error_number != 0) return 0;
  std::error_code error;  // the writer did not say why: a full file system is told by its free space
  const auto space = std::filesystem::space(std::filesystem::absolute(path, error).parent_path(), error);
  return !error && space.available < (uintmax_t{1} << 20) ? ENOSPC : 0;
}

void fail_write(const std::string& path, int error_number, const std::string& otherwise) {
  if (const int full = space_error(path, error_number); full != 0) throw OutOfSpace(path, std::string("cannot write: ") + std::strerror(full));
  if (error_number == EROFS) throw Unwritable(path, std::string("cannot write: ") + std::strerror(error_number));
  fail(path, error_number == 0 ? otherwise : std::string("cannot write: ") + std::strerror(error_number));
}

namespace {

// The folder holding `path` flushed, so that a rename into it outlives a power cut. Best effort: some file systems
// cannot sync a folder (EINVAL), and the file itself is on the disk already.
void sync_folder_of(const std::string& path) {
  const auto folder = std::filesystem::path(path).parent_path();
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

// The bytes into a temporary file beside `path` (POSIX calls, so that a full disk is told by errno), then renamed
// onto it: a reader sees the old file or the whole new one.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink& sink)>& produce, Durability durability) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail_write(path, errno);
  int error_number = 0;
  const ByteSink sink = [&](const char* data, size_t size) {
    for (size_t done = 0; done < size && error_number == 0;) {
      const ssize_t n = ::write(fd, data + done, size - done);
      if (n > 0) done += static_cast<size_t>(n);
      else if (n < 0 && errno != EINTR) error_number = errno;
      else if (n == 0) error_number = EIO;
    }
  };
  try {
    produce(sink);
  } catch (...) {
    ::close(fd);
    std::remove(temp.c_str());
    throw;
  }
  // A file system that allocates late reports a full disk at the fsync (EINVAL: one that cannot sync), a network one
  // at the close.
  if (durability == Durability::kDurable && error_number == 0 && ::fsync(fd) != 0 && errno != EINVAL) error_number = errno;
  if (::close(fd) != 0 && error_number == 0) error_number = errno;
  if (error_number != 0) {
    std::remove(temp.c_str());
    fail_write(path, error_number);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(temp.c_str());
    fail(path, "cannot rename the temporary file into place: " + why);
  }
  if (durability == Durability::kDurable) sync_folder_of(path);
}

void write_file_atomic(const std::string& path, const char* data, size_t size, Durability durability) {
  write_file_atomic(path, [&](const ByteSink& sink) { sink(data, size); }, durability);
}

}  // namespace fcn
