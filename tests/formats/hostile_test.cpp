// Hostile and broken files (docs/reliability.md): each crafted here, each refused with one fcn::Error
// naming the file and what is wrong, before anything large is allocated. Every case was a crash, a
// multi-gigabyte allocation or a silent wrong answer before the fix (issue 13's items 1-5, 9, 10, 12).
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/opencv_quiet.h"
#include "fcn/formats/png.h"
#include "fcn/formats/torch_archive.h"
#include "fcn/data/fashion_mnist.h"
#include "fcn/models/fcn.h"
#include "fcn/serialize/model_file.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"
#include "test_util.h"

#ifdef FCN_WITH_OPENCV
#include <opencv2/core/utils/logger.hpp>
#endif

namespace fcn {
namespace {

using test::error_of;
using namespace std::string_literals;  // "\x00" inside pickle programs

std::vector<char> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// Pickle building blocks (protocol 2 opcodes, as torch.save writes them).
std::string unicode(const std::string& s) {
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + s;
}
std::string binint(uint32_t v) {
  std::string out = "J";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

torch::Tensor zeros_storage(const std::string&, torch::ScalarType dtype, int64_t numel) {
  return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
}

ArchiveDict run_pickle(const std::string& program) {
  return parse_pickle_dict(bytes_of("\x80\x02" + program), zeros_storage, "crafted.pth");
}

TEST(HostilePickle, DictHoldingItselfIsAnErrorNotARecursion) {
  // d = {}; d["state_dict"] = d  — recursed forever before the arena.
  const auto message = error_of([] { state_dict_of(run_pickle("}q\x00"s + unicode("state_dict") + "h\x00s."s), "crafted.pth"); });
  EXPECT_NE(message.find("crafted.pth: entry 'state_dict' is not a tensor"), std::string::npos) << message;
  const auto again = error_of([] { state_dict_of(run_pickle("}q\x00"s + unicode("a") + "h\x00s."s), "crafted.pth"); });
  EXPECT_NE(again.find("entry 'a' is not a tensor"), std::string::npos) << again;
}

TEST(HostilePickle, TwoHundredThousandNestedListsAreFreedWithoutRecursion) {
  const int depth = 200000;
  std::string program = "}" + unicode("k") + std::string(depth, ']') + std::string(depth - 1, 'a') + "s.";
  const auto message = error_of([&] { state_dict_of(run_pickle(program), "crafted.pth"); });
  EXPECT_NE(message.find("entry 'k' is not a tensor"), std::string::npos) << message;
  // The same chain built through the memo (each list appended into the last one after the fact).
  std::string memo_chain = "}" + unicode("k") + "]q\x00"s;
  for (int i = 0; i < 50000; ++i) memo_chain += "h\x00]q\x00"s + "a0";  // get last, new list, memoize it as 0, append, pop
  memo_chain += "s.";
  EXPECT_NE(error_of([&] { state_dict_of(run_pickle(memo_chain), "crafted.pth"); }).find("is not a tensor"), std::string::npos);
}

std::string rebuild_tensor(const std::string& sizes, const std::string& strides, uint32_t numel) {
  return "ctorch._utils\n_rebuild_tensor_v2\n(" + std::string("(") + unicode("storage") + "ctorch\nFloatStorage\n" + unicode("0") +
         unicode("cpu") + binint(numel) + "tQK\x00"s + sizes + strides + "tR";
}

TEST(HostilePickle, BroadcastViewCannotBlowOneElementUpToGigabytes) {
  // A 1 KB .pth reached 2.2 GB this way: one float viewed as 100000 x 10000 with strides (0, 0).
  const auto program = "}" + unicode("w") + rebuild_tensor(binint(100000) + binint(10000) + "\x86", "K\x00K\x00\x86"s, 1) + "s.";
  const auto message = error_of([&] { run_pickle(program); });
  EXPECT_NE(message.find("broadcast (stride-0) view"), std::string::npos) << message;
  // A plain tensor still reads.
  const auto fine = state_dict_of(run_pickle("}" + unicode("w") + rebuild_tensor("K\x02K\x03\x86", "K\x03K\x01\x86", 6) + "s."), "x");
  ASSERT_EQ(fine.size(), 1u);
  EXPECT_EQ(fine[0].second.sizes(), (std::vector<int64_t>{2, 3}));
  // A view past its storage, and sizes that overflow, are errors too.
  EXPECT_NE(error_of([&] { run_pickle("}" + unicode("w") + rebuild_tensor("K\x02K\x03\x86", "K\x03K\x01\x86", 5) + "s."); })
                .find("exceeds its storage"),
            std::string::npos);
  const auto huge = "\x8a\x08" + std::string("\xff\xff\xff\xff\xff\xff\xff\x3f", 8);
  EXPECT_NE(error_of([&] { run_pickle("}" + unicode("w") + rebuild_tensor(huge + huge + "\x86", "K\x01K\x01\x86", 6) + "s."); })
                .find("overflows"),
            std::string::npos);
}

// A zip archive with the given data.pkl and records, written by LibTorch's own writer.
std::string write_archive(const std::string& name, const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& records) {
  const auto path = test::temp_dir() + "/" + name;
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [key, data] : records) writer.writeRecord(key, data.data(), data.size());
  writer.writeEndOfFile();
  return path;
}

TEST(HostileArchive, StorageSizeIsCheckedBeforeAllocating) {
  // The pickle declares 2^31 - 1 floats for a 24-byte record.
  const auto program = "\x80\x02}" + unicode("w") + rebuild_tensor("K\x02K\x03\x86", "K\x03K\x01\x86", 0x7fffffffu) + "s.";
  const auto path = write_archive("storage_lie.pth", program, {{"data/0", std::string(24, '\0')}});
  const auto message = error_of([&] { read_torch_archive(path); });
  EXPECT_NE(message.find("storage_lie.pth: record 'data/0' holds 24 bytes, not 2147483647 elements"), std::string::npos) << message;
}

TEST(HostileArchive, ZipRecordLargerThanTheFileIsRefused) {
  const auto path = write_archive("zip_lie.pth", "\x80\x02}.", {});
  auto bytes = read_file(path);
  // Patch the central directory's uncompressed size of data.pkl to 4 GB - 1.
  const std::string data(bytes.begin(), bytes.end());
  const auto central = data.find("PK\x01\x02");
  ASSERT_NE(central, std::string::npos);
  for (int i = 0; i < 4; ++i) bytes[central + 24 + i] = '\xff';
  const auto message = error_of([&] { parse_torch_archive_dict(bytes, "zip_lie.pth"); });
  EXPECT_NE(message.find("zip_lie.pth: zip record"), std::string::npos) << message;
  EXPECT_NE(message.find("declares 4294967295 bytes"), std::string::npos) << message;
}

TEST(HostileNpy, LongShapeFieldIsParsedWithoutRegex) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 30000; ++i) header += "1,";
  header += "), }";
  std::string file = std::string("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  const auto message = error_of([&] { parse_npy(bytes_of(file), "long.npy"); });
  EXPECT_NE(message.find("long.npy: .npy shape has more than 32 dimensions"), std::string::npos) << message;
}

std::vector<char> npy_with_shape(const std::string& shape, size_t data_bytes) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }\n";
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xff);
  file += static_cast<char>(header.size() >> 8);
  return bytes_of(file + header + std::string(data_bytes, '\0'));
}

