#pragma once
// Two-sample location statistics as the trial's statistical analysis plan uses them:
// Wilcoxon rank-sum test with the Hodges-Lehmann shift estimate and its confidence interval,
// reproducing R's stats::wilcox.test(x, y, conf.int = TRUE) (two-sided) number for number,
// plus distribution-free per-group medians with order-statistic confidence intervals.
// Semantics and references: docs/statistics.md.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lungvol::trial {

struct WilcoxonOptions {
  // R's exact = NULL: exact distribution when both groups have < 50 values and there are
  // no ties. false = normal approximation throughout (R's exact = FALSE).
  bool allow_exact = true;
  bool continuity_correction = true;  // R's correct = TRUE
  double conf_level = 0.95;
  // R's digits.rank: values are rounded to this many significant digits (signif) before
  // ranking so that values equal in exact arithmetic tie; 0 = no rounding (R's Inf).
  int digits_rank = 0;
  double tol_root = 1e-4;  // R's tol.root for the normal-branch CI and estimate
};

struct WilcoxonResult {
  double w = 0;                      // sum of ranks of x minus n_x (n_x + 1) / 2
  std::optional<double> p_value;     // two-sided; empty when undefined (all values tied)
  std::optional<double> estimate;    // Hodges-Lehmann shift x - y
  std::optional<double> ci_low;
  std::optional<double> ci_high;
  // R's attr(cint, "conf.level"): conf_level, or 1 - signif(achieved alpha, 2) when the
  // exact CI cannot reach the requested level (tiny groups).
  double achieved_conf_level = 0;
  bool exact = false;                // "exact" or "normal_cc" (normal with continuity corr.)
  bool ties = false;
  bool continuity_correction = true;
  std::size_t n_x = 0, n_y = 0;
  std::string method() const;        // "exact", "normal_cc" or "normal"
};

// Throws Error(kUsage) when x or y is empty or holds a non-finite value.
WilcoxonResult wilcoxon_rank_sum(const std::vector<double>& x, const std::vector<double>& y,
                                 const WilcoxonOptions& options = {});

// --- building blocks (exposed for tests and for reuse) -----------------------------------

// Average ranks (1-based) of `values`, ties sharing the mean of their positions (R's rank()).
std::vector<double> average_ranks(const std::vector<double>& values);
// R's signif(x, digits).
double signif(double x, int digits);

// Exact null distribution of the Mann-Whitney W for group sizes m, n: P(W <= q), P(W >= q)
// and R's qwilcox(p, m, n) (smallest q with P(W <= q) >= p, with R's 10*eps slack).
class WilcoxonDistribution {
 public:
  WilcoxonDistribution(int m, int n);
  double cdf(double q) const;    // P(W <= floor(q))
  double upper(double q) const;  // P(W >= ceil(q))
  int quantile(double p) const;  // R's qwilcox(p, m, n) for p <= 0.5
  int max_w() const { return m_ * n_; }

 private:
  int m_, n_;
  std::vector<double> prob_;  // P(W = w), w = 0..m n
};

// Brent's root finder with R's uniroot / zeroin2 stopping rule (tol, maxit), given f(lo) and
// f(hi) of opposite sign. Returns the last iterate.
double brent_root(const std::function<double(double)>& f, double lo, double hi, double f_lo,
                  double f_hi, double tol, int max_iter = 1000);

// Distribution-free confidence interval for a median from order statistics (Hahn & Meeker
// 1991): the narrowest symmetric interval [x_(k), x_(n+1-k)] whose binomial(n, 1/2) coverage
// P(k <= B <= n-k) is >= conf_level. Empty when even [min, max] does not reach it.
struct MedianCI {
  double median = 0;
  std::optional<double> low, high, coverage;
  std::size_t k = 0;  // 1-based order statistic of the lower end (0 = no interval)
};
MedianCI median_ci(std::vector<double> values, double conf_level = 0.95);

// Sample quantile, R's default type 7 (linear interpolation between order statistics at
// h = (n - 1) p). Throws on empty input.
double quantile_type7(std::vector<double> values, double p);

struct GroupSummary {
  std::size_t n = 0;
  std::optional<double> median, median_ci_low, median_ci_high, median_ci_coverage, q1, q3,
      min, max;
};
GroupSummary summarize_group(const std::vector<double>& values, double conf_level = 0.95);

}  // namespace lungvol::trial
