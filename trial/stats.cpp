#include "trial/stats.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "core/error.hpp"
#include "trial/rmath.hpp"

namespace lungvol::trial {
namespace {

std::vector<double> rounded(std::vector<double> v, int digits) {
  if (digits > 0) {
    for (double& a : v) a = signif(a, digits);
  }
  return v;
}

// Sum over tie groups of (t^3 - t): the tie correction of the rank-sum variance (R:
// sum(NTIES^3 - NTIES) over table(r), in increasing order of the values).
double tie_term(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i;
    while (j < values.size() && values[j] == values[i]) ++j;
    const double t = static_cast<double>(j - i);
    sum += t * t * t - t;
    i = j;
  }
  return sum;
}

double sign(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }

// R's W(d) inside wilcox.test.default: the standardized rank-sum statistic of (x - d, y),
// with or without continuity correction. Computed operation for operation as R does,
// including 0 / 0 = NaN when every shifted value ties.
struct ShiftedStatistic {
  const std::vector<double>& x;
  const std::vector<double>& y;
  int digits_rank;
  bool correct;

  double operator()(double d) const {
    std::vector<double> pooled;
    pooled.reserve(x.size() + y.size());
    for (double v : x) pooled.push_back(v - d);
    pooled.insert(pooled.end(), y.begin(), y.end());
    pooled = rounded(std::move(pooled), digits_rank);
    const std::vector<double> r = average_ranks(pooled);
    const double nx = static_cast<double>(x.size());
    const double ny = static_cast<double>(y.size());
    const double rank_sum = std::accumulate(r.begin(), r.begin() + x.size(), 0.0);
    const double dz = rank_sum - nx * (nx + 1) / 2 - nx * ny / 2;
    const double corr = correct ? sign(dz) * 0.5 : 0.0;
    const double sigma = std::sqrt((nx * ny / 12) *
                                   ((nx + ny + 1) - tie_term(pooled) / ((nx + ny) * (nx + ny - 1))));
    return (dz - corr) / sigma;
  }
};

std::string fmt_num(double v) { return fmt::format("{:.17g}", v); }

}  // namespace

std::string WilcoxonResult::method() const {
  if (exact) return "exact";
  return continuity_correction ? "normal_cc" : "normal";
}

double signif(double x, int digits) { return rmath::signif(x, digits); }

double shifted_statistic(const std::vector<double>& x, const std::vector<double>& y, double d,
                         int digits_rank, bool correct) {
  return ShiftedStatistic{x, y, digits_rank, correct}(d);
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && values[order[j]] == values[order[i]]) ++j;
    // Positions i..j-1 (0-based) share the mean 1-based rank (i + 1 + j) / 2.
    const double r = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = r;
    i = j;
  }
  return ranks;
}

WilcoxonDistribution::WilcoxonDistribution(int m, int n) : m_(m), n_(n) {
  if (m < 1 || n < 1) throw Error(ExitCode::kUsage, "Wilcoxon distribution needs m, n >= 1");
}

double WilcoxonDistribution::cdf(double q) const { return rmath::pwilcox(q, m_, n_, true); }

double WilcoxonDistribution::upper(double q) const {
  return rmath::pwilcox(std::ceil(q - 1e-7) - 1, m_, n_, false);
}

int WilcoxonDistribution::quantile(double p) const {
  return static_cast<int>(rmath::qwilcox(p, m_, n_, true));
}

RootResult brent_root(const std::function<double(double)>& f_raw, double lo, double hi,
                      double f_lo, double f_hi, double tol, int max_iter) {
  // R's zeroin2 (src/library/stats/src/zeroin.c, R_zeroin2) called from uniroot(): the same
  // arithmetic in the same order, so the iterates (and hence the point returned for a step
  // function) are the ones R produces. R's fcn2 replaces a non-finite f by +-DBL_MAX.
  const auto f = [&](double v) {
    const double r = f_raw(v);
    if (std::isfinite(r)) return r;
    return r == -HUGE_VAL ? -DBL_MAX : DBL_MAX;
  };
  RootResult out;
  double a = lo, b = hi, fa = f_lo, fb = f_hi;
  double c = a, fc = fa;
  if (fa == 0.0) {
    out.root = a;
    return out;
  }
  if (fb == 0.0) {
    out.root = b;
    return out;
  }
  int maxit = max_iter + 1;
  while (maxit--) {
    ++out.iterations;
    const double prev_step = b - a;
    if (std::fabs(fc) < std::fabs(fb)) {  // keep b the best approximation
      a = b;
      b = c;
      c = a;
      fa = fb;
      fb = fc;
      fc = fa;
    }
    const double tol_act = 2 * DBL_EPSILON * std::fabs(b) + tol / 2;
    double new_step = (c - b) / 2;
    if (std::fabs(new_step) <= tol_act || fb == 0.0) {
      out.root = b;
      return out;
    }

    if (std::fabs(prev_step) >= tol_act && std::fabs(fa) > std::fabs(fb)) {
      double p, q;
      const double cb = c - b;
      if (a == c) {  // secant
        const double t1 = fb / fa;
        p = cb * t1;
        q = 1.0 - t1;
      } else {  // inverse quadratic interpolation
        const double qa = fa / fc, t1 = fb / fc, t2 = fb / fa;
        p = t2 * (cb * qa * (qa - t1) - (b - a) * (t1 - 1.0));
        q = (qa - 1.0) * (t1 - 1.0) * (t2 - 1.0);
      }
      if (p > 0) {
        q = -q;
      } else {
        p = -p;
      }
      if (p < (0.75 * cb * q - std::fabs(tol_act * q) / 2) && p < std::fabs(prev_step * q / 2)) {
        new_step = p / q;
      }
    }
    if (std::fabs(new_step) < tol_act) new_step = new_step > 0 ? tol_act : -tol_act;
    a = b;
    fa = fb;
    b += new_step;
    fb = f(b);
    if ((fb > 0 && fc > 0) || (fb < 0 && fc < 0)) {
      c = a;
      fc = fa;
    }
  }
  out.root = b;
  out.converged = false;
  return out;
}

