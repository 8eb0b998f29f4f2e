// Datasets on disk: the VOC layout and folder pairs, every mask kind, and every kind of bad data
// as a one-line error naming the file (and the value) — in reading and in `check_dataset`.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/dataset.h"
#include "fcn/data/fashion_cells.h"
#include "fcn/data/fashion_scenes.h"
#include "fcn/data/stats.h"
#include "fcn/data/transforms.h"
#include "fcn/eval/separation.h"
#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "fcn/models/model.h"
#include "fcn/util/allocator.h"
#include "test_util.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

// A 5-class VOC-layout dataset of three 8x10 gray images with palette masks.
std::string make_voc(const std::string& name) {
  const std::string dir = test::temp_dir() + "/" + name;
  fs::remove_all(dir);
  for (const char* sub : {"JPEGImages", "SegmentationClass", "ImageSets/Segmentation"}) fs::create_directories(dir + "/" + sub);
  const auto palette = default_meta(5, 1).palette;
  std::ofstream list(dir + "/ImageSets/Segmentation/train.txt");
  for (int i = 0; i < 3; ++i) {
    const std::string id = "img" + std::to_string(i);
    write_png(dir + "/JPEGImages/" + id + ".png", torch::full({8, 10, 1}, 40 * i, torch::kByte));
    auto mask = torch::full({8, 10}, i, torch::kByte);
    mask[0][0] = 255;
    write_png_indexed(dir + "/SegmentationClass/" + id + ".png", mask, palette);
    list << id << "\n";
  }
  std::ofstream(dir + "/classes.json") << nlohmann::json{{"names", {"a", "b", "c", "d", "e"}}, {"colors", palette}}.dump();
  return dir;
}

void expect_names(const std::string& message, const std::string& file, const std::string& what) {
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find(what), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(Dataset, ReadsTheVocLayoutWithPaletteMasks) {
  const SegmentationDataset dataset(make_voc("voc_ok"), "train");
  ASSERT_EQ(dataset.size(), 3u);
  EXPECT_EQ(dataset.num_classes(), 5);
  const auto sample = dataset.get(2);
  EXPECT_EQ(sample.image.sizes(), (std::vector<int64_t>{1, 8, 10}));
  EXPECT_NEAR(sample.image[0][3][3].item<float>(), 80.0f / 255.0f, 1e-6);
  EXPECT_EQ(sample.mask[0][0].item<int64_t>(), 255);
  EXPECT_EQ(sample.mask[5][5].item<int64_t>(), 2);
  EXPECT_TRUE(check_dataset(dataset.dir()).errors.empty());
}

TEST(Dataset, SaysWhereItsClassesCameFrom) {
  const auto dir = make_voc("voc_classes_source");
  EXPECT_EQ(SegmentationDataset(dir, "train").classes_source(), "from " + dir + "/classes.json");
  fs::remove(dir + "/classes.json");
  const SegmentationDataset voc(dir, "train");
  EXPECT_EQ(voc.num_classes(), 21);
  EXPECT_EQ(voc.classes_source(), "PASCAL VOC's, as " + dir + " has no classes.json to name its own");
  EXPECT_EQ(check_dataset(dir).classes_source, voc.classes_source());
  const std::string pairs = test::temp_dir() + "/pairs_classes_source";
  fs::remove_all(pairs);
  fs::create_directories(pairs + "/images");
  fs::create_directories(pairs + "/masks");
  write_png(pairs + "/images/a.png", torch::zeros({4, 4, 1}, torch::kByte));
  write_png(pairs + "/masks/a.png", torch::full({4, 4, 1}, 255, torch::kByte));
  const SegmentationDataset binary(pairs, "all");
  EXPECT_EQ(binary.num_classes(), 2);
  EXPECT_EQ(binary.classes_source(), "background and foreground, as " + pairs + " has no classes.json to name its own");
}

TEST(Dataset, MaskOfTheWrongSize) {
  const auto dir = make_voc("voc_size");
  const auto mask = dir + "/SegmentationClass/img1.png";
  write_png_indexed(mask, torch::zeros({8, 9}, torch::kByte), default_meta(5, 1).palette);
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train").get(1); }), mask, "8x9");
  const auto report = check_dataset(dir);
  ASSERT_EQ(report.errors.size(), 1u);
  expect_names(report.errors[0], mask, "8x10");
}

TEST(Dataset, LabelOutsideTheClassSet) {
  const auto dir = make_voc("voc_label");
  const auto mask = dir + "/SegmentationClass/img2.png";
  auto labels = torch::zeros({8, 10}, torch::kByte);
  labels[5][3] = 7;
  write_png_indexed(mask, labels, default_meta(5, 1).palette);
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train").get(2); }), mask, "label 7 at (5,3) is not a class (0..4)");
}

TEST(Dataset, MissingMaskCorruptPngAndEmptySplit) {
  auto dir = make_voc("voc_missing");
  fs::remove(dir + "/SegmentationClass/img0.png");
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train"); }), "SegmentationClass/img0.png", "missing mask");
  // A mask saved as JPEG or TIFF where VOC keeps PNGs is named as what it is, not as missing (it was "missing mask").
  std::ofstream(dir + "/SegmentationClass/img0.jpg", std::ios::binary) << std::string("\xff\xd8\xff\xe0", 4);
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train").get(0); }), "SegmentationClass/img0.jpg", "is a JPEG, not a PNG");
  fs::remove(dir + "/SegmentationClass/img0.jpg");
  std::ofstream(dir + "/SegmentationClass/img0.bmp", std::ios::binary) << "BM";
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train").get(0); }), "SegmentationClass/img0.bmp",
               "is neither a PNG, a TIFF nor a .npy");
  fs::remove(dir + "/SegmentationClass/img0.bmp");
  std::ofstream(dir + "/SegmentationClass/img0.tif", std::ios::binary) << std::string("II*\0\x08\0\0\0", 8);  // a TIFF is read, this one cut short
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train").get(0); }), "SegmentationClass/img0.tif", "past the end");
  EXPECT_EQ(check_dataset(dir).errors.size(), 1u);

  dir = make_voc("voc_corrupt");
  const auto image = dir + "/JPEGImages/img1.png";
  fs::resize_file(image, 40);
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train").get(1); }), image, "truncated");
  EXPECT_EQ(check_dataset(dir).errors.size(), 1u);

  dir = make_voc("voc_empty");
  std::ofstream(dir + "/ImageSets/Segmentation/train.txt").close();
  expect_names(test::error_of([&] { SegmentationDataset(dir, "train"); }), "train.txt", "lists no images");
  expect_names(test::error_of([&] { SegmentationDataset(dir, "val"); }), "val.txt", "not found");

  dir = test::temp_dir() + "/volumes_not_a_dataset";  // NIfTI cases where a dataset belongs: the command that makes one
  fs::remove_all(dir), fs::create_directories(dir);
  EXPECT_EQ(check_dataset(dir).errors, (std::vector<std::string>{dir + ": no splits found (neither ImageSets/Segmentation/*.txt nor images/ + masks/)"}));
  std::ofstream(dir + "/ct.nii.gz") << "x";
  EXPECT_EQ(check_dataset(dir).errors,
            (std::vector<std::string>{dir + ": no splits found (neither ImageSets/Segmentation/*.txt nor images/ + masks/); it holds NIfTI volumes: "
                                             "fcn data unstack " + dir + " --masks LABEL_VOLUMES --out DATASET makes a dataset of their slices"}));
  // A file given as the dataset: said to be a file, not "not found".
  EXPECT_EQ(test::error_of([&] { SegmentationDataset(dir + "/ct.nii.gz", "train"); }),
            dir + "/ct.nii.gz: is a file, not a dataset folder (a VOC layout, or images/ + masks/)");
  EXPECT_EQ(test::error_of([&] { SegmentationDataset(dir + "/absent", "train"); }), dir + "/absent: dataset folder not found");
  // The same words from data check and data split (they said "no splits found", "is not a folder of images/ + masks/").
  EXPECT_EQ(check_dataset(dir + "/absent").errors, (std::vector<std::string>{dir + "/absent: dataset folder not found"}));
  EXPECT_EQ(check_dataset(dir + "/ct.nii.gz").errors,
            (std::vector<std::string>{dir + "/ct.nii.gz: is a file, not a dataset folder (a VOC layout, or images/ + masks/)"}));
  EXPECT_EQ(test::error_of([&] { write_split_lists(dir + "/absent", 0.2, 0); }), dir + "/absent: dataset folder not found");
}

