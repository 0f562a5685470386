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
  // ranking so that values equal in exact arithmetic tie; 0 = no rounding (R's default Inf).
  int digits_rank = 0;
  double tol_root = 1e-4;  // R's tol.root for the normal-branch CI and estimate
  int max_iter = 1000;     // uniroot's maxiter (R's wilcox.test leaves it at 1000)
};

struct WilcoxonResult {
  double w = 0;                      // sum of ranks of x minus n_x (n_x + 1) / 2
  std::optional<double> p_value;     // two-sided; empty when undefined (all values tied)
  std::optional<double> estimate;    // Hodges-Lehmann shift x - y
  std::optional<double> ci_low;
  std::optional<double> ci_high;
  // R's attr(conf.int, "conf.level"): conf_level, or 1 - achieved alpha (R 4.2.2's two-sample
  // exact branch, unrounded) when the exact CI cannot reach the requested level (tiny groups).
  double achieved_conf_level = 0;
  bool exact = false;                // "exact" or "normal_cc" (normal with continuity corr.)
  bool ties = false;
  bool continuity_correction = true;
  int digits_rank = 0;               // the convention used (0 = none, R's default)
  std::size_t n_x = 0, n_y = 0;
  // Machine-readable conditions, each also explained in `warnings`:
  //   conf_level_not_achievable   exact CI below the requested level (R warns the same)
  //   ci_low_not_converged, ci_high_not_converged, estimate_not_converged
  //                               uniroot stopped after max_iter steps (R: "_NOT_ converged in
  //                               1000 iterations" and returns its last step); the value is
  //                               withheld, never reported as a bound
  //   ci_not_computable           all values tied once shifted (R stops with an error)
  std::vector<std::string> flags;
  std::vector<std::string> warnings;
  std::string method() const;        // "exact", "normal_cc" or "normal"
};

// Throws Error(kUsage) when x or y is empty or holds a non-finite value.
WilcoxonResult wilcoxon_rank_sum(const std::vector<double>& x, const std::vector<double>& y,
                                 const WilcoxonOptions& options = {});

// --- building blocks (exposed for tests and for reuse) -----------------------------------

// Average ranks (1-based) of `values`, ties sharing the mean of their positions (R's rank()).
std::vector<double> average_ranks(const std::vector<double>& values);
// R's signif(x, digits) (libRmath's fprec, the function R calls).
double signif(double x, int digits);

// Exact null distribution of the Mann-Whitney W for group sizes m, n, as R's pwilcox / qwilcox
// (libRmath): P(W <= q), P(W >= q) and qwilcox(p, m, n).
class WilcoxonDistribution {
 public:
  WilcoxonDistribution(int m, int n);
  double cdf(double q) const;    // P(W <= floor(q)) = pwilcox(q, m, n)
  double upper(double q) const;  // P(W >= ceil(q)) = pwilcox(ceil(q) - 1, m, n, lower = FALSE)
  int quantile(double p) const;  // qwilcox(p, m, n)
  int max_w() const { return m_ * n_; }

 private:
  int m_, n_;
};

// R's W(d) inside wilcox.test.default (two-sample): the standardized rank-sum statistic of
// (x - d, y), ranks after signif(., digits_rank) (0 = none), with or without continuity
// correction. The normal-branch CI ends and estimate are its roots (minus +-z).
double shifted_statistic(const std::vector<double>& x, const std::vector<double>& y, double d,
                         int digits_rank, bool correct);

// Brent's root finder exactly as R's uniroot() runs it (C zeroin2: same iterates, same
// stopping rule tol, at most max_iter + 1 steps, a non-finite f(b) taken as +-DBL_MAX), given
// f(lo) and f(hi) of opposite sign. converged = false is R's "_NOT_ converged" warning; root
// is then the last iterate, as R returns it.
struct RootResult {
  double root = 0;
  bool converged = true;
  int iterations = 0;
};
RootResult brent_root(const std::function<double(double)>& f, double lo, double hi, double f_lo,
                      double f_hi, double tol, int max_iter = 1000);

// Distribution-free confidence interval for a median from order statistics (Hahn & Meeker
// 1991): the narrowest symmetric interval [x_(k), x_(n+1-k)] whose binomial(n, 1/2) coverage
// P(k <= B <= n-k) is >= conf_level. Empty when even [min, max] does not reach it.
struct MedianCI {
  double median = 0;  // R's median(): overflow-safe (the median of 1e308 and 1.5e308 is finite)
  std::optional<double> low, high, coverage;
  std::size_t k = 0;  // 1-based order statistic of the lower end (0 = no interval)
};
MedianCI median_ci(std::vector<double> values, double conf_level = 0.95);

// Sample quantile, R's default quantile(type = 7): index = 1 + (n - 1) p, h = index -
// floor(index), (1 - h) x_(lo) + h x_(hi) (x_(lo) itself when h = 0 or the two are equal).
// Throws on empty input.
double quantile_type7(std::vector<double> values, double p);

struct GroupSummary {
  std::size_t n = 0;
  std::optional<double> median, median_ci_low, median_ci_high, median_ci_coverage, q1, q3,
      min, max;
};
GroupSummary summarize_group(const std::vector<double>& values, double conf_level = 0.95);

}  // namespace lungvol::trial
