#include "fcn/formats/nifti.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include <torch/torch.h>

#include "fcn/formats/opencv_quiet.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"
#include "fcn/util/quantile.h"

namespace fcn {
namespace {

constexpr size_t kHeaderBytes = 348;  // NIfTI-1's header
constexpr size_t kDataStart = 352;    // the header and the 4-byte extension flag of a .nii
constexpr int64_t kMostExtensionBytes = int64_t{64} << 20;
constexpr int16_t kIntentLabel = 1002;  // NIFTI_INTENT_LABEL

// Field offsets in the header.
constexpr size_t kDim = 40, kPixdim4 = 92, kIntentP1 = 56, kIntentCode = 68, kDatatype = 70, kBitpix = 72, kVoxOffset = 108,
                 kSclSlope = 112, kSclInter = 116, kCalMax = 124, kCalMin = 128, kDescrip = 148, kMagic = 344;

template <typename T>
T field(const std::vector<char>& header, size_t offset, bool swapped) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, header.data() + offset, sizeof(T));
  if (swapped) std::reverse(bytes, bytes + sizeof(T));
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

template <typename T>
void set_field(std::vector<char>& header, size_t offset, T value, bool swapped) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  if (swapped) std::reverse(bytes, bytes + sizeof(T));
  std::memcpy(header.data() + offset, bytes, sizeof(T));
}

// What a header says of its voxels.
struct Layout {
  int64_t width = 1, height = 1, slices = 1, channels = 1;
  torch::ScalarType stored = torch::kByte;  // the type of the stored bits (uint16, uint32: their signed twins)
  int64_t bytes = 1;                        // per voxel
  int16_t datatype = 0;
  int64_t offset = kDataStart;              // where the voxels start
  float slope = 0, inter = 0;
  int64_t voxel_bytes() const { return width * height * slices * channels * bytes; }
};

// NIfTI's data types fcn reads: code, stored type, bytes; and names for those it does not.
struct DataType {
  int16_t code;
  torch::ScalarType stored;
  int64_t bytes;
};
constexpr DataType kDataTypes[] = {{2, torch::kByte, 1},   {4, torch::kShort, 2},   {8, torch::kInt, 4},
                                   {16, torch::kFloat, 4}, {64, torch::kDouble, 8}, {256, torch::kChar, 1},
                                   {512, torch::kShort, 2}, {768, torch::kInt, 4},  {1024, torch::kLong, 8}};

std::string unread_type(int16_t code) {
  switch (code) {
    case 128: return "RGB24 (a colour volume)";
    case 2304: return "RGBA32 (a colour volume)";
    case 32: return "COMPLEX64";
    case 1792: return "COMPLEX128";
    case 2048: return "COMPLEX256";
    case 1280: return "UINT64";
    case 1536: return "FLOAT128";
    case 1: return "BINARY (1 bit per voxel)";
    default: return std::to_string(code) + " (not a NIfTI-1 type)";
  }
}

// The byte order and version the first field tells, checked: 348 read either way.
bool byte_order(const std::vector<char>& header, const std::string& path) {
  const auto size = field<int32_t>(header, 0, false), swapped_size = field<int32_t>(header, 0, true);
  if (size == 540 || swapped_size == 540)
    fail(path, "is NIfTI-2: fcn reads NIfTI-1 (.nii, .nii.gz); convert it, e.g. with nibabel: nib.Nifti1Image(img.dataobj, img.affine)");
  if (size != 348 && swapped_size != 348) fail(path, "is not a NIfTI-1 volume (its header does not start with the size 348)");
  return size != 348;
}

