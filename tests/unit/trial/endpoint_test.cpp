// Change from baseline, LOCF / per-protocol populations and the arm comparison on a small
// hand-made table whose answers are worked out by hand in the comments below.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::trial {
namespace {

// MSC arm: S1 complete; S2 misses day28; S3's day10 scan failed and its day28 scan is on day
// 35 (outside +-3); S4 has no lesion at baseline. Placebo arm: P1 complete; P2 has no
// baseline; P3's day10 is flagged out of window and it has an unscheduled day90 row.
const char* kTable =
    "subject_id,arm,visit,visit_day,in_window,status,lesion_pct,ggo_pct,solid_pct,mld_hu,scanner\n"
    "S1,MSC,baseline,0,,ok,10,6,4,-700,GE\n"
    "S1,MSC,day10,10,,ok,8,5,3,-750,GE\n"
    "S1,MSC,day28,28,,ok,5,3,2,-800,GE\n"
    "S2,MSC,baseline,0,,ok,20,10,10,-650,GE\n"
    "S2,MSC,day10,11,,ok,15,9,6,-680,GE\n"
    "S3,MSC,baseline,0,,ok,4,2,2,-720,GE\n"
    "S3,MSC,day10,10,,failed,1,err,,,GE\n"
    "S3,MSC,day28,35,,ok,3,2,1,-760,GE\n"
    "S4,MSC,baseline,1,,ok,0,0,0,-850,GE\n"
    "S4,MSC,day10,10,,ok,1,1,0,-840,GE\n"
    "S4,MSC,day28,28,,ok,0.5,0.5,0,-845,GE\n"
    "P1,Placebo,baseline,0,,ok,10,5,5,-700,SIEMENS\n"
    "P1,Placebo,day10,9,,ok,12,6,6,-690,SIEMENS\n"
    "P1,Placebo,day28,27,,ok,9,5,4,-710,SIEMENS\n"
    "P2,Placebo,day10,10,,ok,5,3,2,-700,SIEMENS\n"
    "P2,Placebo,day28,28,,ok,4,2,2,-710,SIEMENS\n"
    "P3,Placebo,baseline,0,,ok,5,4,1,-800,SIEMENS\n"
    "P3,Placebo,day10,14,false,ok,5,4,1,-790,SIEMENS\n"
    "P3,Placebo,day28,28,true,ok,6,4,2,-780,SIEMENS\n"
    "P3,Placebo,day90,90,,ok,3,2,1,-800,SIEMENS\n";

const char* kSchedule =
    "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
    "[[visit]]\nname = \"day28\"\nday = 28\nwindow_days = 3\n"
    "[[visit]]\nname = \"day10\"\nday = 10\nwindow_days = 2\n";

EndpointResult run_hand_table() {
  const VisitTable t = parse_visit_table(kTable, "hand.csv");
  EndpointOptions opt;
  opt.arm_a = "MSC";
  opt.arm_b = "Placebo";
  return run_endpoints(t, parse_visit_schedule(kSchedule, "hand.toml"), opt);
}

const ChangeRecord& change(const EndpointResult& r, const std::string& subject,
                           const std::string& endpoint, const std::string& visit,
                           const std::string& pop) {
  for (const auto& c : r.changes) {
    if (c.subject_id == subject && c.endpoint == endpoint && c.visit == visit && c.population == pop) {
      return c;
    }
  }
  throw std::runtime_error("no change record " + subject + " " + visit);
}

bool has_flag(const ChangeRecord& c, const std::string& flag) {
  return std::find(c.flags.begin(), c.flags.end(), flag) != c.flags.end();
}

double pnorm(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

TEST(VisitTable, ParsesMetricsAndFlags) {
  const VisitTable t = parse_visit_table(kTable, "hand.csv");
  // scanner is text, so not a metric; visit_day / in_window / status are reserved.
  const std::vector<std::string> metrics{"lesion_pct", "ggo_pct", "solid_pct", "mld_hu"};
  EXPECT_EQ(t.metrics, metrics);
  ASSERT_EQ(t.rows.size(), 20u);
  EXPECT_TRUE(t.rows[6].failed);
  EXPECT_EQ(t.rows[6].line, 8u);
  EXPECT_EQ(*t.rows[17].in_window, false);
  EXPECT_DOUBLE_EQ(*t.rows[7].visit_day, 35);
  EXPECT_FALSE(t.rows[6].values[0]);  // a failed scan has no measurements, whatever its cells
  EXPECT_FALSE(t.rows[6].values[1]);
  const std::vector<std::string> arms{"MSC", "Placebo"};
  EXPECT_EQ(arms_in(t), arms);
}

TEST(VisitTable, MalformedTablesNameTheLine) {
  auto code_and_message = [](const std::string& csv) -> std::pair<int, std::string> {
    try {
      parse_visit_table(csv, "bad.csv");
    } catch (const Error& e) {
      return {e.exit_status(), e.what()};
    }
    return {0, ""};
  };
  auto r = code_and_message("subject_id,arm,visit,lesion_pct\nA,x,baseline,1\nA,x,day10,abc\n");
  EXPECT_EQ(r.first, 2);
  EXPECT_NE(r.second.find("line 3"), std::string::npos) << r.second;
  r = code_and_message("subject_id,arm,visit,lesion_pct\nA,x,baseline\n");
  EXPECT_EQ(r.first, 2);
  EXPECT_NE(r.second.find("line 2"), std::string::npos) << r.second;
  r = code_and_message("subject_id,visit,lesion_pct\nA,baseline,1\n");
  EXPECT_NE(r.second.find("'arm'"), std::string::npos) << r.second;
  r = code_and_message("subject_id,arm,visit,status,lesion_pct\nA,x,baseline,weird,1\n");
  EXPECT_NE(r.second.find("line 2"), std::string::npos) << r.second;
  // Quoted fields with commas parse.
  const VisitTable t =
      parse_visit_table("subject_id,arm,visit,lesion_pct\r\n\"A,1\",\"x \"\"y\"\"\",baseline,1.5\r\n", "q.csv");
  EXPECT_EQ(t.rows[0].subject_id, "A,1");
  EXPECT_EQ(t.rows[0].arm, "x \"y\"");
  EXPECT_DOUBLE_EQ(*t.rows[0].values[0], 1.5);
  EXPECT_THROW(read_visit_table("/nonexistent/visits.csv"), Error);
  try {
    read_visit_table("/nonexistent/visits.csv");
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_status(), 3);
  }
}

TEST(VisitTable, ContradictionsAreErrors) {
  const std::string head = "subject_id,arm,visit,lesion_pct\n";
  VisitTable t = parse_visit_table(head + "A,x,baseline,1\nA,y,day10,2\nB,y,baseline,1\n", "c.csv");
  EndpointOptions opt;
  opt.arm_a = "x";
  opt.arm_b = "y";
  EXPECT_THROW(run_endpoints(t, default_visit_schedule(), opt), Error);
  t = parse_visit_table(head + "A,x,baseline,1\nA,x,baseline,2\nB,y,baseline,1\n", "c.csv");
  EXPECT_THROW(run_endpoints(t, default_visit_schedule(), opt), Error);
  opt.arm_b = "z";
  EXPECT_THROW(run_endpoints(t, default_visit_schedule(), opt), Error);
}

TEST(VisitSchedule, DefaultAndToml) {
  const VisitSchedule d = default_visit_schedule();
  ASSERT_EQ(d.visits.size(), 3u);
  EXPECT_EQ(d.baseline().name, "baseline");
  EXPECT_EQ(d.visits[2].name, "day28");
  const VisitSchedule s = parse_visit_schedule(kSchedule, "hand.toml");
  ASSERT_EQ(s.visits.size(), 3u);
  EXPECT_EQ(s.visits[1].name, "day10");  // sorted by day
  EXPECT_DOUBLE_EQ(*s.visits[2].window_days, 3);
  EXPECT_THROW(parse_visit_schedule("[[visit]]\nname=\"a\"\nday=0\n", "x.toml"), Error);  // no baseline
  EXPECT_THROW(parse_visit_schedule("[[visit]]\nname=\"a\"\nday=0\nbaseline=true\n"
                                    "[[visit]]\nname=\"b\"\nday=5\nbaseline=true\n", "x.toml"),
               Error);
  EXPECT_THROW(parse_visit_schedule("[[visit]\n", "x.toml"), Error);
  EXPECT_THROW(parse_visit_schedule("[[visit]]\nname=\"a\"\nday=0\nbaseline=true\ncolour=1\n", "x.toml"), Error);
}

TEST(Endpoint, ChangesLocfAndFlags) {
  const EndpointResult r = run_hand_table();
  // S1 day28: (5 - 10) / 10 * 100 = -50, absolute -5.
  const auto& s1 = change(r, "S1", "lesion_pct_change", "day28", "mITT");
  EXPECT_DOUBLE_EQ(*s1.rel_change, -50);
  EXPECT_DOUBLE_EQ(*s1.abs_change, -5);
  EXPECT_TRUE(s1.flags.empty());
  EXPECT_TRUE(s1.included);
  // S2 day28 missing: LOCF carries day10 (15): (15 - 20) / 20 * 100 = -25.
  const auto& s2 = change(r, "S2", "lesion_pct_change", "day28", "mITT");
  EXPECT_TRUE(has_flag(s2, "imputed_locf"));
  EXPECT_EQ(s2.source_visit, "day10");
  EXPECT_DOUBLE_EQ(*s2.rel_change, -25);
  // S3 day10 scan failed: LOCF carries the baseline itself -> change 0.
  const auto& s3 = change(r, "S3", "lesion_pct_change", "day10", "mITT");
  EXPECT_TRUE(has_flag(s3, "imputed_locf"));
  EXPECT_EQ(s3.source_visit, "baseline");
  EXPECT_DOUBLE_EQ(*s3.rel_change, 0);
  // S3 day28 on day 35: observed, counts in mITT ((3 - 4) / 4 = -25 %), flagged.
  const auto& s3b = change(r, "S3", "lesion_pct_change", "day28", "mITT");
  EXPECT_DOUBLE_EQ(*s3b.rel_change, -25);
  EXPECT_TRUE(has_flag(s3b, "out_of_window"));
  EXPECT_TRUE(s3b.included);
  // ... but not per protocol.
  const auto& s3pp = change(r, "S3", "lesion_pct_change", "day28", "PP");
  EXPECT_FALSE(s3pp.included);
  EXPECT_TRUE(has_flag(s3pp, "out_of_window"));
  EXPECT_FALSE(s3pp.rel_change);
  EXPECT_TRUE(has_flag(change(r, "S2", "lesion_pct_change", "day28", "PP"), "missing"));
}

TEST(Endpoint, ZeroBaselineIsUndefinedNeverZeroOrInf) {
  const EndpointResult r = run_hand_table();
  const auto& s4 = change(r, "S4", "lesion_pct_change", "day28", "mITT");
  EXPECT_FALSE(s4.rel_change);
  EXPECT_FALSE(s4.change);
  EXPECT_TRUE(has_flag(s4, "baseline_zero"));
  EXPECT_FALSE(s4.included);
  EXPECT_DOUBLE_EQ(*s4.abs_change, 0.5);  // the absolute change is still defined
  // In the CSV the relative change is an empty field, never 0 / inf.
  const std::string csv = changes_csv(r);
  const std::string line = "S4,MSC,lesion_pct_change,day28,mITT,0,0.5,day28,0.5,,,false,baseline_zero\n";
  EXPECT_NE(csv.find(line), std::string::npos) << csv;
  EXPECT_EQ(csv.find("inf"), std::string::npos);
  // A subject without a baseline cannot contribute.
  const auto& p2 = change(r, "P2", "lesion_pct_change", "day28", "mITT");
  EXPECT_TRUE(has_flag(p2, "no_baseline"));
  EXPECT_FALSE(p2.included);
}

TEST(Endpoint, MittDay28ComparisonByHand) {
  const EndpointResult r = run_hand_table();
  const ComparisonRow* c = r.find("lesion_pct_change", "day28", "mITT");
  ASSERT_NE(c, nullptr);
  // MSC: S1 -50, S2 -25 (LOCF), S3 -25; S4 excluded (zero baseline). Placebo: P1 -10, P3 +20.
  EXPECT_EQ(c->a.n, 3u);
  EXPECT_EQ(c->b.n, 2u);
  EXPECT_DOUBLE_EQ(*c->a.median, -25);
  EXPECT_DOUBLE_EQ(*c->a.q1, -37.5);  // type 7: h = 0.5 between -50 and -25
  EXPECT_DOUBLE_EQ(*c->a.q3, -25);
  EXPECT_FALSE(c->a.median_ci_low);   // n = 3 cannot reach 95 %
  EXPECT_DOUBLE_EQ(*c->b.median, 5);
  // Pooled -50 -25 -25 -10 20 -> ranks 1 2.5 2.5 4 5: W = 6 - 6 = 0; ties -> normal branch.
  // z = (0 - 3 + 0.5) / sqrt(6/12 * (6 - 6 / 20)) ; p = 2 pnorm(z).
  ASSERT_TRUE(c->test);
  EXPECT_EQ(c->test->method(), "normal_cc");
  EXPECT_DOUBLE_EQ(c->test->w, 0);
  const double z = -2.5 / std::sqrt(0.5 * 5.7);
  EXPECT_NEAR(*c->test->p_value, 2 * pnorm(z), 1e-12);
}

TEST(Endpoint, PerProtocolOneSubjectArmExact) {
  const EndpointResult r = run_hand_table();
  // PP day28: MSC only S1 (-50); Placebo P1 (-10, day 27 within +-3) and P3 (+20, flag true).
  const ComparisonRow* c = r.find("lesion_pct_change", "day28", "PP");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->a.n, 1u);
  EXPECT_EQ(c->b.n, 2u);
  // x = {-50}, y = {-10, 20}: W = 0, P(W <= 0) = 1/3 -> p = 2/3. Differences -70, -40:
  // HL = -55; qwilcox(0.025, 1, 2) = 0 -> qu = 1 -> CI [-70, -40].
  ASSERT_TRUE(c->test);
  EXPECT_EQ(c->test->method(), "exact");
  EXPECT_DOUBLE_EQ(*c->test->p_value, 2.0 / 3);
  EXPECT_DOUBLE_EQ(*c->test->estimate, -55);
  EXPECT_DOUBLE_EQ(*c->test->ci_low, -70);
  EXPECT_DOUBLE_EQ(*c->test->ci_high, -40);
  // PP day10: MSC S1 -20, S2 -25 (day 11 within +-2); S3 failed; Placebo only P1 (+20; P3 is
  // flagged out of window). x = {-25, -20}, y = {20}: W = 0, p = 2/3, HL = median(-45, -40).
  const ComparisonRow* d = r.find("lesion_pct_change", "day10", "PP");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->a.n, 2u);
  EXPECT_EQ(d->b.n, 1u);
  EXPECT_DOUBLE_EQ(*d->test->estimate, -42.5);
  EXPECT_DOUBLE_EQ(*d->test->ci_low, -45);
  EXPECT_DOUBLE_EQ(*d->test->ci_high, -40);
  // mITT day10: MSC -20, -25, 0 (S3 LOCF); Placebo +20, 0.
  const ComparisonRow* m = r.find("lesion_pct_change", "day10", "mITT");
  EXPECT_EQ(m->a.n, 3u);
  EXPECT_EQ(m->b.n, 2u);
  EXPECT_DOUBLE_EQ(*m->a.median, -20);
}