TEST(Dataset, FolderPairsWithBinaryAndColourMasks) {
  const std::string dir = test::temp_dir() + "/pairs";
  fs::remove_all(dir);
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/masks");
  write_png(dir + "/images/a.png", torch::zeros({4, 4, 3}, torch::kByte));
  auto binary = torch::zeros({4, 4, 1}, torch::kByte);
  binary[2][2][0] = 255;
  write_png(dir + "/masks/a.png", binary);
  std::ofstream(dir + "/images/._a.png") << "AppleDouble";  // macOS's resource fork of a.png, no mask: left out
  const SegmentationDataset pairs(dir, "all");
  EXPECT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs.num_classes(), 2);
  EXPECT_EQ(pairs.get(0).mask[2][2].item<int64_t>(), 1);  // 0/255 masks: 255 is the foreground
  EXPECT_EQ(pairs.get(0).mask.sum().item<int64_t>(), 1);
  // An index mask of more classes, without classes.json: the error says that the masks were read as binary, and how
  // to name the classes.
  binary[1][3][0] = 4;
  write_png(dir + "/masks/a.png", binary);
  const auto message = test::error_of([&] { pairs.get(0); });
  expect_names(message, "masks/a.png", "label 4 at (1,3) is not a class (0..1); " + dir + " has no classes.json, so its masks are read as background");
  EXPECT_NE(message.find(dir + "/classes.json ({\"names\""), std::string::npos) << message;
  EXPECT_EQ(message.find("ignore (255)"), std::string::npos) << message;  // 255 is the foreground here

  // RGB colour masks through classes.json's colour table.
  std::ofstream(dir + "/classes.json") << R"({"names": ["bg", "red", "green"], "colors": [[0,0,0],[255,0,0],[0,255,0]]})";
  auto colour = torch::zeros({4, 4, 3}, torch::kByte);
  colour[1][1][1] = 255;
  colour[3][0][0] = 255;
  write_png(dir + "/masks/a.png", colour);
  const SegmentationDataset coloured(dir, "all");
  EXPECT_EQ(coloured.get(0).mask[1][1].item<int64_t>(), 2);
  EXPECT_EQ(coloured.get(0).mask[3][0].item<int64_t>(), 1);
  colour[0][3][2] = 7;
  write_png(dir + "/masks/a.png", colour);
  expect_names(test::error_of([&] { coloured.get(0); }), "masks/a.png", "colour (0,0,7) at (0,3)");

  fs::remove(dir + "/masks/a.png");
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all"); }), "images/a.png", "has no mask");
}

// channels.json (fcn data unstack's, for volumes of several channels) names the images' channels: a PNG
// of 2 or 4 samples is then that many channels, not gray or RGB with alpha; an image of another count,
// or a malformed file, is an error naming the file.
TEST(Dataset, ChannelsJsonNamesTheImagesChannels) {
  const std::string dir = test::temp_dir() + "/channel_pairs";
  fs::remove_all(dir);
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/masks");
  auto two = torch::zeros({4, 4, 2}, torch::kInt);
  two.select(2, 0).fill_(65535), two.select(2, 1).fill_(13107);  // 1.0 and 0.2
  write_png16(dir + "/images/a.png", two);
  write_png(dir + "/masks/a.png", torch::zeros({4, 4, 1}, torch::kByte));
  const SegmentationDataset plain(dir, "all");
  EXPECT_EQ(plain.channels(), 0);  // without channels.json: as stored, the nets taking gray or RGB
  std::ofstream(dir + "/channels.json") << R"({"names": ["T2", "ADC"]})";
  const SegmentationDataset mri(dir, "all");
  EXPECT_EQ(mri.channels(), 2);
  EXPECT_EQ(mri.channel_names(), (std::vector<std::string>{"T2", "ADC"}));
  const auto image = mri.get(0).image;
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_FLOAT_EQ(image[1][3][3].item<float>(), 0.2f);
  write_png16(dir + "/images/a.png", two.select(2, 0));
  expect_names(test::error_of([&] { mri.get(0); }), "images/a.png", "has 1 channel(s) but");
  EXPECT_EQ(mri.slice_context(), 0);
  std::ofstream(dir + "/channels.json") << R"({"names": ["T2", "ADC"], "context": 1})";  // 1 neighbour each side is 3 slices, not 2
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all"); }), "channels.json", "context must be a whole number N >= 1");
  std::ofstream(dir + "/channels.json") << R"({"names": ["slice -1", "slice 0", "slice +1"], "context": 1})";
  EXPECT_EQ(SegmentationDataset(dir, "all").slice_context(), 1);
  std::ofstream(dir + "/channels.json") << R"({"names": ["T2 -1", "T2 0", "T2 +1", "ADC -1", "ADC 0", "ADC +1"], "context": 1})";
  EXPECT_EQ(SegmentationDataset(dir, "all").slice_context(), 1);  // two channels' 3 slices each
  std::ofstream(dir + "/channels.json") << R"({"names": ["a", "b", "c", "d"], "context": 1})";
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all"); }), "channels.json", "context must be a whole number N >= 1");
  std::ofstream(dir + "/channels.json") << R"({"names": "T2"})";
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all"); }), "channels.json", "must be {\"names\"");
}