// `channels`: a 4th dimension of up to kMostNiftiChannels is channels (else an error).
Layout parse_header(const std::vector<char>& header, const std::string& path, bool& swapped, bool channels = false) {
  if (header.size() < kHeaderBytes) fail(path, "is not a NIfTI-1 volume: " + std::to_string(header.size()) + " bytes, a header alone is 348");
  swapped = byte_order(header, path);
  const std::string magic(header.data() + kMagic, 4);
  if (magic == std::string("ni1\0", 4))
    fail(path, "is the header of a .hdr/.img pair: fcn reads single-file NIfTI (.nii, .nii.gz)");
  if (magic != std::string("n+1\0", 4)) fail(path, "has no NIfTI-1 magic ('n+1') at byte 344");
  const int16_t dims = field<int16_t>(header, kDim, swapped);
  if (dims < 1 || dims > 7) fail(path, "dim[0] is " + std::to_string(dims) + ": a NIfTI-1 volume has 1 to 7 dimensions");
  Layout layout;
  int64_t* sizes[] = {&layout.width, &layout.height, &layout.slices};
  for (int i = 1; i <= dims; ++i) {
    const int16_t n = field<int16_t>(header, kDim + 2 * static_cast<size_t>(i), swapped);
    if (n < 1) fail(path, "dim[" + std::to_string(i) + "] is " + std::to_string(n) + ": every dimension needs at least one voxel");
    if (i <= 3) {
      *sizes[i - 1] = n;
    } else if (i == 4 && n > 1 && channels && n <= kMostNiftiChannels) {
      layout.channels = n;
    } else if (n > 1) {
      fail(path, "holds " + std::to_string(n) + " volumes along dimension " + std::to_string(i) +
                     (i == 4 && channels ? " (channels: fcn reads up to " + std::to_string(kMostNiftiChannels) + ")"
                                         : " (a 4-D series, or channels): fcn reads one 3-D volume here; split the series first (e.g. fslsplit)"));
    }
  }
  check_image_size(path, layout.height, layout.width);
  layout.datatype = field<int16_t>(header, kDatatype, swapped);
  const auto* type = std::find_if(std::begin(kDataTypes), std::end(kDataTypes), [&](const DataType& t) { return t.code == layout.datatype; });
  if (type == std::end(kDataTypes)) fail(path, "stores voxels as " + unread_type(layout.datatype) + ", which fcn does not read");
  layout.stored = type->stored, layout.bytes = type->bytes;
  const int16_t bitpix = field<int16_t>(header, kBitpix, swapped);
  if (bitpix != 8 * layout.bytes)
    fail(path, "bitpix is " + std::to_string(bitpix) + " but its data type has " + std::to_string(8 * layout.bytes) + " bits");
  const float offset = field<float>(header, kVoxOffset, swapped);
  if (!std::isfinite(offset) || offset < 0 || offset > static_cast<float>(kDataStart + kMostExtensionBytes) || offset != std::floor(offset))
    fail(path, "vox_offset " + number_text(offset) + " is not where voxels can start (352 to 352 + 64 MiB of extensions)");
  layout.offset = std::max<int64_t>(static_cast<int64_t>(offset), kDataStart);  // 0 in some old writers' files: right after the header
  if (layout.voxel_bytes() > limits().max_tensor_bytes)
    fail(path, "holds " + std::to_string(layout.voxel_bytes()) + " bytes of voxels, more than the limit of " +
                   std::to_string(limits().max_tensor_bytes));
  layout.slope = field<float>(header, kSclSlope, swapped), layout.inter = field<float>(header, kSclInter, swapped);
  return layout;
}

// The voxels from their stored bytes: byte order, unsigned types widened, scaling applied.
NiftiVolume volume_from(std::vector<char> header, bool swapped, const Layout& layout, torch::Tensor raw) {
  if (swapped && layout.bytes > 1) {
    auto* bytes = static_cast<char*>(raw.data_ptr());
    for (int64_t i = 0; i < raw.numel(); ++i) std::reverse(bytes + i * layout.bytes, bytes + (i + 1) * layout.bytes);
  }
  auto voxels = raw.view({layout.slices, layout.height, layout.width});
  if (layout.datatype == 512) voxels = voxels.to(torch::kInt).bitwise_and(0xFFFF);
  if (layout.datatype == 768) voxels = voxels.to(torch::kLong).bitwise_and(int64_t{0xFFFFFFFF});
  const bool scaled = std::isfinite(layout.slope) && layout.slope != 0 && (layout.slope != 1 || layout.inter != 0);
  if (scaled) voxels = (voxels.to(torch::kDouble) * layout.slope + layout.inter).to(torch::kFloat);
  header.resize(kHeaderBytes);
  return {std::move(header), swapped, layout.width, layout.height, layout.slices, voxels};
}

// gzip (or plain) reading that names the file in its errors.
class GzipFile {
 public:
  explicit GzipFile(const std::string& path) : path_(path) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) fail(path, "not found");
    if (!std::filesystem::is_regular_file(path, error)) fail(path, "is not a regular file");
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) fail(path, "cannot be opened");
  }
  ~GzipFile() { gzclose(file_); }
  GzipFile(const GzipFile&) = delete;
  GzipFile& operator=(const GzipFile&) = delete;
  // Whether the file is read as it is stored (not gzip): its size then tells what it holds before any read.
  bool plain() { return gzdirect(file_) == 1; }

  // Reads `count` bytes into `out`; fewer (cut short) is an error saying what was being read.
  void read(char* out, int64_t count, const std::string& what) {
    int64_t done = 0;
    while (done < count) {
      const auto chunk = static_cast<unsigned>(std::min<int64_t>(count - done, int64_t{1} << 30));
      const int n = gzread(file_, out + done, chunk);
      if (n < 0) {
        int code = 0;
        fail(path_, std::string("corrupt gzip data: ") + gzerror(file_, &code));
      }
      if (n == 0) fail(path_, "is cut short: it ends " + std::to_string(done) + " bytes into " + what + " of " + std::to_string(count));
      done += n;
    }
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

std::vector<char> read_header(GzipFile& file) {
  std::vector<char> header(kDataStart);
  file.read(header.data(), static_cast<int64_t>(kDataStart), "its header");
  return header;
}

}  // namespace