WilcoxonResult wilcoxon_rank_sum(const std::vector<double>& x, const std::vector<double>& y,
                                 const WilcoxonOptions& options) {
  if (x.empty() || y.empty()) {
    throw Error(ExitCode::kUsage, "Wilcoxon rank-sum test needs at least one value per group");
  }
  for (const auto* v : {&x, &y}) {
    for (double a : *v) {
      if (!std::isfinite(a)) throw Error(ExitCode::kUsage, "Wilcoxon rank-sum test: non-finite value");
    }
  }
  WilcoxonResult res;
  res.n_x = x.size();
  res.n_y = y.size();
  res.continuity_correction = options.continuity_correction;
  res.digits_rank = options.digits_rank;
  const double nx = static_cast<double>(x.size());
  const double ny = static_cast<double>(y.size());
  const double alpha = 1 - options.conf_level;  // as R: alpha <- 1 - conf.level

  std::vector<double> pooled = x;
  pooled.insert(pooled.end(), y.begin(), y.end());
  pooled = rounded(std::move(pooled), options.digits_rank);
  const std::vector<double> r = average_ranks(pooled);
  res.w = std::accumulate(r.begin(), r.begin() + x.size(), 0.0) - nx * (nx + 1) / 2;
  {
    std::vector<double> s = pooled;
    std::sort(s.begin(), s.end());
    res.ties = std::adjacent_find(s.begin(), s.end()) != s.end();
  }
  const bool exact = options.allow_exact && nx < 50 && ny < 50;

  if (exact && !res.ties) {
    res.exact = true;
    // R: p <- if (W > nx ny / 2) pwilcox(W - 1, nx, ny, lower = FALSE) else pwilcox(W, nx, ny)
    const double p = res.w > nx * ny / 2 ? rmath::pwilcox(res.w - 1, nx, ny, false)
                                         : rmath::pwilcox(res.w, nx, ny, true);
    res.p_value = std::min(2 * p, 1.0);

    std::vector<double> diffs;
    diffs.reserve(x.size() * y.size());
    for (double b : y) {  // R: sort(outer(x, y, "-")); the order before sorting is irrelevant
      for (double a : x) diffs.push_back(a - b);
    }
    std::sort(diffs.begin(), diffs.end());
    double qu = rmath::qwilcox(alpha / 2, nx, ny, true);
    if (qu == 0) qu = 1;
    const double ql = nx * ny - qu;
    const double achieved_alpha = 2 * rmath::pwilcox(std::trunc(qu) - 1, nx, ny, true);
    // R: cint <- c(diffs[qu], diffs[ql + 1]) with 1-based indexing.
    res.ci_low = diffs[static_cast<std::size_t>(qu) - 1];
    res.ci_high = diffs[static_cast<std::size_t>(ql)];
    res.achieved_conf_level = options.conf_level;
    if (achieved_alpha - alpha > alpha / 2) {
      // R 4.2.2, two-sample: warning("Requested conf.level not achievable");
      // conf.level <- 1 - achieved.alpha (unrounded; the one-sample branch rounds).
      res.achieved_conf_level = 1 - achieved_alpha;
      res.flags.push_back("conf_level_not_achievable");
      res.warnings.push_back(fmt::format(
          "requested conf.level {} not achievable with {} and {} values: the exact interval "
          "has confidence {}",
          options.conf_level, res.n_x, res.n_y, fmt_num(res.achieved_conf_level)));
    }
    res.estimate = rmath::median_sorted(diffs);
    return res;
  }

  // Normal approximation with tie-corrected variance and continuity correction.
  const double z0 = res.w - nx * ny / 2;
  const double sigma =
      std::sqrt((nx * ny / 12) * ((nx + ny + 1) - tie_term(pooled) / ((nx + ny) * (nx + ny - 1))));
  const double corr = options.continuity_correction ? sign(z0) * 0.5 : 0.0;
  res.achieved_conf_level = options.conf_level;
  if (sigma == 0) return res;  // every value tied: R gives NaN and cannot form a CI
  const double z = (z0 - corr) / sigma;
  res.p_value = 2 * std::min(rmath::pnorm(z, true), rmath::pnorm(z, false));

  const double mumin = *std::min_element(x.begin(), x.end()) - *std::max_element(y.begin(), y.end());
  const double mumax = *std::max_element(x.begin(), x.end()) - *std::min_element(y.begin(), y.end());
  const ShiftedStatistic wc{x, y, options.digits_rank, options.continuity_correction};
  const double w_min = wc(mumin);
  const double w_max = wc(mumax);
  auto not_converged = [&](const char* flag, const char* what, const RootResult& rr) {
    res.flags.push_back(flag);
    res.warnings.push_back(fmt::format(
        "{}: the root finder did not converge in {} iterations (R's uniroot: \"_NOT_ converged\"; "
        "its last step {} is not reported)",
        what, options.max_iter, fmt_num(rr.root)));
  };
  // R's root(zq): the data range's end when the statistic there is already past zq.
  auto root = [&](double zq, const char* flag, const char* what) -> std::optional<double> {
    const double f_lo = w_min - zq;
    const double f_hi = w_max - zq;
    if (std::isnan(f_lo) || std::isnan(f_hi)) return std::nullopt;
    if (f_lo <= 0) return mumin;
    if (f_hi >= 0) return mumax;
    const RootResult rr = brent_root([&](double d) { return wc(d) - zq; }, mumin, mumax, f_lo,
                                     f_hi, options.tol_root, options.max_iter);
    if (!rr.converged) {
      not_converged(flag, what, rr);
      return std::nullopt;
    }
    return rr.root;
  };
  if (std::isnan(w_min) || std::isnan(w_max)) {
    // All values tie once shifted (both groups constant): R warns "cannot compute confidence
    // interval when all observations are tied" and then stops with an error.
    res.flags.push_back("ci_not_computable");
    res.warnings.push_back(
        "cannot compute a confidence interval or estimate: all observations are tied once "
        "shifted (each group holds one value)");
    return res;
  }
  // R: l <- root(qnorm(alpha/2, lower.tail = FALSE)); u <- root(qnorm(alpha/2))
  res.ci_low = root(rmath::qnorm(alpha / 2, false), "ci_low_not_converged", "lower CI bound");
  res.ci_high = root(rmath::qnorm(alpha / 2, true), "ci_high_not_converged", "upper CI bound");

  // R's estimate: uniroot(W, mumin, mumax) with the uncorrected statistic (correct <- FALSE).
  const ShiftedStatistic w0{x, y, options.digits_rank, false};
  const double e_lo = w0(mumin), e_hi = w0(mumax);
  if (!std::isnan(e_lo) && !std::isnan(e_hi) && sign(e_lo) * sign(e_hi) <= 0) {
    const RootResult rr =
        brent_root(w0, mumin, mumax, e_lo, e_hi, options.tol_root, options.max_iter);
    if (rr.converged) {
      res.estimate = rr.root;
    } else {
      not_converged("estimate_not_converged", "Hodges-Lehmann estimate", rr);
    }
  }
  if (res.ci_low && res.ci_high && *res.ci_low > *res.ci_high) {
    // Cannot happen for converged roots of a decreasing statistic; never report it.
    res.flags.push_back("ci_inverted");
    res.warnings.push_back(fmt::format("confidence interval [{}, {}] is inverted; not reported",
                                       fmt_num(*res.ci_low), fmt_num(*res.ci_high)));
    res.ci_low.reset();
    res.ci_high.reset();
  }
  return res;
}