TEST(Endpoint, AbsoluteChangeForNonProportionColumns) {
  const EndpointResult r = run_hand_table();
  // mld_hu (HU) -> absolute change. mITT day28: S1 -100, S2 -30 (LOCF day10), S3 -40, S4 +5
  // (zero does not matter for absolute change); Placebo P1 -10, P3 +20.
  const ComparisonRow* c = r.find("mld_hu_abs_change", "day28", "mITT");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind, ChangeKind::kAbsolute);
  EXPECT_EQ(c->a.n, 4u);
  EXPECT_DOUBLE_EQ(*c->a.median, -35);
  // Pooled -100 -40 -30 -10 5 20: x ranks 1 2 3 5 -> W = 11 - 10 = 1; exact P(W <= 1) for
  // m = 4, n = 2 is 2/15 -> p = 4/15.
  EXPECT_EQ(c->test->method(), "exact");
  EXPECT_DOUBLE_EQ(c->test->w, 1);
  EXPECT_NEAR(*c->test->p_value, 4.0 / 15, 1e-15);
  // The unscheduled day90 row, plus one warning per comparison whose arms are too small for a
  // 95% exact interval (R: "Requested conf.level not achievable") or hold one value each
  // (R: "cannot compute confidence interval when all observations are tied").
  std::size_t flagged = 0, small = 0;
  for (const auto& row : r.comparisons) {
    if (!row.test || row.test->flags.empty()) continue;
    ASSERT_EQ(row.test->flags.size(), 1u);
    const std::string f = row.test->flags[0];
    EXPECT_TRUE(f == "conf_level_not_achievable" || f == "ci_not_computable") << f;
    if (f == "conf_level_not_achievable") {
      EXPECT_LT(row.test->achieved_conf_level, 0.95);
      ++small;
    } else {
      EXPECT_FALSE(row.test->ci_low || row.test->estimate);
    }
    ++flagged;
  }
  EXPECT_GT(small, 0u);
  EXPECT_EQ(r.warnings.size(), 1u + flagged);
  EXPECT_NE(r.warnings[0].find("day90"), std::string::npos);
}