bool is_nifti_path(const std::string& path) {
  const auto extension = lower_extension(path);
  return extension == ".nii" || (extension == ".gz" && lower_extension(std::filesystem::path(path).replace_extension().string()) == ".nii");
}

std::string nifti_stem(const std::string& path) {
  auto stem = std::filesystem::path(path).stem();
  if (is_nifti_path(path) && is_nifti_path(stem.string())) stem = stem.stem();  // NAME.nii of NAME.nii.gz
  return stem.string();
}

namespace {

// The voxels of every channel the header at `path` declares (one unless `channels`), as stored.
std::vector<NiftiVolume> read_volumes(const std::string& path, bool channels) {
  GzipFile file(path);
  auto header = read_header(file);
  bool swapped = false;
  const auto layout = parse_header(header, path, swapped, channels);
  std::error_code error;
  const auto size = static_cast<int64_t>(std::filesystem::file_size(path, error));
  if (file.plain() && !error && size - layout.offset < layout.voxel_bytes())  // cut short: said before allocating the voxels
    fail(path, "is cut short: " + std::to_string(std::max<int64_t>(size - layout.offset, 0)) + " bytes of voxels, its header says " +
                   std::to_string(layout.voxel_bytes()));
  std::vector<char> extensions(static_cast<size_t>(layout.offset) - kDataStart);
  file.read(extensions.data(), static_cast<int64_t>(extensions.size()), "its header extensions");
  const int64_t per_channel = layout.width * layout.height * layout.slices;
  auto raw = torch::empty({per_channel * layout.channels}, torch::TensorOptions().dtype(layout.stored));
  file.read(static_cast<char*>(raw.data_ptr()), layout.voxel_bytes(), "its voxels");
  std::vector<NiftiVolume> volumes;
  for (int64_t c = 0; c < layout.channels; ++c) volumes.push_back(volume_from(header, swapped, layout, raw.narrow(0, c * per_channel, per_channel)));
  return volumes;
}

// NAME_0000.nii.gz's NAME and channel number (nnU-Net's naming), or {"", -1}.
std::pair<std::string, int> channel_name(const std::string& path) {
  return is_nifti_path(path) ? nnunet_channel(nifti_stem(path)) : std::pair<std::string, int>{"", -1};
}

// The file of channel `c` of the case whose channel `like` is, in its folder: NAME_000c with like's
// extension, else .nii.gz or .nii; "" where there is none.
std::string channel_file(const std::string& like, const std::string& name, int c) {
  const auto file = std::filesystem::path(like).filename().string();
  char number[8];
  std::snprintf(number, sizeof number, "_%04d", c);
  std::error_code error;
  for (const auto& extension : {file.substr(nifti_stem(like).size()), std::string(".nii.gz"), std::string(".nii")}) {  // like's: its letter case kept
    const auto candidate = std::filesystem::path(like).parent_path() / (name + number + extension);
    if (std::filesystem::is_regular_file(candidate, error)) return candidate.string();
  }
  return "";
}

}  // namespace

std::pair<std::string, int> nnunet_channel(const std::string& stem) {
  const bool numbered = stem.size() > 5 && stem[stem.size() - 5] == '_' && stem.find_first_not_of("0123456789", stem.size() - 4) == std::string::npos;
  if (!numbered) return {"", -1};
  return {stem.substr(0, stem.size() - 5), std::stoi(stem.substr(stem.size() - 4))};
}

NiftiVolume read_nifti(const std::string& path) { return std::move(read_volumes(path, false).front()); }

std::vector<NiftiVolume> read_nifti_channels(const std::string& path) { return read_volumes(path, true); }

std::vector<std::string> nifti_channel_files(const std::string& path) {
  const auto [name, channel] = channel_name(path);
  if (channel != 0 || channel_file(path, name, 1).empty()) return {path};
  std::vector<std::string> files = {path};
  for (auto next = channel_file(path, name, 1); !next.empty() && files.size() <= static_cast<size_t>(kMostNiftiChannels);
       next = channel_file(path, name, static_cast<int>(files.size())))
    files.push_back(next);
  if (files.size() > static_cast<size_t>(kMostNiftiChannels))
    fail(path, "has more than " + std::to_string(kMostNiftiChannels) + " channel files beside it (" + name + "_0000 ...): fcn reads up to " +
                   std::to_string(kMostNiftiChannels));
  return files;
}

bool is_later_channel_file(const std::string& path) {
  const auto [name, channel] = channel_name(path);
  return channel > 0 && !channel_file(path, name, 0).empty();
}

std::string nifti_case_file(const std::string& path) {
  const auto [name, channel] = channel_name(path);
  const auto first = channel > 0 ? channel_file(path, name, 0) : "";
  return first.empty() ? path : first;
}

std::string nifti_case_name(const std::string& path) {
  const auto files = nifti_channel_files(path);
  return files.size() > 1 ? channel_name(path).first : nifti_stem(path);
}