TEST(HostileNpy, NegativeHugeAndOverflowingShapesAreErrors) {
  EXPECT_NE(error_of([] { parse_npy(npy_with_shape("-1, 2", 8), "neg.npy"); }).find("holds '-', not a non-negative integer"),
            std::string::npos);
  // 11 TB declared by a 100-byte file: refused by the size check, nothing allocated.
  EXPECT_NE(error_of([] { parse_npy(npy_with_shape("1000000, 1000000, 3", 8), "big.npy"); }).find("shape and dtype need 12000000000000"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_npy(npy_with_shape("99999999999999999999", 8), "over.npy"); }).find("overflows"), std::string::npos);
  // 2^63 exactly: the last digit's addition overflows, not the multiplication (libFuzzer's find, 2026-12-05).
  EXPECT_NE(error_of([] { parse_npy(npy_with_shape("9223372036854775808", 8), "edge.npy"); }).find("edge.npy: .npy shape overflows"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_npy(npy_with_shape("4000000000, 4000000000, 4000000000", 8), "over.npy"); }).find("overflows"),
            std::string::npos);
  const auto fine = parse_npy(npy_with_shape("2,", 8), "ok.npy");
  EXPECT_EQ(fine.sizes(), (std::vector<int64_t>{2}));
}

TEST(HostileSafetensors, DeclaredSizesAreCheckedBeforeAllocating) {
  auto file = [](const std::string& header) {
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return bytes_of(out + header + std::string(16, '\0'));
  };
  // 381,469 MiB declared by a 100-byte file.
  const auto big = error_of([&] {
    parse_safetensors(file(R"({"w":{"dtype":"F32","shape":[100000,1000000],"data_offsets":[0,16]}})"), "big.safetensors");
  });
  EXPECT_NE(big.find("big.safetensors: tensor 'w' has data offsets that do not fit"), std::string::npos) << big;
  const auto negative = error_of([&] {
    parse_safetensors(file(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})"), "neg.safetensors");
  });
  EXPECT_NE(negative.find("neg.safetensors: tensor 'w''s shape holds -4, a negative number"), std::string::npos) << negative;
  // Sizes and offsets are whole numbers: a float is refused, not truncated; an integer beyond 64 bits
  // (a JSON float to the parser) is refused, not converted (undefined; fuzz_safetensors found it).
  const auto message = [&](const std::string& header) {
    return error_of([&] { parse_safetensors(file(header), "h.safetensors"); });
  };
  EXPECT_NE(message(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})").find("shape holds 1.5, not a whole number"),
            std::string::npos);
  EXPECT_NE(message(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[1111111111111111111111111111111111111,24]}})")
                .find("tensor 'w''s data_offsets holds 1.1111111111111112e+36, not a whole number of at most 18446744073709551615"),
            std::string::npos);
  EXPECT_NE(message(R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]}})")
                .find("shape holds 9223372036854775808, not a whole number of at most 9223372036854775807"),
            std::string::npos);
  EXPECT_NE(message(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})").find("data_offsets holds -4, a negative number"),
            std::string::npos);
  EXPECT_NE(message(R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})").find("shape is \"1\", not a list"), std::string::npos);
  const auto fine = parse_safetensors(file(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})"), "ok.safetensors");
  ASSERT_EQ(fine.size(), 1u);
  EXPECT_EQ(fine[0].second.sizes(), (std::vector<int64_t>{2, 2}));
}

