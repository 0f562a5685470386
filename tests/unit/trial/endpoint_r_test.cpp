// run_endpoints on visit tables against R 4.2.2 (tests/unit/trial/r_reference/r_cases.json,
// "endpoint"): R read the same CSV text, computed the changes and ran wilcox.test with
// digits.rank = 10 (lungvol's default) and Inf (R's default).
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "tests/support/test_paths.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::trial {
namespace {

const nlohmann::json& endpoint_cases() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::source_dir() + "/tests/unit/trial/r_reference/r_cases.json");
    EXPECT_TRUE(in.good());
    return nlohmann::json::parse(in)["endpoint"];
  }();
  return j;
}

const nlohmann::json& named(const std::string& name) {
  for (const auto& c : endpoint_cases()) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no endpoint case " + name);
}

void expect_close(std::optional<double> a, double b, double tol, const std::string& what) {
  ASSERT_TRUE(a.has_value()) << what;
  EXPECT_LE(std::fabs(*a - b), tol * std::max(1.0, std::fabs(b))) << what << ": " << *a << " vs R " << b;
}

EndpointResult run_case(const nlohmann::json& c, int digits_rank) {
  EndpointOptions o;
  o.arm_a = "MSC";
  o.arm_b = "Placebo";
  o.endpoints = endpoints_for(parse_visit_table(c["csv"].get<std::string>(), "r.csv"),
                              {c["column"].get<std::string>()});
  o.wilcoxon.digits_rank = digits_rank;
  return run_endpoints(parse_visit_table(c["csv"].get<std::string>(), "r.csv"),
                       default_visit_schedule(), o);
}

void check_against_r(const nlohmann::json& c, const EndpointResult& r, const nlohmann::json& t) {
  const std::string ep = c["column"].get<std::string>() +
                         (c["column"] == "mass_g" ? "_abs_change" : "_change");
  const ComparisonRow* row = r.find(ep, "day28", kPopulationMITT);
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->a.n, c["n_a"].get<std::size_t>());
  EXPECT_EQ(row->b.n, c["n_b"].get<std::size_t>());
  EXPECT_EQ(*row->a.median, c["median_a"].get<double>());
  EXPECT_EQ(*row->b.median, c["median_b"].get<double>());
  EXPECT_EQ(*row->a.q1, c["q1_a"].get<double>());
  EXPECT_EQ(*row->a.q3, c["q3_a"].get<double>());
  EXPECT_EQ(*row->b.q1, c["q1_b"].get<double>());
  EXPECT_EQ(*row->b.q3, c["q3_b"].get<double>());
  ASSERT_TRUE(row->test.has_value());
  EXPECT_EQ(row->test->w, t["W"].get<double>());
  expect_close(row->test->p_value, t["p"].get<double>(), 1e-15, "p");
  expect_close(row->test->estimate, t["estimate"].get<double>(), 1e-12, "estimate");
  expect_close(row->test->ci_low, t["ci"][0].get<double>(), 1e-12, "ci low");
  expect_close(row->test->ci_high, t["ci"][1].get<double>(), 1e-12, "ci high");
  EXPECT_EQ(row->test->achieved_conf_level, t["conf_level"].get<double>());
  EXPECT_EQ(row->test->digits_rank, t["digits_rank"].get<int>());
}

// "1e-310" is a number; its subject's relative change overflows to Inf and is flagged and left
// out; everyone else is compared, exactly as R compares the finite changes.
TEST(EndpointR, NonFiniteChangeFlagsTheSubjectAndKeepsTheRest) {
  const auto& c = named("subnormal_baseline_noisy_ties");
  const VisitTable t = parse_visit_table(c["csv"].get<std::string>(), "r.csv");
  EXPECT_EQ(*t.rows[4].values[0], 1e-310);
  for (const auto& tr : c["tests"]) {
    SCOPED_TRACE("digits_rank " + std::to_string(tr["digits_rank"].get<int>()));
    const EndpointResult r = run_case(c, tr["digits_rank"].get<int>());
    check_against_r(c, r, tr);
    for (const auto& rec : r.changes) {
      if (rec.subject_id != "S3" || rec.visit != "day28") continue;
      EXPECT_FALSE(rec.included);
      EXPECT_FALSE(rec.rel_change.has_value());
      EXPECT_NE(std::find(rec.flags.begin(), rec.flags.end(), "rel_change_not_finite"), rec.flags.end());
    }
    bool named_s3 = false;
    for (const auto& w : r.warnings) named_s3 = named_s3 || w.find("subject 'S3'") != std::string::npos;
    EXPECT_TRUE(named_s3);
    const std::string changes = changes_csv(r);
    EXPECT_EQ(changes.find("inf"), std::string::npos) << changes;
  }
  ASSERT_EQ(c["excluded"].size(), 1u);
  EXPECT_EQ(c["excluded"][0], "S3");
}

// The two conventions give R's two answers (here W 10 vs 9.5 and different P).
TEST(EndpointR, TieConventionIsChosenAndRecorded) {
  const auto& c = named("subnormal_baseline_noisy_ties");
  const EndpointResult r10 = run_case(c, EndpointOptions::kDefaultDigitsRank);
  const EndpointResult rinf = run_case(c, 0);
  EXPECT_EQ(EndpointOptions{}.wilcoxon.digits_rank, 10);
  EXPECT_NE(r10.find("lesion_pct_change", "day28", "mITT")->test->w,
            rinf.find("lesion_pct_change", "day28", "mITT")->test->w);
  EXPECT_NE(comparison_csv(r10).find(",10,"), std::string::npos);
  EXPECT_NE(comparison_csv(rinf).find(",Inf,"), std::string::npos);
  EXPECT_NE(table2_markdown(r10).find("digits.rank = 10"), std::string::npos);
  EXPECT_NE(table2_markdown(rinf).find("R's default wilcox.test(x, y, conf.int = TRUE)"),
            std::string::npos);
  EXPECT_EQ(parse_digits_rank("inf"), 0);
  EXPECT_EQ(parse_digits_rank("Inf"), 0);
  EXPECT_EQ(parse_digits_rank("10"), 10);
  EXPECT_THROW(parse_digits_rank("0"), Error);
  EXPECT_THROW(parse_digits_rank("ten"), Error);
}

// Two changes near the top of the double range: R's median and quartiles, never inf.
TEST(EndpointR, HugeChangesHaveFiniteMediansAsInR) {
  const auto& c = named("two_huge_changes");
  for (const auto& tr : c["tests"]) {
    const EndpointResult r = run_case(c, tr["digits_rank"].get<int>());
    check_against_r(c, r, tr);
    const ComparisonRow* row = r.find("mass_g_abs_change", "day28", kPopulationMITT);
    EXPECT_EQ(*row->a.median, 1.25e308);
    // Table 2 shows the tiny arms' own level: 80% here, not "95% CI".
    EXPECT_NE(table2_markdown(r).find("; 80.0% CI)"), std::string::npos) << table2_markdown(r);
  }
}

}  // namespace
}  // namespace lungvol::trial