std::vector<NiftiVolume> read_nifti_case(const std::string& path) {
  const auto files = nifti_channel_files(path);
  if (files.size() == 1) return read_nifti_channels(path);
  std::vector<NiftiVolume> channels;
  for (const auto& file : files) {
    channels.push_back(read_nifti(file));
    const auto& first = channels.front();
    const auto& last = channels.back();
    if (last.width != first.width || last.height != first.height || last.slices != first.slices)
      fail(file, "is " + std::to_string(last.width) + "x" + std::to_string(last.height) + "x" + std::to_string(last.slices) + " voxels but " +
                     files.front() + ", channel 0 of its case, is " + std::to_string(first.width) + "x" + std::to_string(first.height) + "x" +
                     std::to_string(first.slices));
  }
  return channels;
}

std::vector<int64_t> nifti_shape(const std::string& path, bool channels) {
  GzipFile file(path);
  const auto header = read_header(file);
  bool swapped = false;
  const auto layout = parse_header(header, path, swapped, channels);
  return {layout.slices, layout.height, layout.width};
}

NiftiVolume read_nifti_header(const std::string& path, int64_t* channels) {
  GzipFile file(path);
  auto header = read_header(file);
  bool swapped = false;
  const auto layout = parse_header(header, path, swapped, true);
  if (channels != nullptr) *channels = layout.channels;
  header.resize(kHeaderBytes);
  return {std::move(header), swapped, layout.width, layout.height, layout.slices, torch::Tensor()};
}

NiftiVolume parse_nifti(const std::vector<char>& bytes, const std::string& path) {
  bool swapped = false;
  const auto layout = parse_header(bytes, path, swapped);
  const int64_t available = static_cast<int64_t>(bytes.size()) - layout.offset;
  if (available < layout.voxel_bytes())
    fail(path, "is cut short: " + std::to_string(std::max<int64_t>(available, 0)) + " bytes of voxels, its header says " +
                   std::to_string(layout.voxel_bytes()));
  auto raw = torch::empty({layout.width * layout.height * layout.slices}, torch::TensorOptions().dtype(layout.stored));
  std::memcpy(raw.data_ptr(), bytes.data() + layout.offset, static_cast<size_t>(layout.voxel_bytes()));
  return volume_from(std::vector<char>(bytes.begin(), bytes.begin() + kHeaderBytes), swapped, layout, raw);
}

namespace {

// The bytes gzip-compressed (zlib's deflate with the gzip wrapper), fed in pieces zlib's 32-bit counts take.
std::vector<char> gzip(const std::vector<char>& bytes, const std::string& path) {
  z_stream stream{};
  if (deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail(path, "zlib could not start compressing");
  std::vector<char> out, chunk(size_t{1} << 20);
  size_t given = 0;
  int status = Z_OK;
  while (status == Z_OK) {
    if (stream.avail_in == 0 && given < bytes.size()) {
      const size_t piece = std::min<size_t>(bytes.size() - given, size_t{1} << 30);
      stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + given));
      stream.avail_in = static_cast<uInt>(piece);
      given += piece;
    }
    stream.next_out = reinterpret_cast<Bytef*>(chunk.data());
    stream.avail_out = static_cast<uInt>(chunk.size());
    status = deflate(&stream, given == bytes.size() ? Z_FINISH : Z_NO_FLUSH);
    out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - stream.avail_out));
  }
  deflateEnd(&stream);
  if (status != Z_STREAM_END) fail(path, "zlib could not compress the volume");
  return out;
}

}  // namespace

namespace {

// What a volume written over a scan holds besides its voxels.
struct Written {
  DataType type;
  int64_t components = 1;  // along the 4th dimension (class probabilities)
  int16_t intent = 0;
  float low = 0, high = 0;  // cal_min, cal_max: the display range
  const char* description = "";
};

// `values` (components x slices x height x width, or slices x height x width; of written.type's stored
// type) as a NIfTI-1 file over `like`'s header (its geometry kept; the sizes, type, intent, scaling and
// display range set), in its byte order; gzip-compressed where `path` ends in .gz. Atomic.
void write_over(const std::string& path, const NiftiVolume& like, const torch::Tensor& values, const Written& written) {
  auto bytes = like.header;
  bytes.resize(kHeaderBytes);
  const bool swapped = like.swapped;
  const auto dim = [](int64_t n) { return static_cast<int16_t>(n); };
  const int16_t dims[8] = {dim(written.components > 1 ? 4 : 3), dim(like.width), dim(like.height), dim(like.slices), dim(written.components), 1, 1, 1};
  for (size_t i = 0; i < 8; ++i) set_field<int16_t>(bytes, kDim + 2 * i, dims[i], swapped);
  set_field<float>(bytes, kPixdim4, 1.0f, swapped);
  for (size_t i = 0; i < 3; ++i) set_field<float>(bytes, kIntentP1 + 4 * i, 0.0f, swapped);
  set_field<int16_t>(bytes, kIntentCode, written.intent, swapped);
  set_field<int16_t>(bytes, kDatatype, written.type.code, swapped);
  set_field<int16_t>(bytes, kBitpix, static_cast<int16_t>(8 * written.type.bytes), swapped);
  set_field<float>(bytes, kVoxOffset, static_cast<float>(kDataStart), swapped);
  set_field<float>(bytes, kSclSlope, 1.0f, swapped);
  set_field<float>(bytes, kSclInter, 0.0f, swapped);
  set_field<float>(bytes, kCalMax, written.high, swapped);
  set_field<float>(bytes, kCalMin, written.low, swapped);
  std::memset(bytes.data() + kDescrip, 0, 80);
  std::strncpy(bytes.data() + kDescrip, written.description, 79);
  std::memcpy(bytes.data() + kMagic, "n+1\0", 4);
  bytes.resize(kDataStart, 0);  // the extension flag: none
  const auto stored = values.contiguous();
  const auto* data = static_cast<const char*>(stored.data_ptr());
  const size_t start = bytes.size();
  bytes.insert(bytes.end(), data, data + stored.nbytes());
  if (swapped && written.type.bytes > 1)
    for (size_t i = start; i < bytes.size(); i += static_cast<size_t>(written.type.bytes))
      std::reverse(bytes.data() + i, bytes.data() + i + written.type.bytes);
  write_file_atomic(path, lower_extension(path) == ".gz" ? gzip(bytes, path) : bytes);
}

}  // namespace