// Images of more channels than a PNG holds as .npy arrays, and masks as numpy's integer arrays.
TEST(Dataset, NpyImagesAndMasks) {
  const std::string dir = test::temp_dir() + "/npy_pairs";
  fs::remove_all(dir);
  fs::create_directories(dir + "/images"), fs::create_directories(dir + "/masks");
  const auto image = torch::randint(0, 256, {6, 4, 5}, torch::kByte);
  write_npy(dir + "/images/a.npy", image);
  auto mask = torch::zeros({4, 5}, torch::kLong);
  mask[1][2] = 1, mask[3][4] = 1;
  write_npy(dir + "/masks/a.npy", mask);
  const SegmentationDataset data(dir, "all");
  const auto sample = data.get(0);
  EXPECT_TRUE(torch::equal(sample.image, image.to(torch::kFloat).div(255.0f)));
  EXPECT_TRUE(torch::equal(sample.mask, mask));
  mask[0][1] = -1;  // another library's ignore index
  write_npy(dir + "/masks/a.npy", mask);
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all").get(0); }), "masks/a.npy", "label -1 at (0,1) is not a class (0..1)");
  write_npy(dir + "/masks/a.npy", torch::zeros({4, 5}));
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all").get(0); }), "masks/a.npy",
               "a mask in .npy is an H x W array of integers (class indices, 255 void); this one is <f4 of 2 dimension(s)");
  write_npy(dir + "/masks/a.npy", torch::zeros({4, 6}, torch::kByte));
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all").get(0); }), "masks/a.npy", "mask is 4x6 but image");
  // The check counts the images' channels; counts that differ past a PNG's 4 are one error.
  write_npy(dir + "/masks/a.npy", torch::zeros({4, 5}, torch::kByte));
  write_npy(dir + "/images/b.npy", torch::zeros({3, 4, 5}, torch::kByte)), write_npy(dir + "/masks/b.npy", torch::zeros({4, 5}, torch::kByte));
  write_npy(dir + "/images/c.npy", torch::zeros({6, 4, 5}, torch::kByte)), write_npy(dir + "/masks/c.npy", torch::zeros({4, 5}, torch::kByte));
  const auto report = check_dataset(dir);
  EXPECT_EQ(report.image_channels.at(6).first, 2);
  EXPECT_EQ(report.image_channels.at(3), std::make_pair(int64_t{1}, dir + "/images/b.npy"));
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0], "images of different channel counts: 1 of 3 channel(s) (" + dir + "/images/b.npy), 2 of 6 channel(s) (" + dir +
                                  "/images/a.npy): a net takes one count (name them in channels.json)");

  // Split into train (a, b) and val (c): one error over both splits, not one a split as the counts grew.
  fs::create_directories(dir + "/splits");
  std::ofstream(dir + "/splits/train.txt") << "a\nb\n";
  std::ofstream(dir + "/splits/val.txt") << "c\n";
  const auto split = check_dataset(dir);
  ASSERT_EQ(split.splits, (std::vector<std::string>{"train", "val"}));
  EXPECT_EQ(split.errors, report.errors);
}

