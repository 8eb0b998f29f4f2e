#include "fcn/formats/tiff.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

constexpr int64_t kMaxDirectories = int64_t{1} << 20;
constexpr uint16_t kNewSubfileType = 254, kImageWidth = 256, kImageLength = 257, kBitsPerSample = 258, kPhotometric = 262, kImageDescription = 270,
                   kSamplesPerPixel = 277, kXResolution = 282, kYResolution = 283, kPlanarConfiguration = 284, kResolutionUnit = 296,
                   kExtraSamples = 338, kSampleFormat = 339;
constexpr uint16_t kAscii = 2, kShort = 3, kRational = 5;

// One directory entry: its tag and type, the count of values, the value read as its type says
// (SHORT, LONG8 in BigTIFF, else LONG), where the entry's value field lies in the file, and that field
// read as an offset (where values that do not fit it are).
struct Entry {
  uint16_t tag = 0, type = 0;
  uint64_t count = 0;
  int64_t value = 0;
  uint64_t field = 0, offset = 0;
};

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

  // Each entry of the directory at `offset` given to visit(Entry); returns the next directory's offset.
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
      Entry entry;
      entry.tag = static_cast<uint16_t>(number(buffer, 2));
      entry.type = static_cast<uint16_t>(number(buffer + 2, 2));
      entry.count = number(buffer + 4, big_ ? 8 : 4);
      const int size = entry.type == kShort ? 2 : entry.type == 16 && big_ ? 8 : 4;  // SHORT, LONG8 (BigTIFF only), else LONG
      entry.value = static_cast<int64_t>(number(buffer + (big_ ? 12 : 8), size));
      entry.field = offset + count_size + i * entry_size + (big_ ? 12 : 8);
      entry.offset = number(buffer + (big_ ? 12 : 8), static_cast<int>(offset_size));
      visit(entry);
    }
    if (!read_(offset + count_size + entries * entry_size, offset_size, buffer)) fail(path_, "TIFF directory cut short" + where(offset, directory));
    return number(buffer, static_cast<int>(offset_size));
  }

  // The calibration of the first full-resolution page (of the first 16 directories).
  TiffCalibration calibration() {
    uint64_t next = first_directory();
    for (int64_t directory = 0; next != 0 && directory < 16; ++directory) {
      TiffCalibration page;
      bool reduced = false;
      std::string description;
      next = walk(next, directory, [&](const Entry& entry) {
        if (entry.tag == kNewSubfileType && (entry.value & 1) != 0) reduced = true;
        if (entry.tag == kXResolution && entry.type == kRational && entry.count == 1) page.x_resolution = rational(entry);
        if (entry.tag == kYResolution && entry.type == kRational && entry.count == 1) page.y_resolution = rational(entry);
        if (entry.tag == kResolutionUnit && entry.type == kShort && entry.value >= 1 && entry.value <= 3)
          page.resolution_unit = static_cast<uint16_t>(entry.value);
        if (entry.tag == kImageDescription && entry.type == kAscii && entry.count <= (1u << 16)) description = text(entry);
      });
      if (reduced) continue;
      read_imagej_calibration(description, page);
      return page;
    }
    return {};
  }

 private:
  // Where an entry's values of `size` bytes in all lie: in its value field where they fit, else at the
  // offset it holds.
  uint64_t values_at(const Entry& entry, uint64_t size) const { return size <= (big_ ? 8u : 4u) ? entry.field : entry.offset; }

  // The `n` bytes of an entry's values.
  std::vector<unsigned char> values(const Entry& entry, size_t n) {
    std::vector<unsigned char> bytes(n);
    if (n > 0 && !read_(values_at(entry, n), n, bytes.data()))
      fail(path_, "TIFF tag " + std::to_string(entry.tag) + " runs past the end of the file");
    return bytes;
  }

  // The first value of a SHORT entry (one per sample, as BitsPerSample has); 0 where it cannot be read
  // (the page's decoder then has its own word on it).
  int64_t first_short(const Entry& entry) {
    if (entry.count == 1) return entry.value;
    unsigned char bytes[2];
    return entry.count <= 65535 && read_(values_at(entry, entry.count * 2), 2, bytes) ? static_cast<int64_t>(number(bytes, 2)) : 0;
  }

  // ExtraSamples' values: 0 where every one is 0 (data), else the first that is not (an alpha: 1 or 2); 0 where
  // they cannot be read (more than 65535 extra samples: the decoder has its own word on such a page).
  int64_t first_alpha(const Entry& entry) {
    if (entry.count == 1) return entry.value;
    if (entry.count > 65535) return 0;
    const auto bytes = values(entry, entry.count * 2);
    for (uint64_t i = 0; i < entry.count; ++i)
      if (const auto kind = number(bytes.data() + 2 * i, 2); kind != 0) return static_cast<int64_t>(kind);
    return 0;
  }

  double rational(const Entry& entry) {
    const auto bytes = values(entry, 8);
    const auto numerator = number(bytes.data(), 4), denominator = number(bytes.data() + 4, 4);
    return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
  }

  std::string text(const Entry& entry) {
    const auto bytes = values(entry, entry.count);
    std::string text(bytes.begin(), bytes.end());
    return text.substr(0, text.find('\0'));
  }

  // ImageJ's "spacing=" and "unit=" lines, where the description is ImageJ's.
  static void read_imagej_calibration(const std::string& description, TiffCalibration& calibration) {
    if (description.rfind("ImageJ=", 0) != 0) return;
    std::istringstream lines(description);
    for (std::string line; std::getline(lines, line);) {
      const auto equals = line.find('=');
      if (equals == std::string::npos) continue;
      const auto key = line.substr(0, equals), value = line.substr(equals + 1);
      if (key == "unit" && value.size() <= 64 && std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20; }))
        calibration.unit = value;
      if (key == "spacing") {
        char* end = nullptr;
        const double spacing = std::strtod(value.c_str(), &end);
        if (end != value.c_str() && std::isfinite(spacing) && spacing > 0) calibration.spacing = spacing;
      }
    }
  }

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
    next = walk(offset, directory, [&](const Entry& entry) {
      if (entry.tag == kImageWidth) page.width = entry.value;
      if (entry.tag == kImageLength) page.height = entry.value;
      if (entry.tag == kNewSubfileType && (entry.value & 1) != 0) page.directory = -1;  // a reduced-resolution image
      if (entry.tag == kBitsPerSample && entry.type == kShort && entry.count >= 1) page.bits = first_short(entry);
      if (entry.tag == kSamplesPerPixel && entry.count == 1) page.samples = entry.value;
      if (entry.tag == kPlanarConfiguration && entry.count == 1) page.planar = entry.value;
      if (entry.tag == kPhotometric && entry.count == 1) page.photometric = entry.value;
      if (entry.tag == kSampleFormat && entry.type == kShort && entry.count >= 1) page.sample_format = first_short(entry);
      if (entry.tag == kExtraSamples && entry.type == kShort && entry.count >= 1) page.extra_samples = first_alpha(entry);
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
    directories.walk(directories.first_directory(), 0, [&](const Entry& entry) {
      if (!found && entry.tag == tag && entry.type == kShort) found = true, value = entry.value;
    });
  } catch (const Error&) {  // cut short or malformed: what was read before
  }
  return value;
}