void write_nifti_labels(const std::string& path, const NiftiVolume& like, const torch::Tensor& labels) {
  if (labels.dim() != 3 || labels.size(0) != like.slices || labels.size(1) != like.height || labels.size(2) != like.width)
    fail(path, "labels of " + std::to_string(labels.dim()) + " dimensions do not match the volume's " + std::to_string(like.slices) +
                   " x " + std::to_string(like.height) + " x " + std::to_string(like.width));
  // Integer labels as they lie (an int64 copy of a CT volume's uint8 labels was 8 bytes a voxel).
  const bool integer = c10::isIntegralType(labels.scalar_type(), /*includeBool=*/false);
  const auto values = integer ? labels.to(torch::kCPU) : labels.to(torch::kCPU, torch::kLong);
  const auto [low, high] = torch::aminmax(values);
  if (low.item<int64_t>() < 0) fail(path, "labels must not be negative");
  const int64_t most = high.item<int64_t>();
  if (most > std::numeric_limits<int32_t>::max()) fail(path, "labels past 2^31 do not fit a NIfTI int32 volume");
  const DataType type = most <= 255 ? kDataTypes[0] : most <= 65535 ? kDataTypes[6] : kDataTypes[2];  // uint8, uint16, int32
  write_over(path, like, values.to(type.stored), {type, 1, kIntentLabel, 0, static_cast<float>(most), "fcn labels"});
}

void write_nifti_probabilities(const std::string& path, const NiftiVolume& like, const torch::Tensor& probabilities) {
  if (probabilities.dim() != 4 || probabilities.size(1) != like.slices || probabilities.size(2) != like.height ||
      probabilities.size(3) != like.width || probabilities.size(0) < 1 || probabilities.size(0) > 32767)
    fail(path, "class probabilities of " + std::to_string(probabilities.dim()) + " dimensions do not match K x the volume's " +
                   std::to_string(like.slices) + " x " + std::to_string(like.height) + " x " + std::to_string(like.width));
  write_over(path, like, probabilities.to(torch::kCPU, torch::kFloat), {kDataTypes[3], probabilities.size(0), 0, 0, 1, "fcn class probabilities"});
}

namespace {

// Millimetres per unit of the header's sizes and places: xyzt_units 1 m, 2 mm (0: unknown, read as mm), 3 um.
double mm_per_unit(const std::vector<char>& header) {
  const int units = static_cast<unsigned char>(header[123]) & 7;
  return units == 1 ? 1e3 : units == 3 ? 1e-3 : 1;
}

}  // namespace

std::array<double, 3> nifti_voxel_mm(const NiftiVolume& volume) {
  std::array<double, 3> mm;
  mm.fill(std::nan(""));
  if (volume.header.size() < kHeaderBytes) return mm;
  const double scale = mm_per_unit(volume.header);
  for (size_t axis = 0; axis < 3; ++axis) {
    const double size = std::abs(field<float>(volume.header, 80 + 4 * axis, volume.swapped)) * scale;  // pixdim[1..3]
    mm[axis] = std::isfinite(size) && size > 0 ? size : std::nan("");
  }
  return mm;
}

double nifti_voxel_ml(const NiftiVolume& volume) {
  const auto mm = nifti_voxel_mm(volume);
  return mm[0] * mm[1] * mm[2] / 1000;  // NaN where a size is
}

