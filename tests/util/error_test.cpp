// fcn::Error's helpers: numbers and library messages as one printed line shows them.
#include "fcn/util/error.h"

#include <cerrno>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <limits>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "../test_util.h"
#include "fcn/util/atomic_file.h"

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

// A full disk (or a spent quota) is OutOfSpace, which fcn predict stops at instead of skipping input after input;
// any other failed write is a plain Error with the system's words. (The CLI check "a full disk" fills a real one.)
TEST(AtomicFile, AFullDiskIsOutOfSpaceAndOtherFailuresArePlainErrors) {
  const auto dir = test::fresh_dir("out_of_space");
  const auto file = dir + "/a.png";
  const auto out_of_space = [&](int error_number, const std::string& otherwise) {
    try {
      fail_write(file, error_number, otherwise);
    } catch (const OutOfSpace& e) {
      return std::string("OutOfSpace ") + e.what();
    } catch (const Error& e) {
      return std::string("Error ") + e.what();
    }
    return std::string("nothing thrown");
  };
  EXPECT_EQ(out_of_space(ENOSPC, "x"), "OutOfSpace " + file + ": cannot write: No space left on device");
  EXPECT_EQ(out_of_space(EDQUOT, "x"), "OutOfSpace " + file + ": cannot write: Disk quota exceeded");
  EXPECT_EQ(out_of_space(EACCES, "x"), "Error " + file + ": cannot write: Permission denied");
  try {  // read-only: every later write fails too (predict stops), but no room would help
    fail_write(file, EROFS);
    ADD_FAILURE() << "nothing thrown";
  } catch (const OutOfSpace& e) {
    ADD_FAILURE() << "a read-only file system is not a full one: " << e.what();
  } catch (const Unwritable& e) {
    EXPECT_STREQ(e.what(), (file + ": cannot write: Read-only file system").c_str());
  }
  // A writer that keeps errno to itself (libtiff, a video encoder): the file system's free space decides.
  EXPECT_EQ(space_error(file, 0), 0) << "the test's own folder has under 1 MiB free";
  EXPECT_EQ(out_of_space(0, "cannot write the video: 3 frames written, 2 in the file"),
            "Error " + file + ": cannot write the video: 3 frames written, 2 in the file");
  EXPECT_EQ(space_error(file, ENOSPC), ENOSPC);
  EXPECT_EQ(space_error(file, EIO), 0);
  // write_file_atomic: the error names the file, and no temporary file stays behind.
  const std::string text = "abc";
  EXPECT_EQ(test::error_of([&] { write_file_atomic(dir + "/missing/a.png", text.data(), text.size()); }),
            dir + "/missing/a.png: cannot write: No such file or directory");
  write_file_atomic(file, text.data(), text.size());
  EXPECT_EQ(read_file(file), std::vector<char>(text.begin(), text.end()));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
}

// A streamed write (models, checkpoints) gives the pieces in order; a producer that throws, or a write that fails
// part way (here: past the process's file size limit, EFBIG), leaves the old file and no temporary one.
TEST(AtomicFile, StreamedWritesLeaveTheWholeFileOrTheOldOne) {
  const auto dir = test::fresh_dir("streamed");
  const auto file = dir + "/model.fcn";
  const auto produce = [](int pieces) {
    return [pieces](const ByteSink& sink) {
      for (int i = 0; i < pieces; ++i) sink(std::string(1000, static_cast<char>('a' + i)).data(), 1000);
    };
  };
  write_file_atomic(file, produce(3), Durability::kDurable);
  const auto old = read_file(file);
  ASSERT_EQ(old.size(), 3000u);
  EXPECT_EQ(std::string(old.data() + 1000, 1000), std::string(1000, 'b'));
  const auto files = [&] { return std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()); };
  EXPECT_EQ(test::error_of([&] {
              write_file_atomic(file, [&](const ByteSink& sink) {
                sink("xyz", 3);
                fail("producer", "gave up");
              });
            }),
            "producer: gave up");
  EXPECT_EQ(read_file(file), old);
  EXPECT_EQ(files(), 1);
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &limit), 0);
  const auto previous = std::signal(SIGXFSZ, SIG_IGN);  // past the limit, write() fails with EFBIG instead
  rlimit small = limit;
  small.rlim_cur = 2500;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const auto error = test::error_of([&] { write_file_atomic(file, produce(4)); });
  ::setrlimit(RLIMIT_FSIZE, &limit);
  std::signal(SIGXFSZ, previous);
  EXPECT_EQ(error, file + ": cannot write: File too large");
  EXPECT_EQ(read_file(file), old);
  EXPECT_EQ(files(), 1);
}

}  // namespace
}  // namespace fcn
