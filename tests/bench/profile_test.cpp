// The operator profile (fcn bench --profile): calls counted per operator, self time = total less the
// operators called inside, rows by self time, fcn's own kernels as rows of their own, and the
// profiled run of time_net kept out of its timings.
#include "fcn/bench/profile.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/bench/benchmark.h"
#include "fcn/models/registry.h"
#include "fcn/models/winograd.h"

namespace fcn {
namespace {

const OpTime* find(const std::vector<OpTime>& ops, const std::string& name) {
  for (const auto& op : ops)
    if (op.name == name) return &op;
  return nullptr;
}

TEST(OpProfiler, CountsCallsAndSplitsSelfFromTotal) {
  const auto a = torch::rand({256, 256}), b = torch::rand({256, 256});
  std::vector<OpTime> ops;
  {
    OpProfiler profiler;
    for (int i = 0; i < 2; ++i) torch::matmul(a, b);  // aten::matmul calls aten::mm (and aten::t, ...)
    for (int i = 0; i < 3; ++i) torch::relu(a);
    ops = profiler.finish();
  }
  const auto *matmul = find(ops, "aten::matmul"), *mm = find(ops, "aten::mm"), *relu = find(ops, "aten::relu");
  ASSERT_NE(matmul, nullptr);
  ASSERT_NE(mm, nullptr);
  ASSERT_NE(relu, nullptr);
  EXPECT_EQ(matmul->calls, 2);
  EXPECT_EQ(mm->calls, 2);
  EXPECT_EQ(relu->calls, 3);
  EXPECT_GT(matmul->total_ms, mm->total_ms);  // its child's time is inside its own
  EXPECT_LE(matmul->self_ms, matmul->total_ms - mm->total_ms + 1e-6);
  // Self times add up to the top-level calls' spans: every instant counted once.
  double self = 0;
  for (const auto& op : ops) self += op.self_ms;
  EXPECT_NEAR(self, matmul->total_ms + relu->total_ms, 1e-6 + 1e-9 * self);
  for (size_t i = 1; i < ops.size(); ++i) EXPECT_GE(ops[i - 1].self_ms, ops[i].self_ms) << "rows by self time";
  // Off again: a second profiler records only its own work.
  OpProfiler again;
  torch::sigmoid(a);
  const auto second = again.finish();
  EXPECT_EQ(find(second, "aten::mm"), nullptr);
  EXPECT_NE(find(second, "aten::sigmoid"), nullptr);
}

TEST(OpProfiler, FcnKernelsHaveRowsOfTheirOwn) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  const auto x = torch::rand({1, 64, 12, 12}), w = torch::randn({64, 64, 3, 3});
  torch::NoGradGuard no_grad;
  OpProfiler profiler;
  winograd_conv2d(x, w, {}, 1);
  const auto ops = profiler.finish();
  const auto* row = find(ops, "fcn::winograd_conv2d");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->calls, 1);
}

TEST(OpProfiler, TimeNetProfilesOneMoreRunOutsideItsTimings) {
  NetRecipe recipe;
  recipe.arch = "fcn32s";
  recipe.backbone = "vgg11-w0.125";
  recipe.fc_channels = 16;
  recipe.fc_kernel = 1;
  recipe.classes = 3;
  const auto net = make_net(recipe);
  BenchOptions options;
  options.height = options.width = 32;
  options.warmup = 0;
  options.runs = 2;
  options.profile = true;
  const auto timing = time_net(*net, options);
  EXPECT_EQ(timing.ms.size(), 2u);
  int64_t convs = 0;  // vgg11's 8, fc6, fc7, score_fr and the upsampling
  for (const auto& module : net->modules(false)) convs += module->name().find("Conv") != std::string::npos;
  ASSERT_EQ(convs, 12);
  const auto* convolution = find(timing.profile, "aten::convolution");
  ASSERT_NE(convolution, nullptr);
  EXPECT_EQ(convolution->calls, convs) << "each conv once: one run profiled";
  options.profile = false;
  EXPECT_TRUE(time_net(*net, options).profile.empty());
}

}  // namespace
}  // namespace fcn
