// Proportions from HU histograms at new thresholds, worked out by hand.
#include <gtest/gtest.h>

#include "trial/sweep.hpp"

namespace lungvol::trial {
namespace {

TEST(Sweep, CountInHalfOpenIntegerBins) {
  // Bins for HU -3 .. 2 holding 1, 2, 3, 4, 5, 6 voxels.
  const std::vector<std::uint64_t> h{1, 2, 3, 4, 5, 6};
  EXPECT_EQ(count_in(h, -3, -3, 3), 21);    // everything
  EXPECT_EQ(count_in(h, -3, -1, 1), 3 + 4);  // HU -1 and 0
  EXPECT_EQ(count_in(h, -3, -1.5, 0.5), 3 + 4);  // integers -1, 0 in [-1.5, 0.5)
  EXPECT_EQ(count_in(h, -3, -100, -2), 1);   // below the range counts 0; HU -3 only
  EXPECT_EQ(count_in(h, -3, 2, 100), 6);
  EXPECT_EQ(count_in(h, -3, 5, 9), 0);
  EXPECT_EQ(count_in(h, -3, 1, 1), 0);
  EXPECT_EQ(total_count(h), 21);
}

TEST(Sweep, ProportionsAtThresholds) {
  // Lung: 1000 voxels. Candidates: 30 at HU -700, 20 at -400, 10 at -100 (bins from -1000).
  std::vector<std::uint64_t> lung(1200, 0), cand(1200, 0);
  lung[0] = 940;
  cand[300] = 30;
  cand[600] = 20;
  cand[900] = 10;
  lung[300] += 30;
  lung[600] += 20;
  lung[900] += 10;
  auto p = proportions_at(lung, cand, -1000, -750, -300, 50);
  EXPECT_DOUBLE_EQ(*p.lesion_pct, 6.0);  // 60 / 1000
  EXPECT_DOUBLE_EQ(*p.ggo_pct, 5.0);     // -700 and -400
  EXPECT_DOUBLE_EQ(*p.solid_pct, 1.0);   // -100
  p = proportions_at(lung, cand, -1000, -650, -450, 50);
  EXPECT_DOUBLE_EQ(*p.lesion_pct, 3.0);  // -400, -100
  EXPECT_DOUBLE_EQ(*p.ggo_pct, 0.0);
  EXPECT_DOUBLE_EQ(*p.solid_pct, 3.0);
  EXPECT_FALSE(proportions_at({}, cand, -1000, -750, -300, 50).lesion_pct);
  // Same numbers through the pipeline's HuHistogram.
  HuHistogram hl, hc;
  for (int i = 0; i < 940; ++i) hl.add(-1000);
  for (int i = 0; i < 30; ++i) hl.add(-700), hc.add(-700);
  for (int i = 0; i < 20; ++i) hl.add(-400), hc.add(-400);
  for (int i = 0; i < 10; ++i) hl.add(-100), hc.add(-100);
  p = proportions_at(hl, hc, -750, -300, 50);
  EXPECT_DOUBLE_EQ(*p.lesion_pct, 6.0);
  EXPECT_DOUBLE_EQ(*p.ggo_pct, 5.0);
  EXPECT_DOUBLE_EQ(*p.solid_pct, 1.0);
}

TEST(Sweep, RunsEndpointsInMemory) {
  // Two subjects per arm, lung of 100 voxels at -900 HU; candidates at -500 (GGO at split
  // -300) or -200 (solid). Baseline 10 candidates; day28: a1 5, a2 2, b1 8, b2 10.
  auto scan = [](const std::string& id, const std::string& arm, const std::string& visit,
                 std::uint64_t ggo, std::uint64_t solid) {
    ScanHistograms s;
    s.subject_id = id;
    s.arm = arm;
    s.visit = visit;
    s.hist_min_hu = -1000;
    s.lung.assign(1000, 0);
    s.candidates.assign(1000, 0);
    s.lung[100] = 100 - ggo - solid;
    s.lung[500] = s.candidates[500] = ggo;
    s.lung[800] = s.candidates[800] = solid;
    return s;
  };
  const std::vector<ScanHistograms> scans{
      scan("a1", "A", "baseline", 5, 5), scan("a1", "A", "day28", 5, 0),
      scan("a2", "A", "baseline", 5, 5), scan("a2", "A", "day28", 1, 1),
      scan("b1", "B", "baseline", 5, 5), scan("b1", "B", "day28", 4, 4),
      scan("b2", "B", "baseline", 5, 5), scan("b2", "B", "day28", 5, 5)};
  EndpointOptions opt;
  opt.arm_a = "A";
  opt.arm_b = "B";
  const EndpointResult r = sweep_point(scans, -750, -300, 50, default_visit_schedule(), opt);
  const ComparisonRow* c = r.find("lesion_pct_change", "day28", "mITT");
  ASSERT_NE(c, nullptr);
  // Lesion changes: A {-50, -80}, B {-20, 0}: medians -65 and -10; W = 0 (A all below B),
  // exact P(W <= 0) = 1/6 for m = n = 2 -> p = 1/3.
  EXPECT_DOUBLE_EQ(*c->a.median, -65);
  EXPECT_DOUBLE_EQ(*c->b.median, -10);
  EXPECT_DOUBLE_EQ(*c->test->p_value, 1.0 / 3);
  // Moving the split to -600 makes every candidate solid: ggo proportions are all 0, so the
  // ggo relative change is undefined (zero baseline) for everybody.
  const EndpointResult s = sweep_point(scans, -750, -600, 50, default_visit_schedule(), opt);
  EXPECT_EQ(s.find("ggo_pct_change", "day28", "mITT")->a.n, 0u);
  EXPECT_EQ(s.find("solid_pct_change", "day28", "mITT")->a.n, 2u);
}

}  // namespace
}  // namespace lungvol::trial