// A PNG file holding only a header (IHDR) and IEND: enough to claim any size.
std::vector<char> png_header_only(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string body = type + data;
    const auto crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
    return be32(static_cast<uint32_t>(data.size())) + body + be32(crc);
  };
  const std::string ihdr = be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit gray
  return bytes_of(std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) +
                  chunk("IEND", ""));
}

TEST(HostilePng, BombsAreRefusedBeforeThePixelsAreAllocated) {
  const auto huge = error_of([] { parse_png(png_header_only(100000, 100000), "bomb.png"); });
  EXPECT_NE(huge.find("bomb.png: image is 100000x100000"), std::string::npos) << huge;
  EXPECT_NE(huge.find("over the limit"), std::string::npos) << huge;
  // Within the pixel limit, but more than a 100-byte file can hold (deflate expands <= 1032:1).
  const auto lie = error_of([] { parse_png(png_header_only(16000, 16000), "lie.png"); });
  EXPECT_NE(lie.find("lie.png: declares 16000x16000 pixels, more than its"), std::string::npos) << lie;
}

TEST(HostilePng, MaxPixelsIsTheUsersToSet) {
  const auto path = test::temp_dir() + "/small.png";
  write_png(path, torch::zeros({40, 50, 1}, torch::kByte));
  const auto before = limits().max_pixels;
  set_max_pixels(1999);
  const auto message = error_of([&] { read_image(path); });
  set_max_pixels(before);
  EXPECT_NE(message.find("image is 50x40 = 2000 pixels, over the limit of 1999 (raise it with Limits.max_pixels)"), std::string::npos)
      << message;
  EXPECT_EQ(read_image(path).sizes(), (std::vector<int64_t>{1, 40, 50}));
  EXPECT_NE(error_of([] { set_max_pixels(0); }).find("must be positive"), std::string::npos);
}

