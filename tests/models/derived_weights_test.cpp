// The inference cache of tensors derived from parameters (a transposed conv's
// rearranged weights): made once per parameter version, remade after any change
// to the parameter, never kept in grad mode, for inference tensors or over its
// size limit, and dropped with the parameter.
#include "fcn/models/derived_weights.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fcn {
namespace {

struct Counted {
  int made = 0;
  torch::Tensor operator()(const torch::Tensor& w) {
    ++made;
    return w * 2;
  }
};

class DerivedWeights : public ::testing::Test {
 protected:
  void SetUp() override { clear_derived_weights(); }
  void TearDown() override { clear_derived_weights(); }
};

TEST_F(DerivedWeights, MadeOncePerVersionAndRemadeAfterEveryKindOfChange) {
  torch::NoGradGuard no_grad;
  auto w = torch::randn({4, 3});
  Counted make;
  auto derived = [&] { return derived_weight("double", {w}, [&] { return make(w); }); };
  const auto first = derived();
  EXPECT_TRUE(torch::equal(first, w * 2));
  EXPECT_TRUE(derived().is_same(first));
  EXPECT_EQ(make.made, 1);
  EXPECT_EQ(derived_weight_stats().hits, 1u);

  w.add_(1);  // in place: a new version
  EXPECT_TRUE(torch::equal(derived(), w * 2));
  EXPECT_EQ(make.made, 2);
  w.copy_(torch::randn({4, 3}));  // what loading weights does
  EXPECT_TRUE(torch::equal(derived(), w * 2));
  EXPECT_EQ(make.made, 3);
  w.set_data(torch::randn({4, 3}));  // what to_channels_last and .to() do
  EXPECT_TRUE(torch::equal(derived(), w * 2));
  EXPECT_EQ(make.made, 4);
  EXPECT_EQ(derived_weight_stats().entries, 1u) << "a stale entry of the same tensor is replaced, not kept beside";

  // Another kind of the same tensor is an entry of its own.
  const auto other = derived_weight("triple", {w}, [&] { return w * 3; });
  EXPECT_TRUE(torch::equal(other, w * 3));
  EXPECT_EQ(derived_weight_stats().entries, 2u);
}

TEST_F(DerivedWeights, AnEntryOfEverySourceChangesWithAnyOfThem) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({3}), b = torch::randn({3});
  int made = 0;
  auto sum = [&] {
    return derived_weight("sum", {a, b}, [&] {
      ++made;
      return a + b;
    });
  };
  sum();
  sum();
  EXPECT_EQ(made, 1);
  b.mul_(2);
  EXPECT_TRUE(torch::allclose(sum(), a + b));
  EXPECT_EQ(made, 2);
}

TEST_F(DerivedWeights, NothingKeptInGradModeForInferenceTensorsOrOverTheLimit) {
  auto w = torch::randn({8}, torch::requires_grad());
  Counted make;
  for (int i = 0; i < 2; ++i) {
    const auto y = derived_weight("double", {w}, [&] { return make(w); });
    EXPECT_TRUE(y.requires_grad()) << "in grad mode the result keeps its history";
  }
  EXPECT_EQ(make.made, 2);
  EXPECT_EQ(derived_weight_stats().entries, 0u);

  torch::Tensor frozen;
  {
    c10::InferenceMode inference;
    frozen = torch::randn({8});  // an inference tensor: no version counter to check
    for (int i = 0; i < 2; ++i) derived_weight("double", {frozen}, [&] { return make(frozen); });
  }
  EXPECT_EQ(make.made, 4);

  torch::NoGradGuard no_grad;
  const auto big = torch::zeros({static_cast<int64_t>(kDerivedWeightMaxBytes / sizeof(float)) + 1});
  for (int i = 0; i < 2; ++i)
    derived_weight("copy", {big}, [&] {
      ++make.made;
      return big.clone();
    });
  EXPECT_EQ(make.made, 6);
  EXPECT_EQ(derived_weight_stats().entries, 0u);
  EXPECT_EQ(derived_weight_stats().bytes, 0u);
}

TEST_F(DerivedWeights, EntriesOfDeadTensorsAndTheOldestOverTheBudgetAreDropped) {
  torch::NoGradGuard no_grad;
  {
    auto w = torch::randn({1000});
    derived_weight("double", {w}, [&] { return w * 2; });
    EXPECT_EQ(derived_weight_stats().bytes, 4000u);
  }
  auto v = torch::randn({10});
  derived_weight("double", {v}, [&] { return v * 2; });  // an insertion sweeps the dead entry
  EXPECT_EQ(derived_weight_stats().entries, 1u);
  EXPECT_EQ(derived_weight_stats().bytes, 40u);

  // Entries of 48 MiB each: the budget holds five; the sixth pushes out the
  // oldest (v's and the first).
  const int64_t n = (int64_t{48} << 20) / 4;
  std::vector<torch::Tensor> sources;
  for (int i = 0; i < 6; ++i) {
    sources.push_back(torch::zeros({n}));
    derived_weight("copy", {sources.back()}, [&] { return sources.back().clone(); });
  }
  const auto stats = derived_weight_stats();
  EXPECT_LE(stats.bytes, kDerivedWeightBudgetBytes);
  EXPECT_EQ(stats.entries, 5u);
  int made = 0;
  derived_weight("copy", {sources.front()}, [&] {
    ++made;
    return sources.front().clone();
  });
  EXPECT_EQ(made, 1) << "the oldest entry was dropped";
  derived_weight("copy", {sources.back()}, [&] {
    ++made;
    return sources.back().clone();
  });
  EXPECT_EQ(made, 1) << "the newest is kept";
}

}  // namespace
}  // namespace fcn
