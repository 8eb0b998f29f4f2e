// NIfTI-1 volumes against files laid out by hand from the NIfTI-1 header (nifti1.h's offsets): voxels
// in both byte orders, the unsigned and scaled types, label volumes written over a scan that keep its
// geometry, and a one-line error for each kind of file fcn does not read.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "fcn/data/dataset.h"
#include "fcn/data/stacks.h"
#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "test_util.h"

namespace fcn {
namespace {

using test::put;

// test::nifti_file under a short name.
std::vector<char> nii(int16_t code, int bytes, const std::vector<int64_t>& values, int16_t width, int16_t height, int16_t slices,
                      bool big_endian = false, float slope = 0, float inter = 0) {
  return test::nifti_file(code, bytes, values, width, height, slices, big_endian, slope, inter);
}

template <typename T>
T get(const std::vector<char>& header, size_t offset) {
  T value;
  std::memcpy(&value, header.data() + offset, sizeof(T));
  return value;
}

TEST(Nifti, VoxelsInBothByteOrdersAndEveryType) {
  const std::vector<int64_t> values = {0, 1, 2, 300, -5, 7, 8, 9, 10, 11, 12, 13};  // 3 wide, 2 high, 2 slices
  for (const bool big : {false, true}) {
    const auto volume = parse_nifti(nii(4, 2, values, 3, 2, 2, big), "v.nii");  // int16
    EXPECT_EQ(std::make_tuple(volume.slices, volume.height, volume.width, volume.swapped), std::make_tuple(2, 2, 3, big));
    ASSERT_EQ(volume.voxels.scalar_type(), torch::kShort);
    EXPECT_TRUE(torch::equal(volume.voxels.to(torch::kLong), torch::tensor(values).view({2, 2, 3}))) << big;  // slice k: rows j, columns i
  }
  const auto wide = parse_nifti(nii(512, 2, {65535, 1, 40000, 0}, 2, 2, 1, true), "u16.nii");  // uint16 past int16
  EXPECT_TRUE(torch::equal(wide.voxels.to(torch::kLong), torch::tensor({65535, 1, 40000, 0}).view({1, 2, 2})));
  const auto unsigned32 = parse_nifti(nii(768, 4, {int64_t{4000000000}, 3}, 2, 1, 1), "u32.nii");
  EXPECT_EQ(unsigned32.voxels[0][0][0].item<int64_t>(), 4000000000);
  const auto scaled = parse_nifti(nii(4, 2, {-1000, 0, 1000, 2}, 2, 2, 1, false, 0.5f, -100), "ct.nii");  // scl_slope, scl_inter
  ASSERT_EQ(scaled.voxels.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(scaled.voxels.flatten(), torch::tensor({-600.0f, -100.0f, 400.0f, -99.0f})));
  std::vector<int64_t> floats;
  for (const float f : {1.5f, -2.25f}) {
    uint32_t bits = 0;
    std::memcpy(&bits, &f, 4);
    floats.push_back(bits);
  }
  EXPECT_TRUE(torch::equal(parse_nifti(nii(16, 4, floats, 2, 1, 1, true), "f.nii").voxels.flatten(), torch::tensor({1.5f, -2.25f})));
}

TEST(Nifti, LabelVolumeKeepsTheScansGeometryAndReadsBack) {
  for (const bool big : {false, true}) {
    const auto scan_file = test::temp_dir() + (big ? "/big.nii" : "/scan.nii");
    const auto scan_bytes = nii(4, 2, std::vector<int64_t>(4 * 3 * 2, 7), 4, 3, 2, big);
    std::ofstream(scan_file, std::ios::binary).write(scan_bytes.data(), static_cast<std::streamsize>(scan_bytes.size()));
    const auto scan = read_nifti(scan_file);
    EXPECT_EQ(nifti_shape(scan_file), (std::vector<int64_t>{2, 3, 4}));
    for (const int64_t most : {int64_t{200}, int64_t{60000}, int64_t{70000}}) {  // uint8, uint16, int32
      auto labels = torch::arange(24, torch::kLong).view({2, 3, 4}) % 5;
      labels[1][2][3] = most;
      for (const std::string name : {"/labels.nii", "/labels.nii.gz"}) {
        write_nifti_labels(test::temp_dir() + name, scan, labels);
        const auto back = read_nifti(test::temp_dir() + name);
        EXPECT_TRUE(torch::equal(back.voxels.to(torch::kLong), labels)) << name << most;
        EXPECT_EQ(back.swapped, big);
        const int16_t code = most <= 255 ? 2 : most <= 65535 ? 512 : 8;
        const auto& h = back.header;
        const auto order = [&](auto value) {  // a field as the file's byte order stores it, read natively
          auto raw = value;
          if (big) std::reverse(reinterpret_cast<char*>(&raw), reinterpret_cast<char*>(&raw) + sizeof raw);
          return raw;
        };
        EXPECT_EQ(get<int16_t>(h, 70), order(code));
        EXPECT_EQ(get<int16_t>(h, 68), order(int16_t{1002}));  // NIFTI_INTENT_LABEL
        for (size_t i = 76; i < 92; i += 4) EXPECT_EQ(get<float>(h, i), get<float>(scan.header, i)) << "pixdim at " << i;
        EXPECT_EQ(get<int16_t>(h, 254), get<int16_t>(scan.header, 254));  // sform_code
        EXPECT_EQ(get<float>(h, 280), get<float>(scan.header, 280));      // srow_x[0]
      }
    }
  }
  {  // class probabilities: a 4-D float32 volume, the class along the 4th dimension, x fastest
    const auto scan = read_nifti(test::temp_dir() + "/scan.nii");
    const auto probabilities = torch::rand({3, 2, 3, 4});
    write_nifti_probabilities(test::temp_dir() + "/probs.nii", scan, probabilities);
    std::ifstream in(test::temp_dir() + "/probs.nii", std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(bytes.size(), 352u + 3 * 2 * 3 * 4 * 4);
    for (const auto& [offset, value] : std::vector<std::pair<size_t, int16_t>>{{40, 4}, {42, 4}, {44, 3}, {46, 2}, {48, 3}, {70, 16}, {72, 32}})
      EXPECT_EQ(get<int16_t>(bytes, offset), value) << offset;
    for (size_t i = 80; i < 92; i += 4) EXPECT_EQ(get<float>(bytes, i), get<float>(scan.header, i)) << "pixdim at " << i;
    EXPECT_EQ(get<float>(bytes, 352 + 4 * (((2 * 2 + 1) * 3 + 2) * 4 + 3)), probabilities[2][1][2][3].item<float>());  // class 2, z 1, y 2, x 3
    EXPECT_NE(test::error_of([&] { read_nifti(test::temp_dir() + "/probs.nii"); }).find("holds 3 volumes along dimension 4"), std::string::npos);
  }
  std::ifstream gz(test::temp_dir() + "/labels.nii.gz", std::ios::binary);
  EXPECT_EQ(gz.get(), 0x1f);  // gzip's magic: compressed as its name says
  EXPECT_EQ(gz.get(), 0x8b);
  const auto scan = read_nifti(test::temp_dir() + "/scan.nii");
  EXPECT_NE(test::error_of([&] { write_nifti_labels(test::temp_dir() + "/x.nii", scan, torch::zeros({2, 3, 5}, torch::kLong)); })
                .find("do not match the volume's 2 x 3 x 4"),
            std::string::npos);
}

TEST(Nifti, SliceImagesMapTheWindowToZeroOne) {
  const auto volume = parse_nifti(nii(4, 2, {-1000, 0, 400, 1000}, 2, 1, 2), "ct.nii");
  EXPECT_EQ(nifti_window(volume), (std::pair<double, double>{-1000, 1000}));
  EXPECT_TRUE(torch::allclose(nifti_slice_image(volume, 1, nifti_window(volume)), torch::tensor({{{0.7f, 1.0f}}})));
  EXPECT_TRUE(torch::allclose(nifti_slice_image(volume, 0, {-1000, 400}), torch::tensor({{{0.0f, 1000.0f / 1400}}})));
  EXPECT_TRUE(torch::allclose(nifti_slice_image(volume, 1, {-1000, 400}), torch::tensor({{{1.0f, 1.0f}}})));  // clamped
}

// Percentile windows as numpy's percentile gives them (linear between the two voxels a rank falls
// between), over finite voxels only; VolumeWindow picks values, percentiles or the range.
TEST(Nifti, PercentileWindowsAsNumpyInterpolatesThem) {
  const auto volume = parse_nifti(nii(4, 2, {30, 0, 20, 10, 5000, 15, 25, 35}, 4, 2, 1), "mr.nii");  // 5000: one hot voxel
  EXPECT_EQ(nifti_percentile_window(volume, 0, 100), (std::pair<double, double>{0.0, 5000.0}));
  // sorted 0 10 15 20 25 30 35 5000: rank 0.25 * 7 = 1.75 -> 10 + 0.75 * 5; rank 0.9 * 7 = 6.3 -> 35 + 0.3 * 4965
  const auto [low, high] = nifti_percentile_window(volume, 25, 90);
  EXPECT_DOUBLE_EQ(low, 13.75);
  EXPECT_DOUBLE_EQ(high, 35 + 0.3 * 4965);
  const auto nan = std::nanf("");
  int32_t nan_bits = 0;
  std::memcpy(&nan_bits, &nan, 4);
  const auto floats = parse_nifti(nii(16, 4, {0x40000000, nan_bits, 0x3f800000, 0x40400000}, 4, 1, 1), "f.nii");  // 2, NaN, 1, 3
  EXPECT_EQ(nifti_percentile_window(floats, 0, 50), (std::pair<double, double>{1.0, 2.0}));
  EXPECT_EQ(nifti_window(floats), (std::pair<double, double>{1.0, 3.0}));  // the finite voxels' minimum..maximum
  auto odd = floats;
  odd.voxels = torch::tensor({{{-std::numeric_limits<float>::infinity(), 7.0F, std::nanf(""), 9.0F}}});
  EXPECT_EQ(nifti_window(odd), (std::pair<double, double>{7.0, 9.0}));
  odd.voxels = torch::full({1, 1, 2}, std::nanf(""));
  EXPECT_EQ(nifti_window(odd), (std::pair<double, double>{0.0, 1.0}));  // nothing finite: a window all the same
  std::vector<int64_t> doubles;  // float64 voxels 3, 1, 2, 0: reordered in a copy, never in the volume
  for (const double v : {3.0, 1.0, 2.0, 0.0}) {
    int64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    doubles.push_back(bits);
  }
  const auto f64 = parse_nifti(nii(64, 8, doubles, 4, 1, 1), "d.nii");
  const auto before = f64.voxels.clone();
  EXPECT_EQ(nifti_percentile_window(f64, 0, 100), (std::pair<double, double>{0.0, 3.0}));
  EXPECT_TRUE(torch::equal(f64.voxels, before));
  VolumeWindow window;
  EXPECT_EQ(window.of(volume), (std::pair<double, double>{0.0, 5000.0}));
  window.percentiles = {25.0, 90.0};
  EXPECT_DOUBLE_EQ(window.of(volume).first, 13.75);
  window.values = {-1.0, 1.0};  // one or the other, never both
  EXPECT_NE(test::error_of([&] { window.of(volume); }).find("VolumeWindow: both voxel values and percentiles given: give one"), std::string::npos);
  window.percentiles.reset();
  EXPECT_EQ(window.of(volume), (std::pair<double, double>{-1.0, 1.0}));
  window.values = {1.0, std::numeric_limits<double>::infinity()};
  EXPECT_NE(test::error_of([&] { window.of(volume); }).find("VolumeWindow: the window must be two finite voxel values, low < high (got 1, inf)"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { nifti_percentile_window(volume, 50, 50); }).find("must be 0 <= low < high <= 100"), std::string::npos);
  EXPECT_NE(test::error_of([&] { nifti_percentile_window(volume, -1, 50); }).find("must be 0 <= low < high <= 100"), std::string::npos);
}

TEST(Nifti, FilesItDoesNotReadAreOneLineErrors) {
  const auto message = [](std::vector<char> bytes) { return test::error_of([&] { parse_nifti(bytes, "x.nii"); }); };
  const auto contains = [](const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; };
  auto series = nii(2, 1, std::vector<int64_t>(8, 1), 2, 2, 1);
  put<int16_t>(series, 40, 4), put<int16_t>(series, 48, 2);  // dim[0] = 4, dim[4] = 2 volumes
  EXPECT_TRUE(contains(message(series), "x.nii: holds 2 volumes along dimension 4 (a 4-D series, or channels)")) << message(series);
  auto pair = nii(2, 1, {1}, 1, 1, 1);
  std::memcpy(pair.data() + 344, "ni1\0", 4);
  EXPECT_TRUE(contains(message(pair), "the header of a .hdr/.img pair"));
  auto two = nii(2, 1, {1}, 1, 1, 1);
  put<int32_t>(two, 0, 540);
  EXPECT_TRUE(contains(message(two), "is NIfTI-2"));
  EXPECT_TRUE(contains(message(nii(128, 3, {}, 1, 1, 1)), "stores voxels as RGB24 (a colour volume), which fcn does not read"));
  auto bits = nii(4, 2, {1}, 1, 1, 1);
  put<int16_t>(bits, 72, 8);
  EXPECT_TRUE(contains(message(bits), "bitpix is 8 but its data type has 16 bits"));
  auto cut = nii(4, 2, {1, 2, 3, 4}, 2, 2, 1);
  cut.resize(cut.size() - 3);
  EXPECT_TRUE(contains(message(cut), "is cut short: 5 bytes of voxels, its header says 8")) << message(cut);
  EXPECT_TRUE(contains(message(std::vector<char>(100, 0)), "a header alone is 348"));
  auto huge = nii(2, 1, {}, 32767, 32767, 32767);
  EXPECT_TRUE(contains(message(huge), "x.nii:")) << message(huge);  // past the image limits: refused before any allocation
  // A .nii.gz cut short, read as it streams.
  const auto whole = nii(4, 2, std::vector<int64_t>(64, 3), 8, 8, 1);
  const auto file = test::temp_dir() + "/cut.nii.gz";
  gzFile gz = gzopen(file.c_str(), "wb");
  gzwrite(gz, whole.data(), static_cast<unsigned>(whole.size() - 10));
  gzclose(gz);
  const auto streamed = test::error_of([&] { read_nifti(file); });
  EXPECT_TRUE(contains(streamed, "cut.nii.gz: is cut short: it ends 118 bytes into its voxels of 128")) << streamed;
  EXPECT_TRUE(contains(test::error_of([&] { read_nifti(test::temp_dir() + "/none.nii"); }), "none.nii: not found"));
  // A plain .nii whose header claims 1 GiB of voxels: cut short, said from the file's size before any allocation.
  const auto claims = nii(2, 1, {1, 2, 3}, 1024, 1024, 1024);
  const auto plain = test::temp_dir() + "/claims.nii";
  std::ofstream(plain, std::ios::binary).write(claims.data(), static_cast<std::streamsize>(claims.size()));
  const auto said = test::error_of([&] { read_nifti(plain); });
  EXPECT_TRUE(contains(said, "claims.nii: is cut short: 3 bytes of voxels, its header says 1073741824")) << said;
  EXPECT_TRUE(is_nifti_path("a/b.NII.GZ") && is_nifti_path("c.nii") && !is_nifti_path("d.gz") && !is_nifti_path(".nii"));
}

// The voxel-to-place map by hand from nifti1.h: the sform's rows where sform_code > 0, else the qform
// (quaternion b, c, d with a = sqrt(1 - b^2 - c^2 - d^2), voxel sizes, qfac in pixdim[0], qoffset).
TEST(Nifti, AffineFromTheSformElseTheQform) {
  auto bytes = nii(2, 1, std::vector<int64_t>(12, 0), 4, 3, 1);  // pixdim 0.5 x 0.75 x 2
  put<int16_t>(bytes, 254, 0);                                  // no sform, no qform: sizes alone
  EXPECT_FALSE(nifti_affine(parse_nifti(bytes, "v.nii")).has_value());
  // qform: 90 degrees about z (b = c = 0, d = sqrt(1/2)), qfac -1, offset (10, -20, 30).
  put<int16_t>(bytes, 252, 1), put<float>(bytes, 76, -1), put<float>(bytes, 264, std::sqrt(0.5F));
  for (const auto& [at, value] : {std::pair<size_t, float>{268, 10}, {272, -20}, {276, 30}}) put<float>(bytes, at, value);
  const std::array<double, 12> turned = {0, -0.75, 0, 10,  //  x = -0.75 j + 10
                                         0.5, 0, 0, -20,   //  y = 0.5 i - 20
                                         0, 0, -2, 30};    //  z = -2 k + 30 (qfac -1)
  const auto q = nifti_affine(parse_nifti(bytes, "v.nii"));
  ASSERT_TRUE(q.has_value());
  for (size_t i = 0; i < 12; ++i) EXPECT_NEAR((*q)[i], turned[i], 1e-6) << i;
  EXPECT_EQ(nifti_axis_codes(parse_nifti(bytes, "v.nii")), "ALI");  // i along +y, j along -x, k along -z
  EXPECT_EQ(slice_plane("ALI"), "axial");
  EXPECT_EQ(slice_plane("RSA"), "coronal");
  EXPECT_EQ(slice_plane("ASL"), "sagittal");
  EXPECT_EQ(slice_plane(""), "");
  bytes[123] = 1;  // metres: the map in mm
  EXPECT_NEAR((*nifti_affine(parse_nifti(bytes, "v.nii")))[3], 10e3, 1e-3);
  bytes[123] = 2;
  // sform wins over the qform where both are given.
  put<int16_t>(bytes, 254, 2);
  const float rows[12] = {-0.5F, 0, 0, 90, 0, 0.75F, 0, -120, 0, 0, 2, -60};
  for (size_t i = 0; i < 12; ++i) put<float>(bytes, 280 + 4 * i, rows[i]);
  const auto a = nifti_affine(parse_nifti(bytes, "v.nii"));
  ASSERT_TRUE(a.has_value());
  for (size_t i = 0; i < 12; ++i) EXPECT_DOUBLE_EQ((*a)[i], rows[i]) << i;
  EXPECT_EQ(nifti_axis_codes(parse_nifti(bytes, "v.nii")), "LAS");
  // Alignment: the same map, a first voxel shifted by under and by over half the smallest side (0.5 mm),
  // and a flipped axis.
  const auto scan = parse_nifti(bytes, "ct.nii");
  EXPECT_EQ(nifti_misalignment(scan, scan, "ct.nii"), "");
  put<float>(bytes, 280 + 4 * 3, 90.2F);
  EXPECT_EQ(nifti_misalignment(parse_nifti(bytes, "l.nii"), scan, "ct.nii"), "");
  put<float>(bytes, 280 + 4 * 3, 93.0F), put<float>(bytes, 280 + 4 * 7, -116.0F);
  EXPECT_EQ(nifti_misalignment(parse_nifti(bytes, "l.nii"), scan, "ct.nii"),
            "its first voxel lies 5 mm from that of ct.nii: voxel for voxel, they do not pair the same places");
  put<float>(bytes, 280 + 4 * 3, 90.0F), put<float>(bytes, 280 + 4 * 7, -120.0F), put<float>(bytes, 280 + 4 * 5, -0.75F);  // y flipped
  EXPECT_EQ(nifti_misalignment(parse_nifti(bytes, "l.nii"), scan, "ct.nii"),
            "its j axis points another way than that of ct.nii (a turned or flipped volume): voxel for voxel, they do not pair the same places");
  put<int16_t>(bytes, 254, 0), put<int16_t>(bytes, 252, 0);  // a header without a map: nothing to compare
  EXPECT_EQ(nifti_misalignment(parse_nifti(bytes, "l.nii"), scan, "ct.nii"), "");
}

// One voxel's mL from pixdim 0.5 x 0.75 x 2 and xyzt_units: unknown read as mm, metres, micrometres.
TEST(Nifti, VoxelVolumeFromItsSizesAndUnits) {
  auto bytes = nii(2, 1, std::vector<int64_t>(12, 0), 4, 3, 1);
  EXPECT_NEAR(nifti_voxel_ml(parse_nifti(bytes, "v.nii")), 0.75e-3, 1e-15);
  bytes[123] = 2;  // mm
  EXPECT_NEAR(nifti_voxel_ml(parse_nifti(bytes, "v.nii")), 0.75e-3, 1e-15);
  bytes[123] = 1;  // m: 0.75 m^3
  EXPECT_NEAR(nifti_voxel_ml(parse_nifti(bytes, "v.nii")), 0.75e6, 1e-6);
  bytes[123] = 3 | 8;  // um (and seconds for time)
  EXPECT_NEAR(nifti_voxel_ml(parse_nifti(bytes, "v.nii")), 0.75e-12, 1e-24);
  put<float>(bytes, 80, 0);  // pixdim[1] = 0: no size
  EXPECT_TRUE(std::isnan(nifti_voxel_ml(parse_nifti(bytes, "v.nii"))));
}

// A folder of volumes and one of their label volumes as one dataset (data/stacks.h): NAME_NNN slices,
// each volume over its own range, hidden files left out, whole volumes held out; a missing label volume
// or one of another size an error before anything is written.
TEST(NiftiFolder, UnstacksEveryVolumeAndHoldsWholeVolumesOut) {
  namespace fs = std::filesystem;
  const auto root = test::temp_dir() + "/nifti_folder";
  fs::remove_all(root);
  fs::create_directories(root + "/images"), fs::create_directories(root + "/labels");
  const auto save = [](const std::string& file, const std::vector<char>& bytes) { std::ofstream(file, std::ios::binary).write(bytes.data(), bytes.size()); };
  std::vector<int64_t> a(2 * 3 * 4), b(3 * 3 * 4), a_labels(a.size()), b_labels(b.size());
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int64_t>(i * 7) - 50, a_labels[i] = static_cast<int64_t>(i % 3);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int64_t>(i * i % 1000), b_labels[i] = static_cast<int64_t>(i % 2);
  save(root + "/images/a.nii", nii(4, 2, a, 4, 3, 2));
  save(root + "/images/b.nii", nii(4, 2, b, 4, 3, 3, true));
  save(root + "/images/._a.nii", {'x', 'y'});  // macOS's resource fork: left out
  save(root + "/labels/a.nii", nii(2, 1, a_labels, 4, 3, 2));
  save(root + "/labels/b.nii", nii(2, 1, b_labels, 4, 3, 3));
  const auto out = root + "/out";
  const auto result = unstack_nifti_folder(root + "/images", root + "/labels", out, {}, 0.5, 0);
  EXPECT_EQ(result.volumes, 2);
  EXPECT_EQ(result.slices, 5);
  EXPECT_EQ(result.classes, 3);
  EXPECT_EQ(result.named, 3);
  ASSERT_EQ(result.windows.size(), 2u);
  EXPECT_EQ(result.channels, 1);
  EXPECT_EQ(result.windows[0], (std::vector<std::pair<double, double>>{{-50.0, 23 * 7 - 50.0}}));
  EXPECT_EQ(result.windows[1], (std::vector<std::pair<double, double>>{{0.0, 961.0}}));  // 31² % 1000 the largest
  EXPECT_FALSE(fs::exists(out + "/channels.json"));  // one channel: gray PNGs, as before
  ASSERT_EQ(result.val_volumes.size(), 1u);
  EXPECT_EQ(result.train_slices + result.val_slices, 5u);
  EXPECT_EQ(result.val_slices, result.val_volumes[0] == "a" ? 2u : 3u);
  const auto slice = read_png(out + "/images/b_002.png").pixels;  // voxels 24..35 of b over 0..961
  ASSERT_EQ(slice.scalar_type(), torch::kInt);
  for (int64_t i = 0; i < 12; ++i) {
    const double expected = std::round(static_cast<double>((24 + i) * (24 + i) % 1000) / 961.0 * 65535);
    EXPECT_NEAR(slice.flatten()[i].item<int>(), expected, 1) << i;
  }
  EXPECT_EQ(read_png(out + "/masks/a_001.png").pixels.flatten()[5].item<int>(), (12 + 5) % 3);
  EXPECT_FALSE(fs::exists(out + "/images/._a_000.png"));
  // A volume without its label volume, and one of another size: nothing written.
  fs::remove(root + "/labels/b.nii");
  const auto missing = test::error_of([&] { unstack_nifti_folder(root + "/images", root + "/labels", root + "/out2"); });
  EXPECT_NE(missing.find("b.nii: has no label volume of its name in"), std::string::npos) << missing;
  save(root + "/labels/b.nii", nii(2, 1, b_labels, 3, 4, 3));
  const auto other = test::error_of([&] { unstack_nifti_folder(root + "/images", root + "/labels", root + "/out2"); });
  EXPECT_NE(other.find("labels/b.nii: is 3x4x3 voxels but"), std::string::npos) << other;
  EXPECT_FALSE(fs::exists(root + "/out2/images") || fs::exists(root + "/out2/.images.partial"));
  const auto lone = test::error_of([&] { unstack_nifti_folder(root + "/labels", "", root + "/out3", {}, 0.2); });
  EXPECT_NE(lone.find("a validation split holds out labelled slices"), std::string::npos) << lone;
  // nnU-Net's layout: imagesTr/CASE_0000.nii (channel 0) with labelsTr/CASE.nii.gz, slices CASE_NNN.
  fs::create_directories(root + "/nn/imagesTr"), fs::create_directories(root + "/nn/labelsTr");
  save(root + "/nn/imagesTr/x_0000.nii", nii(4, 2, a, 4, 3, 2));
  save(root + "/nn/labelsTr/x.nii", nii(2, 1, a_labels, 4, 3, 2));
  const auto nn = unstack_nifti_folder(root + "/nn/imagesTr", root + "/nn/labelsTr", root + "/nn/out");
  EXPECT_EQ(nn.slices, 2);
  EXPECT_TRUE(fs::exists(root + "/nn/out/images/x_001.png") && fs::exists(root + "/nn/out/masks/x_001.png"));
  EXPECT_TRUE(nn.warnings.empty() && result.warnings.empty());
  // A label volume whose header turns it against its scan's: written voxel for voxel, with a warning naming both.
  const auto placed = [](std::vector<char> bytes, float x_step) {  // a whole sform: 0.5 x 0.75 x 2 mm, x stepping by x_step
    const float rows[12] = {x_step, 0, 0, 0, 0, 0.75F, 0, 0, 0, 0, 2, 0};
    for (size_t i = 0; i < 12; ++i) put<float>(bytes, 280 + 4 * i, rows[i]);
    return bytes;
  };
  save(root + "/nn/imagesTr/x_0000.nii", placed(nii(4, 2, a, 4, 3, 2), 0.5F));
  save(root + "/nn/labelsTr/x.nii", placed(nii(2, 1, a_labels, 4, 3, 2), 0.5F));
  EXPECT_TRUE(unstack_nifti_folder(root + "/nn/imagesTr", root + "/nn/labelsTr", root + "/nn/out_placed").warnings.empty());
  save(root + "/nn/labelsTr/x.nii", placed(nii(2, 1, a_labels, 4, 3, 2), -0.5F));
  const auto flipped = unstack_nifti_folder(root + "/nn/imagesTr", root + "/nn/labelsTr", root + "/nn/out_flipped");
  EXPECT_EQ(flipped.warnings, (std::vector<std::string>{root + "/nn/labelsTr/x.nii: its i axis points another way than that of " + root +
                                                        "/nn/imagesTr/x_0000.nii (a turned or flipped volume): voxel for voxel, they do not pair the same places"}));
  EXPECT_EQ(unstack_nifti(root + "/nn/imagesTr/x_0000.nii", root + "/nn/labelsTr/x.nii", root + "/nn/out_one").warnings, flipped.warnings);
}

// A folder of cases by their headers alone: sizes, voxel sizes, orientations, and the warnings a 2-D net's
// user needs (mixed orientations, in-plane sizes far apart, no map).
TEST(NiftiFolder, CheckReadsTheHeadersAndNamesWhatDiffers) {
  namespace fs = std::filesystem;
  const std::string root = test::fresh_dir("nifti_check");
  const auto save = [&](const std::string& name, float x_step, bool map) {
    auto bytes = nii(2, 1, std::vector<int64_t>(4 * 3 * 2, 0), 4, 3, 2);
    put<float>(bytes, 80, std::abs(x_step));
    const float rows[12] = {x_step, 0, 0, 0, 0, 0.75F, 0, 0, 0, 0, 2, 0};
    for (size_t i = 0; i < 12; ++i) put<float>(bytes, 280 + 4 * i, rows[i]);
    if (!map) put<int16_t>(bytes, 254, 0);
    std::ofstream(root + "/" + name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  save("a.nii", 0.5F, true), save("b.nii", 0.5F, true), save("c.nii", -1.0F, true), save("d.nii", 0.5F, false);
  const auto report = check_volume_folder(root);
  ASSERT_EQ(report.cases.size(), 4u);
  EXPECT_EQ(report.cases[0].name, "a");
  EXPECT_EQ(report.cases[0].axes, "RAS");
  EXPECT_EQ(report.cases[2].axes, "LAS");
  EXPECT_EQ(report.cases[3].axes, "");
  EXPECT_EQ(report.cases[2].voxel_mm, (std::array<double, 3>{1.0, 0.75, 2.0}));
  EXPECT_EQ((std::array<int64_t, 4>{report.cases[1].channels, report.cases[1].width, report.cases[1].height, report.cases[1].slices}),
            (std::array<int64_t, 4>{1, 4, 3, 2}));
  EXPECT_EQ(report.median_mm, (std::array<double, 3>{0.5, 0.75, 2.0}));
  ASSERT_EQ(report.warnings.size(), 3u) << report.warnings.size();
  EXPECT_EQ(report.warnings[0].rfind("the cases are stored in 2 orientations: 1 LAS (axial slices: c); 2 RAS (axial slices: a, b). ", 0), 0u)
      << report.warnings[0];
  EXPECT_EQ(report.warnings[1].rfind("cut as RAS, their in-plane voxel sides range 0.5 to 1 mm: a 2-D net sees the same anatomy at scales up "
                                     "to 2x apart",
                                     0),
            0u)
      << report.warnings[1];
  EXPECT_EQ(report.warnings[2], "1 case(s) give no orientation (neither sform nor qform): d");
  EXPECT_TRUE(report.errors.empty());
  fs::remove(root + "/c.nii"), fs::remove(root + "/d.nii");
  EXPECT_TRUE(check_volume_folder(root).warnings.empty());
  std::ofstream(root + "/e.nii", std::ios::binary) << "not a header";  // a bad header: named, the others still listed
  const auto with_bad = check_volume_folder(root);
  EXPECT_EQ(with_bad.cases.size(), 2u);
  ASSERT_EQ(with_bad.errors.size(), 1u);
  EXPECT_EQ(with_bad.errors[0].rfind(root + "/e.nii: ", 0), 0u) << with_bad.errors[0];
}

// Scales are judged in the slices a net would see: two cases of the same 0.5 x 0.5 x 3 mm voxels, one stored axial
// and one sagittal, look alike as stored, but cut alike (RAS, as the orientation warning suggests) the sagittal
// case's columns are 3 mm wide. With orient, sizes, voxel sides and their median are the cut's, by hand.
TEST(NiftiFolder, CheckJudgesScalesInTheSlicesTheNetWouldSee) {
  namespace fs = std::filesystem;
  const std::string root = test::fresh_dir("nifti_check_cut");
  const auto save = [&](const std::string& name, const std::array<float, 12>& rows, bool map) {
    auto bytes = nii(2, 1, std::vector<int64_t>(4 * 3 * 2, 0), 4, 3, 2);  // i 4, j 3, k 2
    const float pixdim[3] = {0.5F, 0.5F, 3};
    for (size_t i = 0; i < 3; ++i) put<float>(bytes, 80 + 4 * i, pixdim[i]);
    for (size_t i = 0; i < 12; ++i) put<float>(bytes, 280 + 4 * i, rows[i]);
    if (!map) put<int16_t>(bytes, 254, 0), put<int16_t>(bytes, 252, 0);
    std::ofstream(root + "/" + name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  save("axial.nii", {0.5F, 0, 0, 0, 0, 0.5F, 0, 0, 0, 0, 3, 0}, true);       // RAS
  save("sagittal.nii", {0, 0, -3, 0, -0.5F, 0, 0, 0, 0, 0.5F, 0, 0}, true);  // x = -3k, y = -0.5i, z = 0.5j: PSL
  const auto stored = check_volume_folder(root);
  ASSERT_EQ(stored.cases.size(), 2u);
  EXPECT_EQ(stored.cases[1].axes, "PSL");
  EXPECT_EQ(stored.cases[1].voxel_mm, (std::array<double, 3>{0.5, 0.5, 3}));
  EXPECT_TRUE(stored.mixed_orientations && stored.mixed_scales);
  ASSERT_EQ(stored.warnings.size(), 2u);
  EXPECT_EQ(stored.warnings[1].rfind("cut as RAS, their in-plane voxel sides range 0.5 to 3 mm: a 2-D net sees the same anatomy at scales up to 6x "
                                     "apart",
                                     0),
            0u)
      << stored.warnings[1];
  const auto cut = check_volume_folder(root, "", {}, "RAS");
  ASSERT_EQ(cut.cases.size(), 2u);
  EXPECT_EQ(cut.cases[1].axes, "PSL");  // as stored
  EXPECT_EQ(cut.cases[1].voxel_mm, (std::array<double, 3>{3, 0.5, 0.5}));  // columns along k, rows along i, slices along j
  EXPECT_EQ((std::array<int64_t, 3>{cut.cases[1].width, cut.cases[1].height, cut.cases[1].slices}), (std::array<int64_t, 3>{2, 4, 3}));
  EXPECT_EQ((std::array<int64_t, 3>{cut.cases[0].width, cut.cases[0].height, cut.cases[0].slices}), (std::array<int64_t, 3>{4, 3, 2}));
  EXPECT_EQ(cut.median_mm, (std::array<double, 3>{1.75, 0.5, 1.75}));
  EXPECT_TRUE(!cut.mixed_orientations && cut.mixed_scales);
  ASSERT_EQ(cut.warnings.size(), 1u);
  EXPECT_EQ(cut.warnings[0].rfind("in-plane voxel sides range 0.5 to 3 mm", 0), 0u) << cut.warnings[0];
  save("z.nii", {0.5F, 0, 0, 0, 0, 0.5F, 0, 0, 0, 0, 3, 0}, false);  // no map: cannot be cut, named
  const auto unplaced = check_volume_folder(root, "", {}, "LPS");
  EXPECT_EQ(unplaced.cases.size(), 2u);
  EXPECT_EQ(unplaced.errors, (std::vector<std::string>{root + "/z.nii: gives no orientation (neither sform nor qform), so its slices cannot be cut as LPS ones"}));
  EXPECT_EQ(test::error_of([&] { check_volume_folder(root, "", {}, "RAX"); }),
            "orient: 'RAX' is not an orientation: three letters, one of R/L, A/P and S/I each (e.g. RAS)");
}

// With a folder of label volumes, each is read and checked as nnU-Net's dataset check does: every problem
// listed by file (none found, another size, a voxel that is no label, a label the task does not name), the
// labels present and their voxels counted by hand, and warnings for other voxel sizes, another place and a
// label volume without its case.
TEST(NiftiFolder, CheckWithLabelVolumesReadsAndNamesEachProblem) {
  namespace fs = std::filesystem;
  const auto root = test::temp_dir() + "/nifti_check_labels";
  fs::remove_all(root);
  fs::create_directories(root + "/imagesTr"), fs::create_directories(root + "/labelsTr");
  const auto save = [](const std::string& file, std::vector<char> bytes) {  // with a whole sform: 0.5 x 0.75 x 2 mm, RAS
    const float rows[12] = {get<float>(bytes, 80), 0, 0, get<float>(bytes, 292), 0, 0.75F, 0, 0, 0, 0, 2, 0};
    for (size_t i = 0; i < 12; ++i) put<float>(bytes, 280 + 4 * i, rows[i]);
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  std::vector<int64_t> labels(4 * 3 * 2, 0);
  labels[5] = 1, labels[6] = 2, labels[7] = 2;  // 21 background, 1 of label 1, 2 of label 2
  for (const char* name : {"a", "b", "c", "d", "e", "f", "g"}) save(root + "/imagesTr/" + name + ".nii", nii(4, 2, std::vector<int64_t>(24, 0), 4, 3, 2));
  save(root + "/labelsTr/a.nii", nii(2, 1, labels, 4, 3, 2));
  auto b = nii(2, 1, labels, 4, 3, 2);
  put<float>(b, 80, 0.6F);  // 0.6 mm voxels across, against the case's 0.5
  save(root + "/labelsTr/b.nii", b);
  save(root + "/labelsTr/c.nii", nii(2, 1, std::vector<int64_t>(24, 0), 3, 4, 2));  // 3 x 4 x 2
  auto e = labels;
  e[9] = 7;  // a label the task does not name
  save(root + "/labelsTr/e.nii", nii(2, 1, e, 4, 3, 2));
  save(root + "/labelsTr/f.nii", nii(16, 4, std::vector<int64_t>(24, 0x3FC00000), 4, 3, 2));  // float32 1.5 everywhere
  auto g = nii(2, 1, labels, 4, 3, 2);
  put<float>(g, 280 + 12, 5.0F);  // srow_x's offset: the first voxel 5 mm away
  save(root + "/labelsTr/g.nii", g);
  save(root + "/labelsTr/z.nii", nii(2, 1, labels, 4, 3, 2));  // no case of its name
  std::ofstream(root + "/dataset.json") << R"({"labels": {"0": "background", "1": "liver", "2": "tumour"}})";
  int64_t calls = 0;
  const auto report = check_volume_folder(root + "/imagesTr", root + "/labelsTr", [&](int64_t done, int64_t total) {
    EXPECT_EQ((std::pair<int64_t, int64_t>{done, total}), (std::pair<int64_t, int64_t>{++calls, 7}));
  });
  EXPECT_EQ(calls, 7);
  ASSERT_EQ(report.cases.size(), 7u);  // every case listed, its problems beside it
  EXPECT_EQ(report.cases[0].mask, root + "/labelsTr/a.nii");
  EXPECT_EQ(report.cases[0].labels, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(report.cases[3].mask, "");
  // a, b, e and g are counted (c and f fail before, d has none): 4 x 21 background less e's one, 4 of label 1, 8 of label 2, e's 7.
  EXPECT_EQ(report.label_voxels, (std::vector<int64_t>{83, 4, 8, 0, 0, 0, 0, 1}));
  const std::vector<std::string> errors{
      root + "/labelsTr/c.nii: is 3x4x2 voxels but " + root + "/imagesTr/c.nii is 4x3x2",
      root + "/imagesTr/d.nii: has no label volume of its name in " + root + "/labelsTr (d.nii.gz not found)",
      root + "/labelsTr/e.nii: holds label 7 in 1 voxel(s), which the task's dataset.json does not name",
      root + "/labelsTr/f.nii: voxel (0,0,0) holds 1.5: a label volume holds class indices 0..65535"};
  EXPECT_EQ(report.errors, errors);
  ASSERT_EQ(report.warnings.size(), 3u);
  EXPECT_EQ(report.warnings[0], root + "/labelsTr/b.nii: its voxels are 0.6 x 0.75 x 2 mm but those of " + root + "/imagesTr/b.nii are 0.5 x 0.75 x 2 mm");
  EXPECT_EQ(report.warnings[1].rfind(root + "/labelsTr/g.nii: its first voxel lies 5 mm from that of " + root + "/imagesTr/g.nii", 0), 0u) << report.warnings[1];
  EXPECT_EQ(report.warnings[2], "1 label volume(s) in " + root + "/labelsTr have no volume of their name in " + root + "/imagesTr: z.nii");
  EXPECT_NE(test::error_of([&] { check_volume_folder(root + "/imagesTr", root + "/nowhere"); }).find("nowhere: is not a folder"), std::string::npos);
}

// A task's dataset.json beside its folders of volumes names classes and channels in either form (the
// Decathlon's {"1": "name"}, nnU-Net v2's {"name": 1}); a missing or malformed file names nothing.
TEST(TaskNames, BothFormsFromTheFileBesideTheFolder) {
  namespace fs = std::filesystem;
  const auto root = test::temp_dir() + "/task_names";
  fs::remove_all(root);
  fs::create_directories(root + "/imagesTr");
  EXPECT_TRUE(task_names(root + "/imagesTr", "labels").empty());
  EXPECT_NO_THROW(task_names("", "labels"));  // a file named without a folder: its folder is the working one
  std::ofstream(root + "/dataset.json") << R"({"labels": {"0": "background", "2": "tumour"}, "channel_names": {"background": 0, "T2": 1, "regions": [1, 2]},
                                             "modality": "none"})";
  EXPECT_EQ(task_names(root + "/imagesTr", "labels"), (std::map<int64_t, std::string>{{0, "background"}, {2, "tumour"}}));
  EXPECT_EQ(task_names(root + "/imagesTr/", "channel_names"), (std::map<int64_t, std::string>{{0, "background"}, {1, "T2"}}));
  EXPECT_TRUE(task_names(root + "/imagesTr", "modality").empty());
  std::ofstream(root + "/dataset.json") << "{not json";
  EXPECT_TRUE(task_names(root + "/imagesTr", "labels").empty());
}

// Cases of several channels (MRI modalities), in both layouts: nnU-Net's file per channel (NAME_0000,
// NAME_0001) and the Decathlon's 4-D file. Each slice is one PNG of that many 16-bit samples, channel
// c mapped by its own window; channels.json names them from the task's dataset.json.
TEST(NiftiFolder, CasesOfSeveralChannelsAsPngsOfThatManySamples) {
  namespace fs = std::filesystem;
  const auto root = test::temp_dir() + "/nifti_channels";
  fs::remove_all(root);
  fs::create_directories(root + "/imagesTr"), fs::create_directories(root + "/labelsTr");
  const auto save = [](const std::string& file, const std::vector<char>& bytes) { std::ofstream(file, std::ios::binary).write(bytes.data(), bytes.size()); };
  std::vector<int64_t> t2(2 * 3 * 4), adc(t2.size()), labels(t2.size());
  for (size_t i = 0; i < t2.size(); ++i) t2[i] = static_cast<int64_t>(i * 5), adc[i] = 1000 - static_cast<int64_t>(i * i), labels[i] = i % 2;
  save(root + "/imagesTr/x_0000.nii", nii(4, 2, t2, 4, 3, 2)), save(root + "/imagesTr/x_0001.nii", nii(4, 2, adc, 4, 3, 2, true));
  save(root + "/labelsTr/x.nii", nii(2, 1, labels, 4, 3, 2));
  // y: the Decathlon's layout, both channels in one 4-D file (dim[0] 4, dim[3] 2 slices, dim[4] 2 channels).
  std::vector<int64_t> both(t2);
  both.insert(both.end(), adc.begin(), adc.end());
  auto four_d = nii(4, 2, both, 4, 3, 4);
  put<int16_t>(four_d, 40, 4), put<int16_t>(four_d, 46, 2), put<int16_t>(four_d, 48, 2);
  save(root + "/imagesTr/y.nii", four_d), save(root + "/labelsTr/y.nii", nii(2, 1, labels, 4, 3, 2));
  std::ofstream(root + "/dataset.json") << R"({"channel_names": {"0": "T2", "1": "ADC"}})";
  EXPECT_EQ(nifti_channel_files(root + "/imagesTr/x_0000.nii").size(), 2u);
  EXPECT_TRUE(is_later_channel_file(root + "/imagesTr/x_0001.nii"));
  EXPECT_FALSE(is_later_channel_file(root + "/imagesTr/x_0000.nii") || is_later_channel_file(root + "/imagesTr/y.nii"));
  EXPECT_EQ(nifti_case_name(root + "/imagesTr/x_0000.nii"), "x");
  EXPECT_EQ(nifti_case_file(root + "/imagesTr/x_0001.nii"), root + "/imagesTr/x_0000.nii");
  EXPECT_EQ(nifti_case_file(root + "/imagesTr/y.nii"), root + "/imagesTr/y.nii");
  const auto x = read_nifti_case(root + "/imagesTr/x_0000.nii"), y = read_nifti_case(root + "/imagesTr/y.nii");
  ASSERT_EQ(x.size(), 2u);
  ASSERT_EQ(y.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_TRUE(torch::equal(x[c].voxels, y[c].voxels)) << c;
    EXPECT_EQ(y[c].voxels.sizes(), (std::vector<int64_t>{2, 3, 4}));
  }
  EXPECT_EQ(y[1].voxels[1][2][3].item<int64_t>(), 1000 - 23 * 23);
  const auto out = root + "/out";
  const auto result = unstack_nifti_folder(root + "/imagesTr", root + "/labelsTr", out);
  EXPECT_EQ(result.volumes, 2);
  EXPECT_EQ(result.channels, 2);
  EXPECT_EQ(result.slices, 4);
  const auto windows = std::vector<std::pair<double, double>>{{0.0, 115.0}, {1000.0 - 23 * 23, 1000.0}};
  EXPECT_EQ(result.windows[0], windows);
  const auto slice = read_png(out + "/images/x_001.png").pixels;  // gray + alpha, 16-bit
  ASSERT_EQ(slice.sizes(), (std::vector<int64_t>{3, 4, 2}));
  for (int64_t i = 0; i < 12; ++i) {
    const auto v = 12 + i;
    EXPECT_NEAR(slice[i / 4][i % 4][0].item<int>(), std::round((v * 5.0) / 115 * 65535), 1) << i;
    EXPECT_NEAR(slice[i / 4][i % 4][1].item<int>(), std::round((1000.0 - v * v - 471) / 529 * 65535), 1) << i;
  }
  EXPECT_TRUE(torch::equal(read_png(out + "/images/y_001.png").pixels, slice));  // the same case in the other layout
  VolumeWindow percentiles;
  percentiles.percentiles = {{10.0, 90.0}};
  const auto clipped = unstack_nifti_folder(root + "/imagesTr", root + "/labelsTr", root + "/out_p", percentiles);
  EXPECT_EQ(clipped.windows[0], (std::vector<std::pair<double, double>>{nifti_percentile_window(x[0], 10, 90), nifti_percentile_window(x[1], 10, 90)}));
  std::ifstream names(out + "/channels.json");
  EXPECT_EQ(nlohmann::json::parse(names)["names"], nlohmann::json({"T2", "ADC"}));
  // A case of another channel count, and one of more than a PNG's 4: errors naming the file, nothing written.
  save(root + "/imagesTr/z.nii", nii(4, 2, t2, 4, 3, 2)), save(root + "/labelsTr/z.nii", nii(2, 1, labels, 4, 3, 2));
  const auto mixed = test::error_of([&] { unstack_nifti_folder(root + "/imagesTr", root + "/labelsTr", root + "/out2"); });
  EXPECT_NE(mixed.find("z.nii: is a case of 1 channel(s) but"), std::string::npos) << mixed;
  EXPECT_FALSE(fs::exists(root + "/out2/images"));
  // 2.5-D: each slice with its neighbours (RGB: k-1, k, k+1, the ends repeated) of a one-channel volume.
  const auto context = unstack_nifti(root + "/labelsTr/x.nii", "", root + "/out_context", NiftiSlicing({}, 1));
  EXPECT_EQ(context.slices, 2);
  const auto rgb = read_png(root + "/out_context/images/000.png").pixels;  // slices 0, 0, 1 of labels 0/1 over 0..1
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{3, 4, 3}));
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(rgb[i / 4][i % 4][0].item<int>(), labels[static_cast<size_t>(i)] * 65535) << i;
    EXPECT_EQ(rgb[i / 4][i % 4][1].item<int>(), labels[static_cast<size_t>(i)] * 65535) << i;
    EXPECT_EQ(rgb[i / 4][i % 4][2].item<int>(), labels[static_cast<size_t>(12 + i)] * 65535) << i;
  }
  std::ifstream context_names(root + "/out_context/channels.json");
  EXPECT_EQ(nlohmann::json::parse(context_names), nlohmann::json({{"names", {"slice -1", "slice 0", "slice +1"}}, {"context", 1}}));
  // Past a PNG's 4 planes, a uint16 C x H x W .npy of the same values: each channel's slices k-1..k+1 in turn.
  unstack_nifti(root + "/imagesTr/x_0000.nii", "", root + "/out_c2", NiftiSlicing({}, 1));
  const auto planes = read_npy(root + "/out_c2/images/000.npy");  // T2 and ADC slices 0, 0, 1
  ASSERT_EQ(planes.sizes(), (std::vector<int64_t>{6, 3, 4}));
  const auto at = [&](const std::string& file, int64_t c) { return read_png(out + "/images/" + file).pixels.select(2, c); };
  for (const auto& [plane, file, c] : std::vector<std::tuple<int64_t, std::string, int64_t>>{
           {0, "x_000.png", 0}, {1, "x_000.png", 0}, {2, "x_001.png", 0}, {3, "x_000.png", 1}, {4, "x_000.png", 1}, {5, "x_001.png", 1}})
    EXPECT_TRUE(torch::equal(planes[plane], at(file, c))) << plane;
  EXPECT_TRUE(torch::allclose(read_image(root + "/out_c2/images/000.npy"), planes.to(torch::kFloat) / 65535.0f, 0, 0));
  std::ifstream names_c2(root + "/out_c2/channels.json");
  EXPECT_EQ(nlohmann::json::parse(names_c2),
            nlohmann::json({{"names", {"T2 slice -1", "T2 slice 0", "T2 slice +1", "ADC slice -1", "ADC slice 0", "ADC slice +1"}}, {"context", 1}}));
  unstack_nifti(root + "/labelsTr/x.nii", "", root + "/out_c3", NiftiSlicing({}, 2));  // 5 slices of one channel: 0, 0, 0, 1, 1
  const auto five_slices = read_npy(root + "/out_c3/images/001.npy");
  ASSERT_EQ(five_slices.sizes(), (std::vector<int64_t>{5, 3, 4}));
  for (int64_t d = 0; d < 5; ++d)
    for (int64_t i = 0; i < 12; ++i)
      EXPECT_EQ(five_slices[d][i / 4][i % 4].item<int>(), labels[static_cast<size_t>((d == 0 ? 0 : 12) + i)] * 65535) << d << " " << i;
  EXPECT_NE(test::error_of([&] { unstack_nifti(root + "/labelsTr/x.nii", "", root + "/out_c4", NiftiSlicing({}, 9)); })
                .find("--context: 9: a slice and its N neighbours on either side, N of 0..8"),
            std::string::npos);
  std::vector<int64_t> five;
  for (int c = 0; c < 5; ++c) five.insert(five.end(), t2.begin(), t2.end());
  auto five_d = nii(4, 2, five, 4, 3, 10);
  put<int16_t>(five_d, 40, 4), put<int16_t>(five_d, 46, 2), put<int16_t>(five_d, 48, 5);
  save(root + "/five.nii", five_d);
  EXPECT_EQ(read_nifti_channels(root + "/five.nii").size(), 5u);
  unstack_nifti(root + "/five.nii", "", root + "/out3");  // five channels, each the T2 volume: five equal planes
  const auto five_channels = read_npy(root + "/out3/images/001.npy");
  ASSERT_EQ(five_channels.sizes(), (std::vector<int64_t>{5, 3, 4}));
  for (int64_t c = 0; c < 5; ++c) EXPECT_TRUE(torch::equal(five_channels[c], at("x_001.png", 0))) << c;
  const auto many = test::error_of([&] { unstack_nifti(root + "/five.nii", "", root + "/out4", NiftiSlicing({}, 7)); });
  EXPECT_NE(many.find("five.nii: is a case of 5 channel(s), 75 planes a slice with --context 7: fcn data unstack writes slices of up to 64 planes"),
            std::string::npos)
      << many;
  const auto one = test::error_of([&] { read_nifti(root + "/five.nii"); });
  EXPECT_NE(one.find("five.nii: holds 5 volumes along dimension 4 (a 4-D series, or channels)"), std::string::npos) << one;
}

// In-plane resampling by hand: the slice size from the header's voxel sides (0.5 x 0.75 mm) and the pixel
// asked for; labels by each value's bilinear indicator, the largest taken, ties to the lower value.
TEST(Nifti, SlicesResampledToAPixelSizeByHand) {
  auto bytes = nii(2, 1, std::vector<int64_t>(4 * 3 * 2, 0), 4, 3, 2);
  const auto volume = parse_nifti(bytes, "v.nii");
  EXPECT_EQ(resampled_slice_size(volume, {1, 1}, "v.nii"), (std::pair<int64_t, int64_t>{2, 2}));  // round(3 x 0.75), round(4 x 0.5)
  EXPECT_EQ(resampled_slice_size(volume, {0.25, 0.25}, "v.nii"), (std::pair<int64_t, int64_t>{9, 8}));
  EXPECT_EQ(resampled_slice_size(volume, {0.5, 0.75}, "v.nii"), (std::pair<int64_t, int64_t>{3, 4}));
  EXPECT_EQ(resampled_slice_size(volume, {100, 100}, "v.nii"), (std::pair<int64_t, int64_t>{1, 1}));  // at least one pixel
  EXPECT_TRUE(pixel_mm_problem({0.8, 0.8}).empty());
  EXPECT_FALSE(pixel_mm_problem({0, 1}).empty() || pixel_mm_problem({std::nan(""), 1}).empty() || pixel_mm_problem({1, 2000}).empty());
  const auto bad = test::error_of([&] { resampled_slice_size(volume, {-1, 1}, "v.nii"); });
  EXPECT_EQ(bad, "v.nii: a pixel's sides must be 0.001..1000 mm (got -1 x 1)");
  put<float>(bytes, 80, 0);  // pixdim[1] = 0: no x size
  const auto unsized = test::error_of([&] { resampled_slice_size(parse_nifti(bytes, "v.nii"), {1, 1}, "v.nii"); });
  EXPECT_EQ(unsized.rfind("v.nii: gives no in-plane voxel size (pixdim)", 0), 0u) << unsized;
  // Labels: 0 | 255 doubled across: columns at source x -0.25, 0.25, 0.75, 1.25 give 255 weight 0, 0.25, 0.75, 1.
  const auto halves = torch::tensor({0, 255, 0, 255}, torch::kByte).view({2, 2});
  const auto wide = resample_labels(halves, 2, 4);
  EXPECT_EQ(wide.scalar_type(), torch::kByte);
  EXPECT_TRUE(torch::equal(wide, torch::tensor({0, 0, 255, 255, 0, 0, 255, 255}, torch::kByte).view({2, 4})));
  // Halved: each output pixel's source x is 0.5 and 2.5, between two equal labels.
  const auto sides = torch::tensor({1, 1, 2, 2}, torch::kLong).repeat({4, 1});
  EXPECT_TRUE(torch::equal(resample_labels(sides, 2, 2), torch::tensor({1, 2, 1, 2}, torch::kLong).view({2, 2})));
  EXPECT_EQ(resample_labels(torch::tensor({5, 9}, torch::kInt).view({1, 2}), 1, 1).item<int>(), 5);  // 0.5 each: the lower value
  EXPECT_TRUE(torch::equal(resample_labels(torch::full({1, 1}, 3, torch::kShort), 2, 3), torch::full({2, 3}, 3, torch::kShort)));
  torch::manual_seed(3);
  const auto values = torch::tensor({0, 4, 255}, torch::kLong);
  const auto random = values.index({torch::randint(0, 3, {7, 9}, torch::kLong)});
  const auto resampled = resample_labels(random, 13, 5);
  EXPECT_EQ(resampled.sizes(), (std::vector<int64_t>{13, 5}));
  EXPECT_TRUE(torch::isin(resampled, values).all().item<bool>()) << "no value made up";
  EXPECT_TRUE(torch::equal(resample_labels(random, 7, 9), random));
  EXPECT_NE(test::error_of([&] { resample_labels(random.to(torch::kFloat), 2, 2); }).find("needs H x W integer labels"), std::string::npos);
}

// fcn data unstack --spacing: each case's slices resampled to the pixel given, whatever its own voxel
// sides; images bilinearly (a pixel by hand), labels by resample_labels; slicing.json, which the dataset reads.
TEST(NiftiFolder, UnstackResamplesEachCaseToTheSpacingGiven) {
  namespace fs = std::filesystem;
  const auto root = test::temp_dir() + "/nifti_spacing";
  fs::remove_all(root);
  fs::create_directories(root + "/images"), fs::create_directories(root + "/labels");
  const auto save = [](const std::string& file, const std::vector<char>& bytes) { std::ofstream(file, std::ios::binary).write(bytes.data(), bytes.size()); };
  std::vector<int64_t> a(4 * 3 * 2), a_labels(a.size());
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int64_t>(i * 7) - 50, a_labels[i] = static_cast<int64_t>(i % 3);
  save(root + "/images/a.nii", nii(4, 2, a, 4, 3, 2)), save(root + "/labels/a.nii", nii(2, 1, a_labels, 4, 3, 2));
  auto b = nii(4, 2, a, 4, 3, 2);
  put<float>(b, 80, 1.0F), put<float>(b, 84, 1.5F);  // 1 x 1.5 mm voxels
  save(root + "/images/b.nii", b), save(root + "/labels/b.nii", nii(2, 1, a_labels, 4, 3, 2));
  const auto out = root + "/out";
  const auto result = unstack_nifti_folder(root + "/images", root + "/labels", out, NiftiSlicing({}, 0, {{0.25, 0.25}}));
  EXPECT_EQ(result.slices, 4);
  EXPECT_EQ(read_png(out + "/images/a_000.png").pixels.sizes(), (std::vector<int64_t>{9, 8, 1}));   // 3 x 0.75 / 0.25, 4 x 0.5 / 0.25
  EXPECT_EQ(read_png(out + "/images/b_001.png").pixels.sizes(), (std::vector<int64_t>{18, 16, 1}));  // 3 x 1.5 / 0.25, 4 x 1 / 0.25
  EXPECT_EQ(read_png(out + "/masks/b_001.png").pixels.sizes(), (std::vector<int64_t>{18, 16, 1}));
  // a's slice 0 over its window -50..111: voxel (y, x) is ((4y + x) 7) / 161. Output (4, 3) samples source
  // y = 4.5 x 3/9 - 0.5 = 1, x = 3.5 x 4/8 - 0.5 = 1.25: voxels (1, 1) and (1, 2) weighted 0.75 and 0.25.
  const auto image = read_png(out + "/images/a_000.png").pixels;
  EXPECT_NEAR(image[4][3][0].item<int>(), std::round((5 * 7 * 0.75 + 6 * 7 * 0.25) / 161 * 65535), 1);
  EXPECT_EQ(image[0][0][0].item<int>(), 0);
  const auto mask = read_png(out + "/masks/a_000.png").pixels;  // labels (4y + x) % 3: 2 at (1, 1) outweighs 0 at (1, 2)
  EXPECT_EQ(mask[4][3][0].item<int>(), 2);
  EXPECT_EQ(mask[0][0][0].item<int>(), 0);
  EXPECT_TRUE(torch::isin(mask, torch::tensor({0, 1, 2}, mask.options())).all().item<bool>());
  std::ifstream spacing(out + "/slicing.json");
  EXPECT_EQ(nlohmann::json::parse(spacing), nlohmann::json({{"pixel_mm", {0.25, 0.25}}}));
  EXPECT_EQ(SegmentationDataset(out, "all").pixel_mm(), (std::optional<std::array<double, 2>>{{0.25, 0.25}}));
  // One volume: the size written; without --spacing no slicing.json and slices as stored.
  const auto one = unstack_nifti(root + "/images/b.nii", root + "/labels/b.nii", root + "/one", NiftiSlicing({}, 0, {{0.5, 0.5}}));
  EXPECT_EQ((std::pair<int64_t, int64_t>{one.height, one.width}), (std::pair<int64_t, int64_t>{9, 8}));
  const auto plain = unstack_nifti(root + "/images/b.nii", root + "/labels/b.nii", root + "/plain");
  EXPECT_EQ((std::pair<int64_t, int64_t>{plain.height, plain.width}), (std::pair<int64_t, int64_t>{3, 4}));
  EXPECT_FALSE(fs::exists(root + "/plain/slicing.json"));
  EXPECT_EQ(SegmentationDataset(root + "/plain", "all").pixel_mm(), std::nullopt);
  // A case whose header gives no voxel size: named before any slice is written.
  auto unsized = nii(4, 2, a, 4, 3, 2);
  put<float>(unsized, 84, 0);
  save(root + "/images/c.nii", unsized), save(root + "/labels/c.nii", nii(2, 1, a_labels, 4, 3, 2));
  const auto error = test::error_of([&] { unstack_nifti_folder(root + "/images", root + "/labels", root + "/out2", NiftiSlicing({}, 0, {{1, 1}})); });
  EXPECT_EQ(error.rfind(root + "/images/c.nii: gives no in-plane voxel size", 0), 0u) << error;
  EXPECT_FALSE(fs::exists(root + "/out2/images") || fs::exists(root + "/out2/.images.partial"));
  // slicing.json that is not a pixel size: one line naming it.
  std::ofstream(out + "/slicing.json") << R"({"pixel_mm": [0, 1]})";
  const auto zero = test::error_of([&] { SegmentationDataset(out, "all"); });
  EXPECT_EQ(zero, out + "/slicing.json: a pixel's sides must be 0.001..1000 mm (got 0 x 1)");
  std::ofstream(out + "/slicing.json") << R"({"pixel_mm": 0.8})";
  EXPECT_NE(test::error_of([&] { SegmentationDataset(out, "all"); }).find("slicing.json: must be {\"pixel_mm\": [X, Y], \"axes\": \"RAS\"}"), std::string::npos);
}

// A volume stored PSL (i toward the back, j up, k toward the patient's left: a sagittal stack) cut as RAS: axial
// slices along j, rows along i reversed, columns along k reversed, each slice checked against the voxels by
// index by hand; put_slice puts every slice back; the resampled size from the cut's own voxel sides.
TEST(Nifti, SliceAxesCutAVolumeAsOneStoredInAnotherOrientation) {
  std::vector<int64_t> values(4 * 3 * 2);
  for (size_t n = 0; n < values.size(); ++n) values[n] = static_cast<int64_t>(n * 3);
  auto bytes = nii(4, 2, values, 4, 3, 2);  // i: 4 of 0.5 mm, j: 3 of 0.75, k: 2 of 2
  const float rows[12] = {0, 0, -2, 10, -0.5F, 0, 0, 20, 0, 0.75F, 0, 30};  // x = -2k, y = -0.5i, z = 0.75j
  for (size_t n = 0; n < 12; ++n) put<float>(bytes, 280 + 4 * n, rows[n]);
  const auto volume = parse_nifti(bytes, "psl.nii");
  EXPECT_EQ(nifti_axis_codes(volume), "PSL");
  const auto axes = nifti_slice_axes(volume, "RAS", "psl.nii");
  EXPECT_EQ(axes.axis, (std::array<int, 3>{2, 0, 1}));  // columns along k, rows along i, slices along j
  EXPECT_EQ(axes.reversed, (std::array<bool, 3>{true, true, false}));
  EXPECT_EQ(sliced_shape(volume, axes), (std::array<int64_t, 3>{3, 4, 2}));
  const auto v = volume.voxels.to(torch::kLong);  // [k][j][i]
  auto back = torch::zeros_like(v);
  auto probs = torch::stack({v, v * 2}).to(torch::kFloat);  // leading dimensions ride along
  auto probs_back = torch::zeros_like(probs);
  for (int64_t s = 0; s < 3; ++s) {
    const auto slice = cut_slice(v, axes, s);
    ASSERT_EQ(slice.sizes(), (std::vector<int64_t>{4, 2}));
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(slice[r][c].item<int64_t>(), v[1 - c][s][3 - r].item<int64_t>()) << s << r << c;
    put_slice(back, axes, s, slice);
    EXPECT_TRUE(torch::equal(cut_slice(probs, axes, s), torch::stack({slice, slice * 2}).to(torch::kFloat)));
    put_slice(probs_back, axes, s, cut_slice(probs, axes, s));
    const auto image = nifti_slice_image(volume, s, {0, 69}, axes);
    EXPECT_TRUE(torch::allclose(image[0], slice.to(torch::kFloat) / 69, 0, 1e-6)) << s;
  }
  EXPECT_TRUE(torch::equal(back, v));
  EXPECT_TRUE(torch::equal(probs_back, probs));
  EXPECT_TRUE(torch::equal(nifti_case_slice({volume}, 1, {{0, 69}}, 0, axes), nifti_slice_image(volume, 1, {0, 69}, axes)));
  EXPECT_EQ(resampled_slice_size(volume, {0.25, 0.25}, "psl.nii", axes), (std::pair<int64_t, int64_t>{8, 16}));  // rows 4 x 0.5, columns 2 x 2
  EXPECT_TRUE(nifti_slice_axes(volume, "PSL", "psl.nii").stored());  // its own orientation: as stored
  const auto lps = nifti_slice_axes(volume, "LPS", "psl.nii");
  EXPECT_EQ(lps.reversed, (std::array<bool, 3>{false, false, false}));
  EXPECT_TRUE(valid_axis_codes("RAS") && valid_axis_codes("SLA") && !valid_axis_codes("RAX") && !valid_axis_codes("RRS") && !valid_axis_codes("RA"));
  EXPECT_EQ(test::error_of([&] { nifti_slice_axes(volume, "RRS", "psl.nii"); }),
            "psl.nii: 'RRS' is not an orientation: three letters, one of R/L, A/P and S/I each (e.g. RAS)");
  auto oblique = bytes;  // i and j both mostly along x
  const float tilted[12] = {0.5F, 0.6F, 0, 0, 0.1F, 0, 2, 0, 0, 0.3F, 0.1F, 0};
  for (size_t n = 0; n < 12; ++n) put<float>(oblique, 280 + 4 * n, tilted[n]);
  const auto skew = test::error_of([&] { nifti_slice_axes(parse_nifti(oblique, "o.nii"), "RAS", "o.nii"); });
  EXPECT_EQ(skew.rfind("o.nii: is stored ", 0), 0u) << skew;
  auto unplaced = bytes;
  put<int16_t>(unplaced, 254, 0), put<int16_t>(unplaced, 252, 0);
  EXPECT_EQ(test::error_of([&] { nifti_slice_axes(parse_nifti(unplaced, "u.nii"), "RAS", "u.nii"); }),
            "u.nii: gives no orientation (neither sform nor qform), so its slices cannot be cut as RAS ones");
  // fcn data unstack --orient RAS: the volume's and its labels' slices as cut; slicing.json says so, the dataset reads it.
  namespace fs = std::filesystem;
  const std::string root = test::fresh_dir("nifti_orient");
  std::ofstream(root + "/psl.nii", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto label_bytes = nii(2, 1, std::vector<int64_t>(24, 0), 4, 3, 2);
  for (size_t n = 0; n < 12; ++n) put<float>(label_bytes, 280 + 4 * n, rows[n]);
  for (int64_t n = 0; n < 24; ++n) label_bytes[352 + static_cast<size_t>(n)] = static_cast<char>(n % 3);
  std::ofstream(root + "/psl-seg.nii", std::ios::binary).write(label_bytes.data(), static_cast<std::streamsize>(label_bytes.size()));
  VolumeWindow window;
  window.values = {{0.0, 69.0}};
  const auto result = unstack_nifti(root + "/psl.nii", root + "/psl-seg.nii", root + "/out", NiftiSlicing(window, 0, std::nullopt, "RAS"));
  EXPECT_EQ(result.slices, 3);
  EXPECT_EQ((std::pair<int64_t, int64_t>{result.height, result.width}), (std::pair<int64_t, int64_t>{4, 2}));
  const auto labels = parse_nifti(label_bytes, "seg").voxels.to(torch::kLong);
  for (int64_t k = 0; k < 3; ++k) {
    const auto png = read_png(root + "/out/images/00" + std::to_string(k) + ".png").pixels;
    EXPECT_TRUE(torch::equal(png.squeeze(2).to(torch::kLong), (cut_slice(v, axes, k).to(torch::kDouble) / 69 * 65535).round().to(torch::kLong))) << k;
    EXPECT_TRUE(torch::equal(read_png(root + "/out/masks/00" + std::to_string(k) + ".png").pixels.squeeze(2).to(torch::kLong), cut_slice(labels, axes, k)));
  }
  std::ifstream slicing(root + "/out/slicing.json");
  EXPECT_EQ(nlohmann::json::parse(slicing), nlohmann::json({{"axes", "RAS"}}));
  EXPECT_EQ(SegmentationDataset(root + "/out", "all").slice_axes(), "RAS");
  std::ofstream(root + "/out/slicing.json") << R"({"axes": "RAX"})";
  EXPECT_NE(test::error_of([&] { SegmentationDataset(root + "/out", "all"); }).find("slicing.json: axes must be an orientation"), std::string::npos);
}

}  // namespace
}  // namespace fcn