TEST(Dataset, FolderPairsSplitByListsThatFcnDataSplitWrites) {
  const std::string dir = test::temp_dir() + "/listed";
  fs::remove_all(dir);
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/masks");
  for (int i = 0; i < 10; ++i) {
    const std::string stem = "p" + std::to_string(i);
    write_png(dir + "/images/" + stem + ".png", torch::full({4, 4, 1}, i, torch::kByte));
    write_png(dir + "/masks/" + stem + ".png", torch::zeros({4, 4, 1}, torch::kByte));
  }
  // Without lists every split is every pair, and says so.
  const SegmentationDataset unsplit(dir, "val");
  EXPECT_EQ(unsplit.split(), "all");
  EXPECT_EQ(unsplit.size(), 10u);
  EXPECT_EQ(dataset_splits(dir), std::vector<std::string>{"all"});

  const auto [train, val] = write_split_lists(dir, 0.3, 7);
  EXPECT_EQ(train, 7u);
  EXPECT_EQ(val, 3u);
  EXPECT_EQ(dataset_splits(dir), (std::vector<std::string>{"train", "val"}));
  const SegmentationDataset train_split(dir, "train"), val_split(dir, "val"), all(dir, "all");
  EXPECT_EQ(train_split.split(), "train");
  ASSERT_EQ(train_split.size(), 7u);
  ASSERT_EQ(val_split.size(), 3u);
  EXPECT_EQ(all.size(), 10u);
  std::set<std::string> seen;
  for (const auto* split : {&train_split, &val_split})
    for (size_t i = 0; i < split->size(); ++i) {
      EXPECT_TRUE(seen.insert(split->id(i)).second) << split->id(i) << " is in both splits";
      EXPECT_EQ(split->image_path(i), dir + "/images/" + split->id(i) + ".png");
    }
  EXPECT_EQ(seen.size(), 10u);

  // The same seed gives the same lists; refused without --overwrite; another seed, another split.
  std::ifstream first(dir + "/splits/val.txt");
  const std::string val_list((std::istreambuf_iterator<char>(first)), std::istreambuf_iterator<char>());
  expect_names(test::error_of([&] { write_split_lists(dir, 0.3, 7); }), dir + "/splits", "--overwrite");
  write_split_lists(dir, 0.3, 7, true);
  std::ifstream again(dir + "/splits/val.txt");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>()), val_list);
  std::set<std::string> other_seeds;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    write_split_lists(dir, 0.3, seed, true);
    std::ifstream in(dir + "/splits/val.txt");
    other_seeds.insert(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  }
  EXPECT_GT(other_seeds.size(), 1u);
  EXPECT_TRUE(check_dataset(dir).warnings.empty());  // fcn data split's lists share nothing and name every pair

  // Lists that share pairs: a warning (validation would score training images), in the check and in training's.
  // Pairs that no list names (p8, p9): a warning in the check of every split.
  std::ofstream(dir + "/splits/train.txt") << "p0\np1\np2\np3\np4\np5\np6\n";
  std::ofstream(dir + "/splits/val.txt") << "p5\np6\np7\n";
  for (const auto& warnings : {check_dataset(dir).warnings, open_training_data(dir, 0, true).report.warnings}) {
    ASSERT_GE(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("train and val share 2 of val's 3 images (p5, p6)"), std::string::npos) << warnings[0];
  }
  // ... and in training's too: pairs added after the split were trained without, and only data check said so.
  for (const auto& warnings : {check_dataset(dir).warnings, open_training_data(dir, 0, true).report.warnings}) {
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_NE(warnings[1].find("2 pairs are in no split list (p8, p9)"), std::string::npos) << warnings[1];
  }
  EXPECT_EQ(check_dataset(dir, "val").warnings.size(), 0u);  // one split checked: nothing to compare

  // A list naming a pair that is not there; a split with no list; folders that have splits already.
  std::ofstream(dir + "/splits/val.txt") << "p1\nghost\n";
  expect_names(test::error_of([&] { SegmentationDataset(dir, "val"); }), "splits/val.txt", "'ghost'");
  expect_names(test::error_of([&] { SegmentationDataset(dir, "test"); }), "splits/test.txt", "splits here: train, val");
  fs::create_directories(dir + "/splits/folder.txt");
  expect_names(test::error_of([&] { SegmentationDataset(dir, "folder"); }), "splits/folder.txt", "is a folder");
  std::ofstream(dir + "/splits/binary.txt") << std::string("p1\n\0\x93\xff", 6);
  expect_names(test::error_of([&] { SegmentationDataset(dir, "binary"); }), "splits/binary.txt", "zero byte at byte 3");
  std::ofstream(dir + "/splits/long.txt") << std::string(5000, 'x');
  expect_names(test::error_of([&] { SegmentationDataset(dir, "long"); }), "splits/long.txt", "a line of 5000 characters");
  // An image listed twice would be trained on or scored twice: the two line numbers count blank lines too.
  std::ofstream(dir + "/splits/twice.txt") << "p1\n\np2\r\n  p1 \n";
  expect_names(test::error_of([&] { SegmentationDataset(dir, "twice"); }), "splits/twice.txt", "'p1' twice (lines 1 and 4)");
  std::ofstream(dir + "/splits/all.txt") << "p1\n";  // "all" is every pair: a list of that name would be ignored
  expect_names(test::error_of([&] { SegmentationDataset(dir, "all"); }), "splits/all.txt", "rename this list");
  expect_names(test::error_of([&] { SegmentationDataset(dir, "val"); }), "splits/all.txt", "rename this list");
  fs::remove(dir + "/splits/all.txt");
  expect_names(test::error_of([&] { write_split_lists(make_voc("voc_split"), 0.5, 0); }), "voc_split", "VOC layout");
  expect_names(test::error_of([&] { write_split_lists(dir, 1.0, 0, true); }), "listed", "(0, 1)");
}

// Folders list their image files (and with videos, videos and NIfTI volumes) sorted, hidden files left out.
TEST(ListImages, FolderFilesSortedHiddenLeftOut) {
  const std::string dir = test::temp_dir() + "/listed_images";
  fs::remove_all(dir);
  fs::create_directories(dir + "/sub.png");
  for (const std::string name : {"b.png", "a.JPG", "._a.JPG", ".DS_Store", "notes.txt", "ct.nii.gz", "._ct.nii.gz", "clip.mp4"})
    std::ofstream(dir + "/" + name) << "x";
  EXPECT_EQ(list_images({dir}), (std::vector<std::string>{dir + "/a.JPG", dir + "/b.png"}));
  EXPECT_EQ(list_images({dir}, true), (std::vector<std::string>{dir + "/a.JPG", dir + "/b.png", dir + "/clip.mp4", dir + "/ct.nii.gz"}));
  EXPECT_EQ(list_images({dir + "/._a.JPG"}), (std::vector<std::string>{dir + "/._a.JPG"}));  // a file named is taken as named
  EXPECT_TRUE(is_hidden("x/.y.png") && !is_hidden("x/y.png") && !is_hidden(".hidden_dir/y.png"));
  fs::remove(dir + "/a.JPG"), fs::remove(dir + "/b.png");
  expect_names(test::error_of([&] { list_images({dir}); }), "listed_images", "holds no image files");
}