std::optional<std::array<double, 12>> nifti_affine(const NiftiVolume& volume) {
  const auto& h = volume.header;
  if (h.size() < kHeaderBytes) return std::nullopt;
  const auto f = [&](size_t offset) { return static_cast<double>(field<float>(h, offset, volume.swapped)); };
  const double scale = mm_per_unit(h);
  std::array<double, 12> a{};
  if (field<int16_t>(h, 254, volume.swapped) > 0) {  // sform: srow_x, srow_y, srow_z
    for (size_t i = 0; i < 12; ++i) a[i] = f(280 + 4 * i) * scale;
  } else if (field<int16_t>(h, 252, volume.swapped) > 0) {  // qform: a rotation (quaternion b, c, d), voxel sizes, qfac
    const double b = f(256), c = f(260), d = f(264);
    const double w = std::sqrt(std::max(0.0, 1 - b * b - c * c - d * d));
    const double rotation[3][3] = {{w * w + b * b - c * c - d * d, 2 * (b * c - w * d), 2 * (b * d + w * c)},
                                   {2 * (b * c + w * d), w * w + c * c - b * b - d * d, 2 * (c * d - w * b)},
                                   {2 * (b * d - w * c), 2 * (c * d + w * b), w * w + d * d - c * c - b * b}};
    const double qfac = f(76) < 0 ? -1 : 1;
    const double sizes[3] = {f(80), f(84), f(88) * qfac};
    for (size_t row = 0; row < 3; ++row) {
      for (size_t column = 0; column < 3; ++column) a[row * 4 + column] = rotation[row][column] * sizes[column] * scale;
      a[row * 4 + 3] = f(268 + 4 * row) * scale;  // qoffset_x, y, z
    }
  } else {
    return std::nullopt;  // voxel sizes alone: no orientation or place to compare
  }
  if (!std::all_of(a.begin(), a.end(), [](double v) { return std::isfinite(v); })) return std::nullopt;
  return a;
}

std::string nifti_axis_codes(const NiftiVolume& volume) {
  const auto a = nifti_affine(volume);
  if (!a) return "";
  std::string codes;
  for (size_t axis = 0; axis < 3; ++axis) {  // the world axis each voxel axis runs along most, and which way
    const double along[3] = {(*a)[axis], (*a)[4 + axis], (*a)[8 + axis]};
    size_t most = 0;
    for (size_t w = 1; w < 3; ++w)
      if (std::abs(along[w]) > std::abs(along[most])) most = w;
    if (along[most] == 0) return "";
    codes += (along[most] > 0 ? "RAS" : "LPI")[most];
  }
  return codes;
}

bool valid_axis_codes(const std::string& codes) {
  if (codes.size() != 3) return false;
  std::array<bool, 3> seen{false, false, false};
  for (const char c : codes) {
    const auto at = std::string("RLAPSI").find(c);
    if (at == std::string::npos || seen[at / 2]) return false;
    seen[at / 2] = true;
  }
  return true;
}

void check_axis_codes(const std::string& codes, const std::string& subject) {
  if (!valid_axis_codes(codes)) fail(subject, "'" + codes + "' is not an orientation: three letters, one of R/L, A/P and S/I each (e.g. RAS)");
}

SliceAxes nifti_slice_axes(const NiftiVolume& volume, const std::string& codes, const std::string& source) {
  check_axis_codes(codes, source);
  const auto stored = nifti_axis_codes(volume);
  if (stored.empty()) fail(source, "gives no orientation (neither sform nor qform), so its slices cannot be cut as " + codes + " ones");
  SliceAxes axes;
  const std::string letters = "RLAPSI";
  for (size_t target = 0; target < 3; ++target) {
    const auto world = letters.find(codes[target]) / 2;
    int found = -1;
    for (int v = 0; v < 3; ++v)
      if (letters.find(stored[static_cast<size_t>(v)]) / 2 == world) found = found < 0 ? v : 3;
    if (found < 0 || found > 2)
      fail(source, "is stored " + stored + ", too oblique to tell which voxel axis runs along " + codes[target] + ": reorient it first");
    axes.axis[target] = found, axes.reversed[target] = stored[static_cast<size_t>(found)] != codes[target];
  }
  return axes;
}

namespace {

// The dimension of voxels (S x H x W last) that voxel axis v (0 i, 1 j, 2 k) is.
int64_t dim_of(const torch::Tensor& voxels, int axis) { return voxels.dim() - 1 - axis; }

// `voxels` with its last three dimensions in the cut's order (slices, rows, columns): a view.
torch::Tensor cut_order(const torch::Tensor& voxels, const SliceAxes& axes) {
  std::vector<int64_t> order;
  for (int64_t d = 0; d < voxels.dim() - 3; ++d) order.push_back(d);
  for (const int target : {2, 1, 0}) order.push_back(dim_of(voxels, axes.axis[static_cast<size_t>(target)]));
  return voxels.permute(order);
}

// Where slice k of the cut lies in `voxels`: a view, its rows and columns in the cut's order but not reversed,
// and the dimensions a slice is reversed along to match it.
std::pair<torch::Tensor, std::vector<int64_t>> slice_place(const torch::Tensor& voxels, const SliceAxes& axes, int64_t k) {
  const auto ordered = cut_order(voxels, axes);
  const int64_t n = ordered.size(-3);
  auto place = ordered.select(-3, axes.reversed[2] ? n - 1 - k : k);
  std::vector<int64_t> flips;
  if (axes.reversed[1]) flips.push_back(place.dim() - 2);
  if (axes.reversed[0]) flips.push_back(place.dim() - 1);
  return {place, flips};
}

}  // namespace