TEST(HostileJpeg, TruncatedFileIsAnErrorNotAGreyBottom) {
  // A minimal baseline JPEG header followed by scan data and no end-of-image marker.
  std::string jpeg = std::string("\xff\xd8", 2);
  jpeg += std::string("\xff\xc0\x00\x0b\x08\x00\x10\x00\x10\x01\x01\x11\x00", 13);  // SOF0 16x16, 1 component
  jpeg += std::string("\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00", 10) + std::string(40, '\x55');
  const auto message = error_of([&] { check_jpeg(bytes_of(jpeg), "cut.jpg"); });
  EXPECT_NE(message.find("cut.jpg: truncated JPEG"), std::string::npos) << message;
  EXPECT_NO_THROW(check_jpeg(bytes_of(jpeg + "\xff\xd9"), "whole.jpg"));
  // The frame header's size is checked before the decoder allocates it.
  std::string wide = jpeg;
  wide[7] = '\xff', wide[8] = '\xff', wide[9] = '\xff', wide[10] = '\xff';
  EXPECT_NE(error_of([&] { check_jpeg(bytes_of(wide + "\xff\xd9"), "wide.jpg"); }).find("over the limit"), std::string::npos);
}

TEST(HostileIdx, OverflowingDimensionsAreAnError) {
  std::vector<uint8_t> idx = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  EXPECT_NE(error_of([&] { parse_idx(idx, 3, "x.idx"); }).find("overflows"), std::string::npos);
  idx[4] = 0, idx[5] = 0, idx[6] = 0, idx[7] = 1;  // 1 x 65535 x 4294967295
  idx[8] = 0, idx[9] = 0;
  EXPECT_NE(error_of([&] { parse_idx(idx, 3, "x.idx"); }).find("does not match its IDX header"), std::string::npos);
}

// The top-level dict of an fcn model file, as load_model reads it, with one entry replaced.
ArchiveDict model_dict(const std::string& key, const ArchiveEntry& replacement) {
  Model model;
  model.net = std::make_shared<FCNImpl>(FCNOptions().stride(32).num_classes(3).backbone(BackboneOptions().width(0.0625)).fc_channels(4).fc_kernel(1));
  model.meta = default_meta(3, 3);
  const auto path = test::temp_dir() + "/hostile_base.fcn";
  save_model(path, model);
  auto dict = read_torch_archive_dict(path);
  for (auto& [name, entry] : dict)
    if (name == key) entry = replacement;
  return dict;
}

TEST(HostileModelFile, VersionOfTheWrongTypeIsAClearError) {
  ArchiveEntry text;
  text.kind = ArchiveEntry::Kind::kString;
  text.text = "1";
  const auto message = error_of([&] { model_from_archive(model_dict("version", text), "m.fcn"); });
  EXPECT_NE(message.find("m.fcn: not an fcn model file ('version' is not an integer)"), std::string::npos) << message;
}

TEST(HostileModelFile, ConfigAskingForATrillionClassesIsRefusedBeforeBuilding) {
  const auto base = model_dict("", {});
  auto config = nlohmann::json::parse([&] {
    for (const auto& [name, entry] : base)
      if (name == "config") return entry.text;
    return std::string("{}");
  }());
  config["num_classes"] = 1000000000000LL;
  ArchiveEntry text;
  text.kind = ArchiveEntry::Kind::kString;
  text.text = config.dump();
  const auto message = error_of([&] { model_from_archive(model_dict("config", text), "m.fcn"); });
  EXPECT_NE(message.find("m.fcn: model config key 'num_classes' is 1000000000000, outside 1..65536"), std::string::npos) << message;
}