// The change map's fractions (batch's visits_wide.csv: resolved_fraction etc., 0 at the
// baseline, issue #17) are endpoints like the others: an absolute change from a zero baseline
// is the follow-up's own fraction, carried forward when a scan is missed.
TEST(Endpoint, ChangeMapFractionsAreEndpoints) {
  const char* table =
      "subject_id,arm,visit,visit_day,status,lesion_pct,resolved_fraction,new_lesion_fraction\n"
      "A1,MSC,baseline,0,ok,10,0,0\n"
      "A1,MSC,day10,10,ok,8,30,5\n"
      "A1,MSC,day28,28,ok,5,60,2\n"
      "A2,MSC,baseline,0,ok,20,0,0\n"
      "A2,MSC,day10,10,ok,15,40,1\n"
      "A3,MSC,baseline,0,ok,4,0,0\n"
      "A3,MSC,day10,10,ok,3,10,0\n"
      "A3,MSC,day28,28,ok,2,50,4\n"
      "B1,Placebo,baseline,0,ok,10,0,0\n"
      "B1,Placebo,day10,10,ok,12,5,20\n"
      "B1,Placebo,day28,28,ok,9,20,10\n"
      "B2,Placebo,baseline,0,ok,6,0,0\n"
      "B2,Placebo,day10,10,ok,6,0,8\n"
      "B2,Placebo,day28,28,ok,7,10,15\n";
  EndpointOptions opt;
  opt.arm_a = "MSC";
  opt.arm_b = "Placebo";
  const EndpointResult r =
      run_endpoints(parse_visit_table(table, "change.csv"), parse_visit_schedule(kSchedule, "s.toml"), opt);
  const auto& a2 = change(r, "A2", "resolved_fraction_abs_change", "day28", "mITT");
  EXPECT_TRUE(has_flag(a2, "imputed_locf"));  // A2 missed day 28: its day-10 fraction
  EXPECT_DOUBLE_EQ(*a2.abs_change, 40);
  const ComparisonRow* c = r.find("resolved_fraction_abs_change", "day28", "mITT");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind, ChangeKind::kAbsolute);
  // MSC 60, 40, 50; Placebo 20, 10: every MSC value above every placebo one: W = 6, exact
  // P(W >= 6) for m = 3, n = 2 is 1/10 -> p = 0.2; differences 20..50, HL = median = 35.
  EXPECT_DOUBLE_EQ(*c->a.median, 50);
  EXPECT_DOUBLE_EQ(*c->b.median, 15);
  ASSERT_TRUE(c->test);
  EXPECT_EQ(c->test->method(), "exact");
  EXPECT_DOUBLE_EQ(c->test->w, 6);
  EXPECT_NEAR(*c->test->p_value, 0.2, 1e-15);
  EXPECT_DOUBLE_EQ(*c->test->estimate, 35);
  ASSERT_NE(r.find("new_lesion_fraction_abs_change", "day10", "PP"), nullptr);
}

