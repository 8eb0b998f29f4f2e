// The operator profile (fcn bench --profile): calls counted per operator, self time = total less the
// operators called inside, rows by self time, fcn's own kernels as rows of their own, and the
// profiled run of time_net kept out of its timings. And timing training steps on a run's own net
// (fcn train --tune) leaves no trace.
#include "fcn/bench/profile.h"

#include <map>
#include <string>
#include <utility>

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

// fcn bench --profile-shapes: a row per operator, input shapes and outermost caller; without it
// one row per operator, whatever the shapes and callers.
TEST(OpProfiler, ByShapeSplitsRowsByInputsAndCaller) {
  const auto a = torch::rand({64, 32}), b = torch::rand({32, 16}), c = torch::rand({16, 8});
  auto profile = [&](bool by_shape) {
    OpProfiler profiler(by_shape);
    torch::matmul(a, b);  // aten::mm [64,32] [32,16] inside aten::matmul
    torch::matmul(b, c);  // aten::mm [32,16] [16,8] inside aten::matmul
    torch::mm(a, b);      // aten::mm [64,32] [32,16] at the top
    return profiler.finish();
  };
  std::map<std::pair<std::string, std::string>, int64_t> mm;
  for (const auto& op : profile(true))
    if (op.name == "aten::mm") mm[{op.shapes, op.within}] += op.calls;
  const std::map<std::pair<std::string, std::string>, int64_t> expected{
      {{"[64,32] [32,16]", "aten::matmul"}, 1}, {{"[32,16] [16,8]", "aten::matmul"}, 1}, {{"[64,32] [32,16]", ""}, 1}};
  EXPECT_EQ(mm, expected);
  const auto plain = profile(false);
  const auto* row = find(plain, "aten::mm");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->calls, 3);
  EXPECT_TRUE(row->shapes.empty() && row->within.empty());
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

// fcn train --tune times steps on the run's own net: the guard puts back its weights, buffers and
// the random stream, so the run trains as if nothing had been timed.
TEST(TrainingTuneGuard, PutsBackWeightsBuffersAndTheRandomStream) {
  NetRecipe recipe;
  recipe.arch = "unet";
  recipe.depth = 2;
  recipe.base_channels = 4;
  recipe.batch_norm = true;  // buffers too
  recipe.classes = 3;
  torch::manual_seed(3);
  const auto net = make_net(recipe);
  std::vector<torch::Tensor> before;
  for (const auto& p : net->parameters()) before.push_back(p.detach().clone());
  for (const auto& b : net->buffers()) before.push_back(b.detach().clone());
  auto now = [&] {
    auto all = net->parameters();
    for (const auto& b : net->buffers()) all.push_back(b);
    return all;
  };
  torch::manual_seed(7);
  const auto conv_before = training_conv_algorithm();
  {
    const TrainingTuneGuard guard(*net);
    EXPECT_GT(time_train_step(*net, training_rule_path(), 32, 32, 2, "fp32", 1), 0.0);
    bool changed = false;
    for (size_t i = 0; i < before.size(); ++i) changed = changed || !torch::equal(now()[i], before[i]);
    EXPECT_TRUE(changed) << "the steps trained the net";
    EXPECT_TRUE(net->parameters()[0].is_contiguous()) << "left in NCHW";
  }
  const auto after = now();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i])) << i;
  for (const auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
  const auto draw = torch::rand({4});
  torch::manual_seed(7);
  EXPECT_TRUE(torch::equal(draw, torch::rand({4}))) << "the random stream as it was before the guard";
  EXPECT_EQ(training_conv_algorithm(), conv_before) << "time_train_step's conv algorithm put back";
}

}  // namespace
}  // namespace fcn