TEST(HostileModelFile, SaneNumbersWithAnInsaneProductAreRefused) {
  auto config = nlohmann::json{{"arch", "fcn"}, {"fc_channels", 65536}, {"fc_kernel", 32}, {"backbone", {{"width", 8.0}}}};
  const auto message = error_of([&] { validate_net_config(config, "m.fcn"); });
  EXPECT_NE(message.find("m.fcn: model config asks for an fc6 layer"), std::string::npos) << message;
  config["fc_channels"] = 4096, config["fc_kernel"] = 7, config["backbone"]["width"] = 1.0;  // VGG16's own
  EXPECT_NO_THROW(validate_net_config(config, "m.fcn"));
  // A count given as a fraction is refused, not truncated; a fraction where one belongs is fine.
  config["fc_kernel"] = 6.5;
  EXPECT_NE(error_of([&] { validate_net_config(config, "m.fcn"); }).find("m.fcn: model config key 'fc_kernel' is 6.5, not a whole number"),
            std::string::npos);
  config["fc_kernel"] = 7, config["backbone"]["width"] = 0.25, config["dropout"] = 0.5;
  EXPECT_NO_THROW(validate_net_config(config, "m.fcn"));
}

TEST(HostileModelFile, FolderGivenAsAFileIsNamed) {
  const auto message = error_of([] { load_model(test::temp_dir()); });
  EXPECT_NE(message.find("is a folder, not a model file"), std::string::npos) << message;
  const auto run = test::fresh_dir("run_folder_as_model");  // fcn train's NAME.run: its models named
  std::ofstream(run + "/last.fcn") << "x";
  EXPECT_NE(error_of([&] { load_model(run); }).find("run_folder_as_model: is a folder, not a model file: a training run's, give its model " + run +
                                                      "/last.fcn"),
            std::string::npos);
  const auto dataset = test::fresh_dir("dataset_as_model");  // fcn eval m.fcn scenes: the dataset is --data's
  std::filesystem::create_directories(dataset + "/images");
  EXPECT_NE(error_of([&] { load_model(dataset); }).find("dataset_as_model: is a folder, not a model file: a dataset's, which --data takes"),
            std::string::npos);
  std::ofstream(run + "/checkpoint.pt") << "x";  // and its checkpoint is named as one
  EXPECT_NE(error_of([&] { load_model(run + "/checkpoint.pt"); }).find("checkpoint.pt: is a training run's checkpoint (what --resume takes), not a model file"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_file(test::temp_dir()); }).find("is a folder, not a file"), std::string::npos);
}

TEST(Printable, ControlCharactersCannotForgeALine) {
  EXPECT_EQ(printable("a\nfcn: error: forged\x1b[2J"), "a\\nfcn: error: forged\\x1b[2J");
  EXPECT_EQ(printable("plain name.png"), "plain name.png");
}

#ifdef FCN_WITH_OPENCV
// A BMP cut short: OpenCV 4.6's decoder printed its own failure to std::cerr ("imdecode_(''): can't read data:
// OpenCV(4.6.0) ...bitstrm.cpp:102: error: (-2:Unspecified error) Unexpected end of input stream in function
// 'readBlock'" and a blank line) above fcn's error, which said only "cannot decode image". Now the reason is in
// fcn's one error and nothing is printed.
TEST(HostileImage, CutBmpIsOneErrorCarryingOpenCvsReasonWithNothingPrinted) {
  std::vector<char> bmp(54 + 8 * 8 * 3, 0);  // 8x8, 24 bits, uncompressed
  bmp[0] = 'B';
  bmp[1] = 'M';
  test::put<uint32_t>(bmp, 2, static_cast<uint32_t>(bmp.size()));
  test::put<uint32_t>(bmp, 10, 54);
  test::put<uint32_t>(bmp, 14, 40);
  test::put<int32_t>(bmp, 18, 8);
  test::put<int32_t>(bmp, 22, 8);
  test::put<uint16_t>(bmp, 26, 1);
  test::put<uint16_t>(bmp, 28, 24);
  test::put<uint32_t>(bmp, 34, 8 * 8 * 3);
  EXPECT_EQ(decode_image(bmp, "whole.bmp").sizes(), torch::IntArrayRef({3, 8, 8}));
  bmp.resize(54 + 90);
  testing::internal::CaptureStderr();
  const auto message = error_of([&] { decode_image(bmp, "cut.bmp"); });
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(message, "cut.bmp: cannot decode image (empty, corrupt or not an image format OpenCV knows): OpenCV: Unexpected end of input stream");
}

