// fcn::Error's helpers: numbers and library messages as one printed line shows them.
#include "fcn/util/error.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace fcn {
namespace {

TEST(Error, NumbersReadAsAPersonWritesThem) {
  EXPECT_EQ(number_text(2), "2");  // std::to_string: "2.000000"
  EXPECT_EQ(number_text(0.9), "0.9");
  EXPECT_EQ(number_text(1e-5), "1e-05");  // std::to_string: "0.000010"
  EXPECT_EQ(number_text(1e-9), "1e-09");  // std::to_string: "0.000000", which reads as zero
  EXPECT_EQ(number_text(-1.5), "-1.5");
  EXPECT_EQ(number_text(1e30), "1e+30");
  EXPECT_EQ(number_text(std::nan("")), "nan");
  EXPECT_EQ(number_text(std::numeric_limits<double>::infinity()), "inf");
}

TEST(Error, SubjectAndMessageMakeOneLine) {
  const Error error("PredictOptions.tile", "must be >= 0");
  EXPECT_STREQ(error.what(), "PredictOptions.tile: must be >= 0");
  EXPECT_EQ(error.subject(), "PredictOptions.tile");
  EXPECT_EQ(first_line("one\ntwo\nthree"), "one");
  EXPECT_EQ(printable("a\nb\x1b[2J"), "a\\nb\\x1b[2J");
}

}  // namespace
}  // namespace fcn