std::array<int64_t, 3> sliced_shape(const NiftiVolume& volume, const SliceAxes& axes) {
  const std::array<int64_t, 3> sides{volume.width, volume.height, volume.slices};  // along i, j, k
  return {sides[static_cast<size_t>(axes.axis[2])], sides[static_cast<size_t>(axes.axis[1])], sides[static_cast<size_t>(axes.axis[0])]};
}

std::array<double, 3> sliced_voxel_mm(const NiftiVolume& volume, const SliceAxes& axes) {
  const auto stored = nifti_voxel_mm(volume);  // along i, j, k
  return {stored[static_cast<size_t>(axes.axis[0])], stored[static_cast<size_t>(axes.axis[1])], stored[static_cast<size_t>(axes.axis[2])]};
}

torch::Tensor cut_slice(const torch::Tensor& voxels, const SliceAxes& axes, int64_t k) {
  const auto [place, flips] = slice_place(voxels, axes, k);
  return flips.empty() ? place : place.flip(flips);
}

void put_slice(torch::Tensor& voxels, const SliceAxes& axes, int64_t k, const torch::Tensor& slice) {
  const auto [place, flips] = slice_place(voxels, axes, k);
  auto target = place;
  target.copy_(flips.empty() ? slice : slice.flip(flips));
}

std::string slice_plane(const std::string& axis_codes) {
  if (axis_codes.size() != 3) return "";
  const char third = axis_codes[2];
  return third == 'S' || third == 'I' ? "axial" : third == 'A' || third == 'P' ? "coronal" : "sagittal";
}

std::string nifti_misalignment(const NiftiVolume& volume, const NiftiVolume& other, const std::string& other_name) {
  const auto mine = nifti_affine(volume), theirs = nifti_affine(other);
  if (!mine || !theirs) return "";
  const auto column = [](const std::array<double, 12>& a, size_t c) { return std::array<double, 3>{a[c], a[4 + c], a[8 + c]}; };
  const auto length = [](const std::array<double, 3>& v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); };
  double smallest = std::numeric_limits<double>::infinity();
  for (size_t axis = 0; axis < 3; ++axis) {
    const auto u = column(*mine, axis), v = column(*theirs, axis);
    const double lu = length(u), lv = length(v);
    if (lu == 0 || lv == 0) return "";  // a degenerate map: nothing to compare
    smallest = std::min(smallest, lu);
    if ((u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (lu * lv) < 0.999)
      return std::string("its ") + "ijk"[axis] + " axis points another way than that of " + other_name +
             " (a turned or flipped volume): voxel for voxel, they do not pair the same places";
  }
  const auto origin = column(*mine, 3), their_origin = column(*theirs, 3);
  const double apart = length({origin[0] - their_origin[0], origin[1] - their_origin[1], origin[2] - their_origin[2]});
  if (apart > smallest / 2)
    return "its first voxel lies " + number_text(std::round(apart * 100) / 100) + " mm from that of " + other_name +
           ": voxel for voxel, they do not pair the same places";
  return "";
}

std::pair<double, double> nifti_window(const NiftiVolume& volume) {
  const auto& v = volume.voxels;
  if (v.numel() == 0) return {0.0, 1.0};
  // Over the voxels as they lie: a double copy (or masked_select's int64 prefix sum) of a CT volume is
  // 8-16 bytes a voxel. Non-finite float voxels are left out by standing in as the other end.
  const bool all_finite = !v.is_floating_point() || v.isfinite().all().item<bool>();
  if (all_finite) {
    const auto [low, high] = torch::aminmax(v);
    return {low.item<double>(), high.item<double>()};
  }
  const auto finite = v.isfinite();
  if (!finite.any().item<bool>()) return {0.0, 1.0};
  const double inf = std::numeric_limits<double>::infinity();
  return {torch::where(finite, v, inf).min().item<double>(), torch::where(finite, v, -inf).max().item<double>()};
}

std::pair<double, double> nifti_percentile_window(const NiftiVolume& volume, double low, double high) {
  VolumeWindow window;
  window.percentiles = {low, high};
  if (const auto problem = window.problem(); !problem.empty()) fail("nifti_percentile_window", problem);
  const auto voxels = volume.voxels.is_floating_point() ? volume.voxels.masked_select(volume.voxels.isfinite()) : volume.voxels;
  if (voxels.numel() == 0) return {0.0, 1.0};
  const auto q = linear_quantiles(voxels, {low / 100, high / 100});
  return {q[0], q[1]};
}