MedianCI median_ci(std::vector<double> values, double conf_level) {
  if (values.empty()) throw Error(ExitCode::kUsage, "median of an empty group");
  std::sort(values.begin(), values.end());
  MedianCI out;
  out.median = rmath::median_sorted(values);
  const std::size_t n = values.size();
  // Coverage of [x_(k), x_(n+1-k)] is P(k <= B <= n - k) = 1 - 2 P(B <= k - 1).
  auto coverage = [&](std::size_t k) {
    return 1 - 2 * rmath::pbinom(static_cast<double>(k - 1), static_cast<double>(n), 0.5, true);
  };
  std::size_t k = 0;
  while (k + 1 <= (n + 1) / 2 && coverage(k + 1) >= conf_level) ++k;
  if (k == 0) return out;
  out.k = k;
  out.low = values[k - 1];
  out.high = values[n - k];
  out.coverage = coverage(k);
  return out;
}

double quantile_type7(std::vector<double> values, double p) {
  if (values.empty()) throw Error(ExitCode::kUsage, "quantile of an empty group");
  std::sort(values.begin(), values.end());
  return rmath::quantile7_sorted(values, p);
}

GroupSummary summarize_group(const std::vector<double>& values, double conf_level) {
  GroupSummary s;
  s.n = values.size();
  if (values.empty()) return s;
  const MedianCI m = median_ci(values, conf_level);
  s.median = m.median;
  s.median_ci_low = m.low;
  s.median_ci_high = m.high;
  s.median_ci_coverage = m.coverage;
  s.q1 = quantile_type7(values, 0.25);
  s.q3 = quantile_type7(values, 0.75);
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  return s;
}

}  // namespace lungvol::trial