// fuzz_tiff's input (2026-12-07): a 178-byte TIFF page of one 32-bit sample declaring tiles of 2.5 GiB, read as a
// label image (decode_tiff_labels, libtiff's sample reader): the tile buffer was allocated before a byte was
// decoded. Refused now by the tile's size against the page's.
TEST(HostileTiff, TilesFarLargerThanThePageAreRefusedBeforeAllocating) {
  const std::string bytes(
      "\x49\x49\x2a\x00\x08\x00\x00\x00\x0a\x00\x00\x01\x04\x00\x01\x00\x00\x00\x03\x00\x00\x00\x01\x01\x04\x00\x01\x00\x00\x00\x44\x00"
      "\x00\x00\x02\x01\x03\x00\x01\x00\x00\x00\x20\x00\x00\x00\x03\x00\x00\x01\x00\x01\x03\x00\x01\xd7\x00\x0b\x06\x01\x03\x00\x01\x00"
      "\x00\x00\x01\x00\x00\x00\x11\x01\x04\x00\x01\x00\x00\x00\x86\x00\x00\x00\x16\x01\x04\x00\x01\x00\x00\x00\x0a\x00\x00\x28\x17\x01"
      "\x04\x00\x00\x00\x01\x00\x18\x00\x00\x00\x1c\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x42\x01\x03\x00\x01\x00\x00\x00\x01\x00"
      "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x94\x94\x94\x94\x94\x94\x94\x94\x94\x94\x03\xf8\x01\x00\x00\x00\x01\x49\x49\x2a\x07\x00\x00"
      "\x00\x03\x00\x00\x00\x07\x00\x00\x87\xa0\xb8\xa1\xad\x80\xa2\x60\x48\xa3",
      178);
  const auto message = error_of([&] { decode_tiff_labels(std::vector<char>(bytes.begin(), bytes.end()), "tiles.tif"); });
  EXPECT_EQ(message.rfind("tiles.tif: ", 0), 0u) << message;
}

// OpenCvQuiet keeps what its own thread writes to std::cerr, lets another thread's lines through, holds OpenCV's
// log level silent, and gives back the level there was (a host program's) when it ends.
TEST(OpenCvQuiet, KeepsThisThreadsLinesOnlyAndGivesTheLogLevelBack) {
  namespace logging = cv::utils::logging;
  const auto host_level = logging::setLogLevel(logging::LOG_LEVEL_INFO);
  testing::internal::CaptureStderr();
  {
    const OpenCvQuiet quiet;
    {
      const OpenCvQuiet inner;  // nested, as a decoder inside a decoder: the outer scope hears nothing of it
      std::cerr << "inner line\n";
      EXPECT_EQ(inner.heard(), "inner line");
    }
    std::cerr << "imread_('x'): can't read header: OpenCV(4.6.0) a.cpp:1: error: (-215:Assertion failed) size > 0 in function 'f'\n" << std::endl;
    std::thread([] { std::cerr << "another thread's line\n"; }).join();
    EXPECT_EQ(logging::getLogLevel(), logging::LOG_LEVEL_SILENT);
    EXPECT_EQ(quiet.heard(), "size > 0");
  }
  EXPECT_EQ(logging::getLogLevel(), logging::LOG_LEVEL_INFO);
  std::cerr << "after\n";
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "another thread's line\nafter\n");
  logging::setLogLevel(host_level);
}
#endif

}  // namespace
}  // namespace fcn