// By volume: the slices NAME_NNN of one volume go to one side together, val taking round(0.4 x 5) = 2
// volumes; a split by pairs of the same folder mixes them.
TEST(Dataset, SplitByVolumeHoldsWholeVolumesOut) {
  EXPECT_EQ(volume_of("la_003_012"), "la_003");
  EXPECT_EQ(volume_of("ct_7"), "ct");
  EXPECT_EQ(volume_of("scan"), "scan");
  EXPECT_EQ(volume_of("scan_"), "scan_");
  EXPECT_EQ(volume_of("a_b"), "a_b");
  EXPECT_EQ(volume_of("_012"), "_012");
  const std::string dir = test::temp_dir() + "/by_volume";
  fs::remove_all(dir);
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/masks");
  const std::vector<std::string> volumes = {"a", "b_01", "c", "d", "e"};
  for (size_t v = 0; v < volumes.size(); ++v)
    for (size_t k = 0; k < 2 + v; ++k) {
      const std::string stem = volumes[v] + "_00" + std::to_string(k);
      write_png(dir + "/images/" + stem + ".png", torch::full({4, 4, 1}, static_cast<int>(k), torch::kByte));
      write_png(dir + "/masks/" + stem + ".png", torch::zeros({4, 4, 1}, torch::kByte));
    }
  const size_t pairs = 2 + 3 + 4 + 5 + 6;
  bool mixed = false;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    const auto [train, val] = write_split_lists(dir, 0.4, seed, true, true);
    EXPECT_EQ(train + val, pairs);
    std::map<std::string, std::set<std::string>> sides;  // volume -> the lists its slices are in
    std::set<std::string> held_out;
    for (const std::string list : {"train", "val"}) {
      const SegmentationDataset split(dir, list);
      for (size_t i = 0; i < split.size(); ++i) {
        sides[volume_of(split.id(i))].insert(list);
        if (list == "val") held_out.insert(volume_of(split.id(i)));
      }
    }
    EXPECT_EQ(sides.size(), volumes.size());
    for (const auto& [volume, lists] : sides) EXPECT_EQ(lists.size(), 1u) << volume << " is in both splits (seed " << seed << ")";
    EXPECT_EQ(held_out.size(), 2u) << seed;
    write_split_lists(dir, 0.4, seed, true);  // by pairs: some volume in both
    std::map<std::string, std::set<std::string>> pair_sides;
    for (const std::string list : {"train", "val"}) {
      const SegmentationDataset split(dir, list);
      for (size_t i = 0; i < split.size(); ++i) pair_sides[volume_of(split.id(i))].insert(list);
    }
    for (const auto& [volume, lists] : pair_sides) mixed = mixed || lists.size() == 2;
  }
  EXPECT_TRUE(mixed);
  fs::remove_all(dir + "/images"), fs::remove_all(dir + "/masks"), fs::remove_all(dir + "/splits");
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/masks");
  for (const std::string stem : {"a_000", "a_001"}) {
    write_png(dir + "/images/" + stem + ".png", torch::zeros({4, 4, 1}, torch::kByte));
    write_png(dir + "/masks/" + stem + ".png", torch::zeros({4, 4, 1}, torch::kByte));
  }
  expect_names(test::error_of([&] { write_split_lists(dir, 0.5, 0, false, true); }), "by_volume", "1 volume: at least two are needed");
  for (const std::string stem : {"a_000", "a_001"}) fs::rename(dir + "/images/" + stem + ".png", dir + "/images/" + stem.substr(2) + ".png"),
                                                     fs::rename(dir + "/masks/" + stem + ".png", dir + "/masks/" + stem.substr(2) + ".png");
  expect_names(test::error_of([&] { write_split_lists(dir, 0.5, 0, false, true); }), "by_volume", "a split by volume would be a split by pair");
  EXPECT_NO_THROW(write_split_lists(dir, 0.5, 0));  // by pair, as asked
}

TEST(FashionScenes, DeterministicLabelledFromInk) {
  const auto items = read_fashion_mnist("t10k");
  const auto options = FashionScenesOptions().size(48);
  const auto a = compose_scene(items, options, "val", 3), b = compose_scene(items, options, "val", 3);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_TRUE(torch::equal(a.mask, b.mask));
  const auto c = compose_scene(items, FashionScenesOptions(options).seed(1), "val", 3);
  EXPECT_FALSE(torch::equal(a.image, c.image));
  EXPECT_EQ(a.image.sizes(), (std::vector<int64_t>{48, 48}));
  EXPECT_LE(a.mask.max().item<int64_t>(), 10);
  // Items are brighter than the background they cover: labelled pixels are brighter on average.
  const auto labelled = a.mask > 0;
  ASSERT_GT(labelled.sum().item<int64_t>(), 50);
  EXPECT_GT(a.image.masked_select(labelled).to(torch::kFloat).mean().item<float>(),
            a.image.masked_select(~labelled).to(torch::kFloat).mean().item<float>());
}

TEST(FashionScenes, WritesAVocDatasetThatChecksClean) {
  const std::string dir = test::temp_dir() + "/scenes";
  fs::remove_all(dir);
  write_fashion_scenes(dir, FashionScenesOptions().train(5).val(3).size(40));
  const auto report = check_dataset(dir);
  EXPECT_TRUE(report.errors.empty());
  EXPECT_EQ(report.splits, (std::vector<std::string>{"train", "val"}));
  EXPECT_EQ(report.class_names.size(), 11u);
  EXPECT_EQ(report.class_names[1], "T-shirt/top");
}

// Scenes written again into a folder of fcn's scenes replace them whole (fewer scenes left the rest of the old
// ones in JPEGImages/, cells over scenes mixed both); a dataset of anyone else's there is refused, untouched.
TEST(FashionScenes, WrittenAgainReplaceTheEarlierScenesAndLeaveOthersDataAlone) {
  const std::string dir = test::fresh_dir("scenes_again");
  const auto count = [&](const std::string& sub) { return std::distance(fs::directory_iterator(dir + "/" + sub), fs::directory_iterator()); };
  write_fashion_scenes(dir, FashionScenesOptions().train(6).val(2).size(32));
  std::ofstream(dir + "/notes.txt") << "mine";  // not a dataset entry: kept
  write_fashion_scenes(dir, FashionScenesOptions().train(2).val(1).size(32));
  EXPECT_EQ(count("JPEGImages"), 3);
  EXPECT_EQ(count("SegmentationClass"), 3);
  write_fashion_cells(dir, FashionCellsOptions().train(1).val(1).size(48));
  EXPECT_EQ(count("JPEGImages"), 2);
  EXPECT_EQ(count("SegmentationObject"), 2);
  write_fashion_scenes(dir, FashionScenesOptions().train(1).val(1).size(32));
  EXPECT_FALSE(fs::exists(dir + "/SegmentationObject"));
  EXPECT_TRUE(check_dataset(dir).errors.empty());
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
  // A VOC folder of the user's (its classes.json does not name Fashion-MNIST as the source): refused, as it was.
  const std::string voc = test::fresh_dir("not_scenes");
  fs::create_directories(voc + "/JPEGImages");
  std::ofstream(voc + "/JPEGImages/photo.jpg") << "x";
  std::ofstream(voc + "/classes.json") << R"({"names": ["bg", "cat"]})";
  expect_names(test::error_of([&] { write_fashion_scenes(voc, FashionScenesOptions().train(1).val(1).size(32)); }), voc,
               "already holds a dataset (JPEGImages) that fcn data fashion-scenes or fashion-cells did not make");
  EXPECT_TRUE(fs::exists(voc + "/JPEGImages/photo.jpg"));
  EXPECT_FALSE(fs::exists(voc + "/SegmentationClass"));
}