namespace {

// Reads a TIFF file's directories (and no pixels) through `body(Directories&)`.
template <class Body>
auto with_directories(const std::string& path, Body&& body) {
  auto in = open_regular_file(path);
  std::vector<char> head(4);
  if (!in.read(head.data(), 4) || !is_tiff(head)) fail(path, "not a TIFF file");
  Directories directories(
      [&](uint64_t offset, size_t n, unsigned char* out) {
        in.clear();
        in.seekg(static_cast<std::streamoff>(offset));
        return offset < (uint64_t{1} << 62) &&
               in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n)).gcount() == static_cast<std::streamsize>(n);
      },
      path);
  return body(directories);
}

}  // namespace

std::vector<TiffPage> tiff_pages(const std::string& path) {
  return with_directories(path, [](Directories& directories) { return directories.pages(); });
}

TiffCalibration tiff_calibration(const std::string& path) {
  try {
    return with_directories(path, [](Directories& directories) { return directories.calibration(); });
  } catch (const Error&) {
    return {};
  }
}

TiffCalibration tiff_calibration(const std::vector<char>& bytes) {
  if (!is_tiff(bytes)) return {};
  try {
    return Directories(memory_reader(bytes.data(), bytes.size()), "TIFF").calibration();
  } catch (const Error&) {
    return {};
  }
}

}  // namespace fcn
