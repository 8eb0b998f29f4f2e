// .npy: round trips, files NumPy wrote, and clear errors on broken files.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/formats/npy.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  const std::string path = test::temp_dir() + "/roundtrip.npy";
  for (const auto& t : {torch::randn({2, 3, 4, 5}), torch::arange(7, torch::kLong), torch::randint(0, 255, {3, 2}).to(torch::kByte),
                        torch::randn({}).to(torch::kDouble)}) {
    write_npy(path, t);
    const auto back = read_npy(path);
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_TRUE(torch::equal(back, t));
  }
}

TEST(Npy, ReadsWhatNumPyWrote) {
  const auto x = read_npy(test::golden("fcn8s_same_input.npy"));
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{1, 3, 75, 53}));
  EXPECT_EQ(x.scalar_type(), torch::kFloat);
}

TEST(Npy, TruncatedFileIsAClearError) {
  const std::string path = test::temp_dir() + "/truncated.npy";
  write_npy(path, torch::randn({4, 4}));
  std::filesystem::resize_file(path, 100);
  const auto message = test::error_of([&] { read_npy(path); });
  EXPECT_NE(message.find(path), std::string::npos);
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  std::ofstream(path) << "not numpy";
  EXPECT_NE(test::error_of([&] { read_npy(path); }).find("not a .npy"), std::string::npos);
}

}  // namespace
}  // namespace fcn
