// A rank's settings from a launcher's environment (torchrun's names, then Slurm's), from
// --dist-url, and their checks; errors name the variable. The ranks themselves are tested end to
// end on 127.0.0.1 by tests/cli/distributed_test.py.
#include <cstdlib>

#include <gtest/gtest.h>

#include "fcn/train/distributed.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

class Environment : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"})
      ::unsetenv(name);
  }
  static std::string error_of(void (*body)()) {
    try {
      body();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(Environment, NoLauncherIsOneProcess) {
  const auto options = distributed_from_environment();
  EXPECT_EQ(options.world_size(), 1);
  EXPECT_EQ(options.rank(), 0);
}

TEST_F(Environment, TorchrunVariables) {
  ::setenv("RANK", "3", 1);
  ::setenv("WORLD_SIZE", "8", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "node01", 1);
  ::setenv("MASTER_PORT", "29501", 1);
  const auto options = distributed_from_environment();
  EXPECT_EQ(options.rank(), 3);
  EXPECT_EQ(options.world_size(), 8);
  EXPECT_EQ(options.local_rank(), 1);
  EXPECT_EQ(options.master_addr(), "node01");
  EXPECT_EQ(options.master_port(), 29501);
  EXPECT_NO_THROW(validate(options));
}

TEST_F(Environment, SlurmVariablesWhenTorchrunsAreAbsent) {
  ::setenv("SLURM_PROCID", "5", 1);
  ::setenv("SLURM_NTASKS", "16", 1);
  ::setenv("SLURM_LOCALID", "5", 1);
  ::setenv("MASTER_ADDR", "10.0.0.1", 1);
  ::setenv("MASTER_PORT", "29500", 1);
  const auto options = distributed_from_environment();
  EXPECT_EQ(options.rank(), 5);
  EXPECT_EQ(options.world_size(), 16);
  EXPECT_EQ(options.rank_source(), "SLURM_PROCID");
}

TEST_F(Environment, ErrorsNameTheVariable) {
  ::setenv("RANK", "0", 1);
  EXPECT_NE(error_of([] { distributed_from_environment(); }).find("WORLD_SIZE"), std::string::npos);
  ::setenv("WORLD_SIZE", "2x", 1);
  EXPECT_NE(error_of([] { distributed_from_environment(); }).find("WORLD_SIZE: '2x' is not a whole number"), std::string::npos);
  ::setenv("WORLD_SIZE", "2", 1);
  EXPECT_NE(error_of([] { distributed_from_environment(); }).find("MASTER_ADDR"), std::string::npos);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  EXPECT_NE(error_of([] { distributed_from_environment(); }).find("MASTER_PORT"), std::string::npos);
  ::setenv("MASTER_PORT", "29500", 1);
  ::setenv("RANK", "2", 1);
  EXPECT_NE(error_of([] { validate(distributed_from_environment()); }).find("RANK: 2 is not a rank of a job of WORLD_SIZE=2"),
            std::string::npos);
}

TEST_F(Environment, DistUrl) {
  DistributedOptions options;
  set_dist_url(options, "tcp://node07:23456");
  EXPECT_EQ(options.master_addr(), "node07");
  EXPECT_EQ(options.master_port(), 23456);
  EXPECT_NE(error_of([] {
              DistributedOptions o;
              set_dist_url(o, "http://node07");
            }).find("--dist-url"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              DistributedOptions o;
              o.world_size(2).rank(0).master_port(70000);
              validate(o);
            }).find("port 70000"),
            std::string::npos);
}

// One GPU per rank: fcn train's and fcn bench --nproc's ranks ask for "cuda" and run on their own.
TEST(RankDevice, AnUnindexedGpuIsTheLocalRanks) {
  const auto job = DistributedOptions().rank(5).world_size(8).local_rank(1);
  EXPECT_EQ(rank_device(torch::Device("cuda"), job), torch::Device("cuda:1"));
  EXPECT_EQ(rank_device(torch::Device("cuda:0"), job), torch::Device("cuda:0"));  // the user's own choice
  EXPECT_EQ(rank_device(torch::kCPU, job), torch::Device(torch::kCPU));
}

}  // namespace
}  // namespace fcn