std::string pixel_mm_problem(const std::array<double, 2>& pixel_mm) {
  for (const double side : pixel_mm)
    if (!(std::isfinite(side) && side >= 0.001 && side <= 1000))
      return "a pixel's sides must be 0.001..1000 mm (got " + number_text(pixel_mm[0]) + " x " + number_text(pixel_mm[1]) + ")";
  return "";
}

std::pair<int64_t, int64_t> resampled_slice_size(const NiftiVolume& volume, const std::array<double, 2>& pixel_mm, const std::string& source,
                                                 const SliceAxes& axes) {
  if (const auto problem = pixel_mm_problem(pixel_mm); !problem.empty()) fail(source, problem);
  const auto voxel = sliced_voxel_mm(volume, axes);  // columns', rows', slices'
  const auto shape = sliced_shape(volume, axes);
  if (std::isnan(voxel[0]) || std::isnan(voxel[1]))
    fail(source, "gives no in-plane voxel size (pixdim), so its slices cannot be resampled to " + number_text(pixel_mm[0]) + " x " +
                     number_text(pixel_mm[1]) + " mm pixels");
  const auto side = [](int64_t n, double from, double to) {
    return std::max<int64_t>(1, std::llround(static_cast<double>(n) * from / to));
  };
  const int64_t height = side(shape[1], voxel[1], pixel_mm[1]), width = side(shape[2], voxel[0], pixel_mm[0]);
  check_image_size(source + " (resampled to " + number_text(pixel_mm[0]) + " x " + number_text(pixel_mm[1]) + " mm pixels)", height, width);
  return {height, width};
}

torch::Tensor resample_labels(const torch::Tensor& labels, int64_t height, int64_t width) {
  if (!labels.defined() || labels.dim() != 2 || labels.is_floating_point()) fail("resample_labels", "needs H x W integer labels");
  if (labels.size(0) == height && labels.size(1) == width) return labels;
  if (labels.numel() == 0) fail("resample_labels", "the labels are empty");
  const auto values = std::get<0>(torch::_unique(labels.flatten(), true));  // sorted
  if (values.size(0) == 1) return torch::full({height, width}, values[0].item<int64_t>(), labels.options());
  const auto indicators = labels.unsqueeze(0).eq(values.view({-1, 1, 1})).to(torch::kFloat).unsqueeze(0);
  const auto smooth = torch::upsample_bilinear2d(indicators, {height, width}, false)[0];
  return values.index({smooth.argmax(0)});
}

std::string VolumeWindow::problem() const {
  if (values && percentiles) return "both voxel values and percentiles given: give one";
  if (values && !(std::isfinite(values->first) && std::isfinite(values->second) && values->first < values->second))
    return "the window must be two finite voxel values, low < high (got " + number_text(values->first) + ", " + number_text(values->second) + ")";
  if (percentiles && !(percentiles->first >= 0 && percentiles->first < percentiles->second && percentiles->second <= 100))
    return "the percentiles must be 0 <= low < high <= 100 (got " + number_text(percentiles->first) + ", " + number_text(percentiles->second) + ")";
  return "";
}

std::pair<double, double> VolumeWindow::of(const NiftiVolume& volume) const {
  if (const auto wrong = problem(); !wrong.empty()) fail("VolumeWindow", wrong);
  if (values) return *values;
  if (percentiles) return nifti_percentile_window(volume, percentiles->first, percentiles->second);
  return nifti_window(volume);
}

torch::Tensor nifti_slice_image(const NiftiVolume& volume, int64_t k, std::pair<double, double> window, const SliceAxes& axes) {
  const int64_t slices = sliced_shape(volume, axes)[0];
  if (k < 0 || k >= slices) fail("NIfTI volume", "has no slice " + std::to_string(k) + " (slices 0.." + std::to_string(slices - 1) + ")");
  const double span = window.second - window.first;
  const auto values = torch::nan_to_num(cut_slice(volume.voxels, axes, k).to(torch::kDouble), window.first);
  const auto scaled = span > 0 ? ((values - window.first) / span).clamp(0, 1) : torch::zeros_like(values);
  return scaled.to(torch::kFloat).unsqueeze(0);
}

torch::Tensor nifti_case_slice(const std::vector<NiftiVolume>& channels, int64_t k, const std::vector<std::pair<double, double>>& windows,
                               int64_t context, const SliceAxes& axes) {
  if (channels.empty() || windows.size() < channels.size()) fail("nifti_case_slice", "needs a window for each of the case's channels");
  std::vector<torch::Tensor> planes;
  const int64_t last = sliced_shape(channels.front(), axes)[0] - 1;
  for (size_t c = 0; c < channels.size(); ++c)
    for (int64_t d = -context; d <= context; ++d)
      planes.push_back(nifti_slice_image(channels[c], std::clamp<int64_t>(k + d, 0, last), windows[c], axes));
  return planes.size() == 1 ? planes.front() : torch::cat(planes, 0);
}

}  // namespace fcn
