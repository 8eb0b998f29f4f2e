#include "fcn/formats/tiff.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <set>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

constexpr int64_t kMaxDirectories = int64_t{1} << 20;
constexpr uint16_t kNewSubfileType = 254, kImageWidth = 256, kImageLength = 257;

// Reads `n` bytes at `offset` into `out`; false where the source ends first.
using ByteReader = std::function<bool(uint64_t offset, size_t n, unsigned char* out)>;

class Directories {
 public:
  Directories(ByteReader read, std::string path) : read_(std::move(read)), path_(std::move(path)) {}

  // The first directory's offset, from the header (classic TIFF or BigTIFF), which sets the byte order.
  uint64_t first_directory() {
    unsigned char head[16];
    if (!read_(0, 8, head)) fail(path_, "TIFF header cut short");
    little_ = head[0] == 'I';
    big_ = number(head + 2, 2) == 43;
    if (!big_) return number(head + 4, 4);
    if (!read_(0, 16, head) || number(head + 4, 2) != 8) fail(path_, "BigTIFF header cut short or with an offset size other than 8");
    return number(head + 8, 8);
  }

  std::vector<TiffPage> pages() {
    uint64_t next = first_directory();
    std::vector<TiffPage> pages;
    std::set<uint64_t> seen;
    for (int64_t directory = 0; next != 0; ++directory) {
      if (directory >= kMaxDirectories) fail(path_, "TIFF holds more than " + std::to_string(kMaxDirectories) + " directories");
      if (!seen.insert(next).second) fail(path_, "TIFF directory chain loops back to byte " + std::to_string(next));
      const auto page = read_directory(next, directory);
      if (page.directory >= 0) pages.push_back(page);
    }
    if (pages.empty()) fail(path_, "TIFF holds no full-resolution page");
    return pages;
  }

  // Each entry of the directory at `offset` given to visit(tag, type, value), the value read as its
  // type says (SHORT, LONG8 in BigTIFF, else LONG); returns the next directory's offset.
  template <class Visit>
  uint64_t walk(uint64_t offset, int64_t directory, Visit&& visit) {
    const size_t count_size = big_ ? 8 : 2, entry_size = big_ ? 20 : 12, offset_size = big_ ? 8 : 4;
    unsigned char buffer[20] = {};
    if (offset > (uint64_t{1} << 62)) fail(path_, "TIFF directory past the end of the file" + where(offset, directory));
    if (!read_(offset, count_size, buffer)) fail(path_, "TIFF directory past the end of the file" + where(offset, directory));
    const uint64_t entries = number(buffer, static_cast<int>(count_size));
    if (entries == 0 || entries > 65535) fail(path_, "TIFF directory of " + std::to_string(entries) + " entries" + where(offset, directory));
    for (uint64_t i = 0; i < entries; ++i) {
      if (!read_(offset + count_size + i * entry_size, entry_size, buffer)) fail(path_, "TIFF directory cut short" + where(offset, directory));
      const auto tag = static_cast<uint16_t>(number(buffer, 2)), type = static_cast<uint16_t>(number(buffer + 2, 2));
      const int size = type == 3 ? 2 : type == 16 && big_ ? 8 : 4;  // SHORT, LONG8 (BigTIFF only), else LONG
      visit(tag, type, static_cast<int64_t>(number(buffer + (big_ ? 12 : 8), size)));
    }
    if (!read_(offset + count_size + entries * entry_size, offset_size, buffer)) fail(path_, "TIFF directory cut short" + where(offset, directory));
    return number(buffer, static_cast<int>(offset_size));
  }

 private:
  uint64_t number(const unsigned char* b, int size) const {
    uint64_t value = 0;
    for (int i = 0; i < size; ++i) value |= uint64_t{b[little_ ? i : size - 1 - i]} << (8 * i);
    return value;
  }

  static std::string where(uint64_t offset, int64_t directory) {
    return " (directory " + std::to_string(directory) + " at byte " + std::to_string(offset) + ")";
  }

  // The page at `next` (directory -1 where it is a reduced-resolution one); `next` gets the following offset.
  TiffPage read_directory(uint64_t& next, int64_t directory) {
    const uint64_t offset = next;
    TiffPage page{directory, 0, 0};
    next = walk(offset, directory, [&](uint16_t tag, uint16_t, int64_t value) {
      if (tag == kImageWidth) page.width = value;
      if (tag == kImageLength) page.height = value;
      if (tag == kNewSubfileType && (value & 1) != 0) page.directory = -1;  // a reduced-resolution image
    });
    if (page.directory >= 0 && (page.height <= 0 || page.width <= 0))
      fail(path_, "TIFF page " + std::to_string(directory) + " has no image width and length" + where(offset, directory));
    return page;
  }

  ByteReader read_;
  std::string path_;
  bool little_ = true, big_ = false;
};

// Bytes in memory as a ByteReader.
ByteReader memory_reader(const char* data, size_t size) {
  return [data, size](uint64_t offset, size_t n, unsigned char* out) {
    if (offset > size || n > size - offset) return false;
    std::copy_n(data + offset, n, reinterpret_cast<char*>(out));
    return true;
  };
}

}  // namespace

bool is_tiff(const std::vector<char>& bytes) {
  if (bytes.size() < 4) return false;
  const std::string head(bytes.data(), 4);
  return head == std::string("II*\0", 4) || head == std::string("MM\0*", 4) || head == std::string("II+\0", 4) ||
         head == std::string("MM\0+", 4);
}

std::vector<TiffPage> tiff_pages(const std::vector<char>& bytes, const std::string& path) {
  if (!is_tiff(bytes)) fail(path, "not a TIFF file");
  return Directories(memory_reader(bytes.data(), bytes.size()), path).pages();
}

int64_t tiff_first_short(const char* data, size_t size, uint16_t tag, int64_t otherwise) {
  if (size < 4 || !is_tiff(std::vector<char>(data, data + 4))) return otherwise;
  bool found = false;
  int64_t value = otherwise;
  try {
    Directories directories(memory_reader(data, size), "TIFF");
    directories.walk(directories.first_directory(), 0, [&](uint16_t t, uint16_t type, int64_t v) {
      if (!found && t == tag && type == 3) found = true, value = v;
    });
  } catch (const Error&) {  // cut short or malformed: what was read before
  }
  return value;
}

std::vector<TiffPage> tiff_pages(const std::string& path) {
  auto in = open_regular_file(path);
  std::vector<char> head(4);
  if (!in.read(head.data(), 4) || !is_tiff(head)) fail(path, "not a TIFF file");
  return Directories(
             [&](uint64_t offset, size_t n, unsigned char* out) {
               in.clear();
               in.seekg(static_cast<std::streamoff>(offset));
               return offset < (uint64_t{1} << 62) && in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n)).gcount() ==
                                                          static_cast<std::streamsize>(n);
             },
             path)
      .pages();
}

}  // namespace fcn
