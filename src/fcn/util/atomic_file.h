// Whole-file reads and atomic writes (temp file in the same folder + rename), so a crash or a
// Ctrl-C never leaves a half-written model, checkpoint or output behind.
#pragma once

#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace fcn {

std::vector<char> read_file(const std::string& path);  // throws fcn::Error naming the file
// The first `n` bytes of `path` (fewer where it is shorter), to tell its format by; none where it cannot be opened
// (the caller says so in its own words).
std::optional<std::vector<char>> read_head(const std::string& path, size_t n);
// The file open for binary reading, where it is a regular file: a folder, a device or a pipe (which
// could block), or one that cannot be opened, is an fcn::Error naming it, as read_file says it.
std::ifstream open_regular_file(const std::string& path);
// How far a written file is carried. kAtomic: written beside `path`, then renamed onto it, so that a crash or a
// Ctrl-C of fcn leaves the old file or the whole new one. kDurable (models, weights, checkpoints: what a run cannot
// do without): the file is also flushed to the disk (fsync) before the rename, and its folder after it, so that a
// power cut or a kernel crash leaves the same; it costs a wait for the disk, so masks and tables are kAtomic.
enum class Durability { kAtomic, kDurable };
void write_file_atomic(const std::string& path, const char* data, size_t size, Durability durability = Durability::kAtomic);
// The same for a file too large to hold whole in memory (a model or checkpoint of a GB): `produce` hands its bytes to
// the sink in as many pieces as it likes, and they go straight into the temporary file. The sink never throws (a
// producer such as a zip writer must not be unwound mid-record); a failed write is remembered, later pieces are
// dropped, and it is thrown once `produce` returns, as fail_write tells it. An exception from `produce` removes
// the temporary file and goes on.
using ByteSink = std::function<void(const char* data, size_t size)>;
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink& sink)>& produce, Durability durability = Durability::kAtomic);
// Where a file written in pieces (a video, a TIFF stack) goes until it is complete and renamed onto
// `path`: DIR/.STEM.partial-PID`extension` beside it, hidden, with the extension its writer goes by.
std::string partial_path(const std::string& path, const std::string& extension);
// Why a write of `path` failed where the file system is out of room: `error_number` (errno) where it is ENOSPC or
// EDQUOT; ENOSPC where it is 0 (a writer that keeps errno to itself: libtiff, a video encoder) and the file system
// holding `path` has under 1 MiB left; else 0.
int space_error(const std::string& path, int error_number);
// A failed write of `path` as one error: OutOfSpace ("cannot write: No space left on device") where space_error
// says so; Unwritable for a read-only file system (EROFS); else fcn::Error, "cannot write: " with strerror's words, or
// `otherwise` where `error_number` is 0.
[[noreturn]] void fail_write(const std::string& path, int error_number, const std::string& otherwise = "cannot write");
inline void write_file_atomic(const std::string& path, const std::vector<char>& bytes, Durability durability = Durability::kAtomic) {
  write_file_atomic(path, bytes.data(), bytes.size(), durability);
}

}  // namespace fcn