TEST(Transforms, ImageAndMaskMoveTogether) {
  // The image holds its own labels, so after any augmentation image == mask wherever not padded.
  auto mask = torch::randint(0, 5, {20, 30}, torch::kLong);
  Sample sample{mask.to(torch::kFloat).unsqueeze(0), mask, "x"};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20; ++i) {
    const auto out = augment(sample, AugmentOptions().min_scale(0.5).max_scale(2.0).crop(32).flip(true), rng);
    ASSERT_EQ(out.mask.sizes(), (std::vector<int64_t>{32, 32}));
    const auto valid = out.mask != kIgnoreLabel;
    const auto uniques = std::get<0>(torch::_unique(out.mask.masked_select(valid)));
    EXPECT_LE(uniques.max().item<int64_t>(), 4);  // nearest: no new label values
    EXPECT_GE(out.mask.masked_select(valid).numel(), 1);
  }
  // Without scaling, flips and crops keep image and mask pixel-aligned exactly.
  for (int i = 0; i < 10; ++i) {
    const auto out = augment(sample, AugmentOptions().crop(16).flip(true), rng);
    EXPECT_TRUE(torch::equal(out.image.squeeze(0).to(torch::kLong), out.mask));
  }
  const auto padded = augment(sample, AugmentOptions().crop(40), rng);
  EXPECT_EQ(padded.mask.slice(0, 20).eq(kIgnoreLabel).all().item<bool>(), true);  // padding is ignore
}

}  // namespace
}  // namespace fcn

namespace fcn {
namespace {

// Fashion-MNIST cells: items touch (the benchmark's point), borders between them are background,
// and the VOC layout's SegmentationObject/ masks are read back as instances matching the labels.
TEST(FashionCells, ItemsTouchWithBackgroundBordersAndInstancesReadBack) {
  const std::string dir = test::temp_dir() + "/cells";
  write_fashion_cells(dir, FashionCellsOptions().train(3).val(1).size(64).seed(1));
  const SegmentationDataset train(dir, "train");
  ASSERT_TRUE(train.has_instances());
  EXPECT_EQ(train.num_classes(), 2);
  int64_t touching = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    const auto sample = train.get(i);
    ASSERT_TRUE(sample.instances.defined());
    EXPECT_TRUE(torch::equal(sample.instances > 0, sample.mask == 1)) << i;
    // No two different items are 8-adjacent: a background pixel lies between every pair.
    const auto ids = sample.instances.to(torch::kFloat).unsqueeze(0).unsqueeze(0);
    const auto high = torch::max_pool2d(ids, 3, 1, 1)[0][0], low = -torch::max_pool2d(-torch::where(ids > 0, ids, torch::full_like(ids, 1e9)), 3, 1, 1)[0][0];
    const auto item = sample.instances > 0;
    EXPECT_FALSE((item & ((high > ids[0][0]) | (low < ids[0][0]))).any().item<bool>()) << i;
    touching += static_cast<int64_t>(touching_pairs(sample.instances, 2).size());
  }
  EXPECT_GE(touching, 3);  // at least one touching pair per scene on average
  // Same seed, same scenes.
  const auto items = read_fashion_mnist("train");
  EXPECT_TRUE(torch::equal(compose_cells(items, FashionCellsOptions().size(64).seed(1), "train", 0).image,
                           compose_cells(items, FashionCellsOptions().size(64).seed(1), "train", 0).image));
}

TEST(Dataset, InstanceFolderMissingAMaskNamesIt) {
  const std::string dir = test::temp_dir() + "/cells_missing";
  write_fashion_cells(dir, FashionCellsOptions().train(2).val(1).size(48).seed(1));
  fs::remove(dir + "/SegmentationObject/train_00001.png");
  const auto message = test::error_of([&] { SegmentationDataset(dir, "train"); });
  EXPECT_NE(message.find("SegmentationObject"), std::string::npos) << message;
  EXPECT_NE(message.find("train_00001"), std::string::npos) << message;
}

}  // namespace
}  // namespace fcn

namespace fcn {
namespace {

// Folder pairs with instances/: 16-bit instance PNGs keep ids above 255; 8-bit 255 is VOC's border.
TEST(Dataset, SixteenBitInstanceMasksBesideFolderPairs) {
  const std::string dir = test::temp_dir() + "/pairs16";
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/masks");
  fs::create_directories(dir + "/instances");
  write_png(dir + "/images/a.png", torch::zeros({4, 5, 1}, torch::kByte));
  auto mask = torch::zeros({4, 5, 1}, torch::kByte);
  mask.slice(1, 0, 2).fill_(255);
  write_png(dir + "/masks/a.png", mask);
  auto ids = torch::zeros({4, 5}, torch::kLong);
  ids.slice(1, 0, 1).fill_(300);
  ids.slice(1, 1, 2).fill_(1000);
  write_png16(dir + "/instances/a.png", ids);
  const SegmentationDataset pairs(dir, "all");
  ASSERT_TRUE(pairs.has_instances());
  const auto sample = pairs.get(0);
  EXPECT_TRUE(torch::equal(sample.instances, ids));
  write_png(dir + "/instances/a.png", torch::full({4, 5, 1}, 255, torch::kByte));
  EXPECT_EQ(pairs.get(0).instances.max().item<int64_t>(), 0);  // 8-bit 255: border, no object
}

}  // namespace
}  // namespace fcn