TEST(Endpoint, OutputsHaveTheContractColumns) {
  const EndpointResult r = run_hand_table();
  const std::string cmp = comparison_csv(r);
  const std::string header = cmp.substr(0, cmp.find('\n'));
  EXPECT_EQ(header.rfind("endpoint,visit,population,arm_a,n_a,median_a,median_ci_low_a,"
                         "median_ci_high_a,arm_b,n_b,median_b,median_ci_low_b,median_ci_high_b,"
                         "hl_estimate,hl_ci_low,hl_ci_high,w_statistic,p_value,method",
                         0),
            0u)
      << header;
  // 4 endpoints x 2 visits x 2 populations.
  EXPECT_EQ(std::count(cmp.begin(), cmp.end(), '\n'), 1 + 16);
  for (const char* e : {"lesion_pct_change", "ggo_pct_change", "solid_pct_change"}) {
    EXPECT_NE(cmp.find(std::string("\n") + e + ",day28,mITT,MSC,"), std::string::npos) << e;
  }
  // Full precision: p = 2/3 printed with 17 significant digits.
  EXPECT_NE(cmp.find("0.66666666666666663"), std::string::npos);
  const std::string md = table2_markdown(r);
  EXPECT_NE(md.find("| Change in the total lesion proportion (%) of the whole lung volume from "
                    "baseline to day28 | -25.00 (-37.50, -25.00) | 5.00 (-2.50, 12.50) |"),
            std::string::npos)
      << md;
  const std::string dir = test::temp_dir("trial_outputs");
  write_endpoint_outputs(r, dir + "/endpoint");
  for (const char* f : {"changes.csv", "comparison.csv", "table2.md"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/endpoint/" + f)) << f;
  }
  EXPECT_EQ(read_text_file(dir + "/endpoint/comparison.csv"), cmp);
}

TEST(Endpoint, FloatingPointNoiseTies) {
  // 0.3 -> 0.2 and 0.9 -> 0.6 are both -33.33...% in exact arithmetic but differ in floating
  // point; with the 10-significant-digit rule they tie and the normal branch is used.
  const std::string csv =
      "subject_id,arm,visit,lesion_pct\n"
      "a1,A,baseline,0.3\na1,A,day28,0.2\na2,A,baseline,0.9\na2,A,day28,0.6\n"
      "b1,B,baseline,0.7\nb1,B,day28,0.1\nb2,B,baseline,0.5\nb2,B,day28,0.45\n";
  const VisitTable t = parse_visit_table(csv, "noise.csv");
  EndpointOptions opt;
  opt.arm_a = "A";
  opt.arm_b = "B";
  const EndpointResult r = run_endpoints(t, default_visit_schedule(), opt);
  const auto& a1 = change(r, "a1", "lesion_pct_change", "day28", "mITT");
  const auto& a2 = change(r, "a2", "lesion_pct_change", "day28", "mITT");
  EXPECT_NE(*a1.rel_change, *a2.rel_change);  // the noise is real
  const ComparisonRow* c = r.find("lesion_pct_change", "day28", "mITT");
  EXPECT_TRUE(c->test->ties);
  EXPECT_EQ(c->test->method(), "normal_cc");
}

}  // namespace
}  // namespace lungvol::trial