namespace fcn {
namespace {

void expect_same_sample(const Sample& a, const Sample& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_TRUE(torch::equal(a.image, b.image)) << a.id;
  EXPECT_EQ(a.image.scalar_type(), b.image.scalar_type()) << a.id;
  EXPECT_TRUE(torch::equal(a.mask, b.mask)) << a.id;
  ASSERT_EQ(a.instances.defined(), b.instances.defined()) << a.id;
  if (a.instances.defined()) EXPECT_TRUE(torch::equal(a.instances, b.instances)) << a.id;
}

// keep_decoded: what get() returns from memory is what decoding gives, bit for bit (an 8-bit RGB
// image held as bytes, a 16-bit one as float; 16-bit instance ids), once the files are gone too.
TEST(KeptSamples, AreTheDecodedSampleBitForBitAndReadNoFileAgain) {
  const std::string dir = test::temp_dir() + "/kept_pairs";
  fs::remove_all(dir);
  for (const char* sub : {"images", "masks", "instances"}) fs::create_directories(dir + "/" + sub);
  torch::manual_seed(3);
  write_png(dir + "/images/a.png", torch::randint(0, 256, {6, 7, 3}, torch::kByte));
  write_png16(dir + "/images/b.png", torch::randint(0, 65536, {6, 7}, torch::kLong));  // gray, 16-bit
  for (const char* id : {"a", "b"}) {
    write_png(std::string(dir) + "/masks/" + id + ".png", (torch::randint(0, 2, {6, 7, 1}, torch::kByte) * 255).to(torch::kByte));
    write_png16(std::string(dir) + "/instances/" + id + ".png", torch::randint(0, 4000, {6, 7}, torch::kLong));
  }
  const SegmentationDataset fresh(dir, "all");
  SegmentationDataset kept(dir, "all");
  kept.keep_decoded(size_t{1} << 20);
  std::vector<Sample> decoded;
  for (size_t i = 0; i < 2; ++i) {
    decoded.push_back(fresh.get(i));
    expect_same_sample(kept.get(i), decoded[i]);
  }
  ASSERT_EQ(decoded[0].id, "a");
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(torch::equal(fresh.mask(i), decoded[i].mask)) << i;  // read from its file
  const size_t pixels = 6 * 7;  // a: bytes RGB; b: 16-bit words gray; masks bytes; instances int32
  EXPECT_EQ(kept.kept_stats().samples, 2u);
  EXPECT_EQ(kept.kept_stats().bytes, (3 + 1 + 4) * pixels + (2 + 1 + 4) * pixels);
  EXPECT_EQ(kept.kept_stats().hits, 0u);
  fs::remove_all(dir);
  EXPECT_FALSE(test::error_of([&] { fresh.get(0); }).empty());  // the files are gone
  EXPECT_FALSE(test::error_of([&] { fresh.mask(0); }).empty());
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(torch::equal(kept.mask(i), decoded[i].mask)) << i;  // held: no file read
  for (size_t i = 0; i < 2; ++i) {
    auto again = kept.get(i);
    expect_same_sample(again, decoded[i]);
    again.mask.fill_(kIgnoreLabel);  // a training batch voids a mask in place: the kept one stays
    again.image.zero_();
    expect_same_sample(kept.get(i), decoded[i]);
  }
  EXPECT_EQ(kept.kept_stats().hits, 4u);
}

// Past the budget a sample is decoded at every get() (its file is read again); copies share the store.
TEST(KeptSamples, StayWithinTheBudgetAndCopiesShareThem) {
  const auto dir = make_voc("voc_kept");
  SegmentationDataset kept(dir, "train");
  kept.keep_decoded(2 * (80 + 80) + 10);  // 8x10 gray bytes + mask bytes each: two of the three fit
  for (size_t i = 0; i < 3; ++i) kept.get(i);
  EXPECT_EQ(kept.kept_stats().samples, 2u);
  EXPECT_EQ(kept.kept_stats().bytes, 320u);
  fs::remove(dir + "/JPEGImages/img2.png");
  expect_names(test::error_of([&] { kept.get(2); }), "img2.png", "");
  const SegmentationDataset copy = kept;
  EXPECT_NEAR(copy.get(1).image[0][0][0].item<float>(), 40.0f / 255.0f, 1e-7);
  EXPECT_EQ(kept.kept_stats().hits, 1u);
  kept.keep_decoded(0);
  EXPECT_EQ(kept.kept_stats().samples, 0u);
  expect_names(test::error_of([&] { kept.get(2); }), "img2.png", "");
  EXPECT_EQ(copy.kept_stats().samples, 2u);  // the copy keeps its store
}

// A split's image statistics read the images only: without a store no mask is decoded (a corrupt
// mask does not stop them), with one each pair is kept for training's epochs; the same numbers
// either way, the oracle's (three 8x10 gray images of 0, 40 and 80; float32 pixels, so to 1e-6).
TEST(Dataset, NormalizationReadsImagesAndKeepsThePairsWhereAsked) {
  const auto dir = make_voc("voc_normalization");
  const double mean = 40.0 / 255.0, std = std::sqrt((0.0 + 1600.0 + 6400.0) / 3.0 - 1600.0) / 255.0;
  {
    SegmentationDataset kept(dir, "train");
    kept.keep_decoded(size_t{1} << 20);
    const auto n = dataset_normalization(kept, 1);
    EXPECT_NEAR(n.mean.at(0), mean, 1e-6);
    EXPECT_NEAR(n.std.at(0), std, 1e-6);
    EXPECT_EQ(kept.kept_stats().samples, 3u);  // held for the epochs that follow
  }
  std::ofstream(dir + "/SegmentationClass/img1.png") << "not a png";
  const SegmentationDataset plain(dir, "train");
  const auto n = dataset_normalization(plain, 1);
  EXPECT_NEAR(n.mean.at(0), mean, 1e-6);
  EXPECT_NEAR(n.std.at(0), std, 1e-6);
  EXPECT_TRUE(torch::equal(plain.image(2), plain.get(2).image));
  expect_names(test::error_of([&] { plain.get(1); }), "img1.png", "");  // get() still reads and checks the mask
}

// fcn train's data: the check reads every pair through the datasets training then uses, so that
// within the budget no file is read twice; its report is check_dataset's.
TEST(TrainingData, TheCheckIsTheFirstDecodingOfTheKeptSamples) {
  const auto dir = make_voc("voc_training");
  std::ofstream(dir + "/ImageSets/Segmentation/val.txt") << "img2\n";
  auto data = open_training_data(dir, size_t{1} << 20, /*check=*/true);
  ASSERT_TRUE(data.train && data.val);
  EXPECT_TRUE(data.report.errors.empty());
  EXPECT_EQ(data.report.splits, (std::vector<std::string>{"train", "val"}));
  EXPECT_EQ(data.report.split_sizes, (std::vector<int64_t>{3, 1}));
  const auto report = check_dataset(dir);  // splits train and val: the same pairs
  EXPECT_TRUE(torch::equal(data.report.histogram, report.histogram));
  EXPECT_TRUE(torch::equal(data.report.suggested_weights, report.suggested_weights));
  ASSERT_EQ(data.report.split_histograms.size(), 2u);  // per split: what --class-weights median-freq uses
  EXPECT_TRUE(torch::equal(data.report.split_histograms[0], class_histogram(SegmentationDataset(dir, "train"))));
  EXPECT_TRUE(torch::equal(data.report.split_histograms[1], class_histogram(SegmentationDataset(dir, "val"))));
  EXPECT_EQ(data.report.split_histograms[0][1].item<int64_t>(), 79);  // img1: 80 pixels of class 1, one void
  EXPECT_EQ(data.train->kept_stats().samples, 3u);
  EXPECT_EQ(data.val->kept_stats().samples, 1u);
  const auto before = SegmentationDataset(dir, "train").get(1);
  fs::remove_all(dir + "/JPEGImages");
  expect_same_sample(data.train->get(1), before);  // read no file again
  EXPECT_EQ(data.val->get(0).id, "img2");

  const auto unchecked = open_training_data(make_voc("voc_training"), size_t{1} << 20, /*check=*/false);
  ASSERT_TRUE(unchecked.train.has_value());
  EXPECT_FALSE(unchecked.val.has_value());  // no val.txt
  EXPECT_EQ(unchecked.train->kept_stats().samples, 0u);  // nothing read yet
  EXPECT_TRUE(unchecked.report.errors.empty() && unchecked.report.splits.empty());
}

// Bad data in a checked open: every problem listed, a missing file too; unchecked, it throws.
TEST(TrainingData, ListsEveryProblemWhenCheckedAndThrowsOtherwise) {
  const auto dir = make_voc("voc_training_bad");
  fs::remove(dir + "/SegmentationClass/img0.png");
  fs::resize_file(dir + "/JPEGImages/img2.png", 40);
  const auto data = open_training_data(dir, size_t{1} << 20, /*check=*/true);
  ASSERT_EQ(data.report.errors.size(), 2u);
  expect_names(data.report.errors[0], "SegmentationClass/img0.png", "missing mask");
  expect_names(data.report.errors[1], "img2.png", "truncated");
  ASSERT_TRUE(data.train.has_value());
  EXPECT_EQ(data.train->kept_stats().samples, 1u);  // img1, the one good pair
  expect_names(test::error_of([&] { open_training_data(dir, 0, /*check=*/false); }), "SegmentationClass/img0.png", "missing mask");
  const auto missing = open_training_data(dir + "/nowhere", 0, /*check=*/true);
  EXPECT_FALSE(missing.train.has_value());
  ASSERT_EQ(missing.report.errors.size(), 1u);
  expect_names(missing.report.errors[0], "nowhere", "not found");
  ASSERT_EQ(missing.report.split_histograms.size(), 1u);
  EXPECT_FALSE(missing.report.split_histograms[0].defined());
}

// The check decodes on every CPU but reports as one thread would: problems in file order, the same histogram.
TEST(TrainingData, TheParallelCheckReportsInFileOrder) {
  const std::string dir = test::temp_dir() + "/check_order";
  fs::remove_all(dir);
  for (const char* sub : {"images", "masks"}) fs::create_directories(dir + "/" + sub);
  int64_t foreground = 0;
  for (int i = 0; i < 24; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "p%02d", i);
    write_png(dir + "/images/" + id + ".png", torch::full({8, 8, 1}, i, torch::kByte));
    auto mask = torch::zeros({8, 8, 1}, torch::kByte);
    mask.slice(0, 0, i % 8).fill_(255);  // binary masks: i % 8 rows of foreground
    write_png(dir + "/masks/" + id + ".png", mask);
    if (i == 5 || i == 11 || i == 17) fs::resize_file(dir + "/images/" + id + ".png", 30);
    else foreground += 8 * (i % 8);
  }
  const auto report = check_dataset(dir);
  ASSERT_EQ(report.errors.size(), 3u);
  expect_names(report.errors[0], "p05.png", "");
  expect_names(report.errors[1], "p11.png", "");
  expect_names(report.errors[2], "p17.png", "");
  EXPECT_EQ(report.histogram[1].item<int64_t>(), foreground);
  EXPECT_EQ(report.histogram[0].item<int64_t>(), 21 * 64 - foreground);
}

// Kept samples live in glibc's heap, not in fcn's CPU allocator, whose blocks of 1 MiB or more are
// whole 2 MiB pages: a kept 1.1 MB image would hold 2 MiB there.
TEST(KeptSamples, AreHeldOutsideTheLargeBlockAllocator) {
  if (!install_cpu_allocator()) GTEST_SKIP() << "FCN_CPU_ALLOCATOR=system: LibTorch's own allocator";
  const std::string dir = test::temp_dir() + "/kept_large";
  fs::remove_all(dir);
  for (const char* sub : {"images", "masks"}) fs::create_directories(dir + "/" + sub);
  write_png(dir + "/images/a.png", torch::randint(0, 256, {600, 640, 3}, torch::kByte));  // 1,152,000 bytes kept
  write_png(dir + "/masks/a.png", torch::zeros({600, 640, 1}, torch::kByte));
  SegmentationDataset kept(dir, "all");
  kept.keep_decoded(size_t{64} << 20);
  const size_t live = cpu_allocator_stats().live_bytes;
  kept.get(0);
  EXPECT_EQ(kept.kept_stats().samples, 1u);
  EXPECT_EQ(kept.kept_stats().bytes, 600u * 640u * 4u);
  EXPECT_EQ(cpu_allocator_stats().live_bytes, live);
  EXPECT_EQ(kept.get(0).image.size(2), 640);
}

}  // namespace
}  // namespace fcn
