#include "trial/stats.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <numeric>

#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>

#include "core/error.hpp"

namespace lungvol::trial {
namespace {

double pnorm_lower(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double qnorm_lower(double p) {
  return boost::math::quantile(boost::math::normal_distribution<double>(0.0, 1.0), p);
}

double median_sorted(const std::vector<double>& s) {
  const std::size_t n = s.size();
  return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

std::vector<double> rounded(std::vector<double> v, int digits) {
  if (digits > 0) {
    for (double& a : v) a = signif(a, digits);
  }
  return v;
}

// Sum over tie groups of (t^3 - t): the tie correction of the rank-sum variance.
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

// The standardized rank-sum statistic of (x - d, y), minus zq: R's wdiff() inside
// wilcox.test.default. Decreasing step function of the shift d.
struct ShiftedStatistic {
  const std::vector<double>& x;
  const std::vector<double>& y;
  int digits_rank;
  bool correct;

  double operator()(double d, double zq) const {
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
    if (sigma == 0) return std::nan("");
    return (dz - corr) / sigma - zq;
  }
};

}  // namespace

std::string WilcoxonResult::method() const {
  if (exact) return "exact";
  return continuity_correction ? "normal_cc" : "normal";
}

double signif(double x, int digits) {
  // Same construction as R's fprec(): scale so the kept digits are an integer, round to
  // nearest even, scale back (scaling by an exact power of ten >= 1 where possible).
  if (x == 0 || !std::isfinite(x) || digits > 22) return x;
  if (digits < 1) digits = 1;
  const double sgn = x < 0 ? -1.0 : 1.0;
  const double ax = std::fabs(x);
  const double l10 = std::log10(ax);
  const int e10 = digits - 1 - static_cast<int>(std::floor(l10));
  if (std::fabs(l10) >= DBL_MAX_10_EXP - 2) return x;
  if (e10 > 0) {
    double p10 = 1.0;
    int e = e10;
    if (e > DBL_MAX_10_EXP) {
      p10 = std::pow(10.0, e - DBL_MAX_10_EXP);
      e = DBL_MAX_10_EXP;
    }
    const double pow10 = std::pow(10.0, e);
    return sgn * (std::nearbyint((ax * pow10) * p10) / pow10) / p10;
  }
  const double pow10 = std::pow(10.0, -e10);
  return sgn * (std::nearbyint(ax / pow10) * pow10);
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
  // count[j][w]: subsets of size j of the ranks seen so far with W-offset w (rank sum minus
  // j (j + 1) / 2). Only additions of positive counts, so no cancellation.
  const int total = m + n;
  const int wmax = m * n;
  std::vector<std::vector<double>> count(m + 1, std::vector<double>(wmax + 1, 0.0));
  count[0][0] = 1;
  for (int r = 1; r <= total; ++r) {
    // Adding rank r as the j-th chosen element shifts the offset by r - j.
    for (int j = std::min(r, m); j >= 1; --j) {
      const int shift = r - j;
      if (shift > n) continue;
      auto& dst = count[j];
      const auto& src = count[j - 1];
      for (int w = wmax; w >= shift; --w) dst[w] += src[w - shift];
    }
  }
  const double all = std::accumulate(count[m].begin(), count[m].end(), 0.0);
  prob_.resize(wmax + 1);
  for (int w = 0; w <= wmax; ++w) prob_[w] = count[m][w] / all;
}

double WilcoxonDistribution::cdf(double q) const {
  const double f = std::floor(q + 1e-7);
  if (f < 0) return 0;
  if (f >= max_w()) return 1;
  double p = 0;
  for (int w = 0; w <= static_cast<int>(f); ++w) p += prob_[w];
  return std::min(1.0, p);
}

double WilcoxonDistribution::upper(double q) const {
  const double c = std::ceil(q - 1e-7);
  if (c <= 0) return 1;
  if (c > max_w()) return 0;
  double p = 0;
  for (int w = max_w(); w >= static_cast<int>(c); --w) p += prob_[w];
  return std::min(1.0, p);
}

int WilcoxonDistribution::quantile(double p) const {
  // R's qwilcox for p <= 0.5: the first q whose cumulative probability reaches p, with a
  // 10 * DBL_EPSILON slack so that p equal to a cumulative probability hits it.
  const double target = p - 10 * DBL_EPSILON;
  double cum = 0;
  for (int q = 0; q <= max_w(); ++q) {
    cum += prob_[q];
    if (cum >= target) return q;
  }
  return max_w();
}

double brent_root(const std::function<double(double)>& f, double lo, double hi, double f_lo,
                  double f_hi, double tol, int max_iter) {
  // Brent (1973) zero finder, arranged as in R's zeroin2 so that the iterates (and hence
  // the point returned for a step function) are the ones R's uniroot() produces.
  double a = lo, b = hi, fa = f_lo, fb = f_hi;
  double c = a, fc = fa;
  if (fa == 0.0) return a;
  if (fb == 0.0) return b;
  for (int iter = 0; iter <= max_iter; ++iter) {
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
    if (std::fabs(new_step) <= tol_act || fb == 0.0) return b;

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
  return b;
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
  const double nx = static_cast<double>(x.size());
  const double ny = static_cast<double>(y.size());
  const double alpha = 1 - options.conf_level;

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
    const int m = static_cast<int>(nx), n = static_cast<int>(ny);
    const WilcoxonDistribution dist(m, n);
    const double p = res.w > nx * ny / 2 ? dist.upper(res.w) : dist.cdf(res.w);
    res.p_value = std::min(2 * p, 1.0);

    std::vector<double> diffs;
    diffs.reserve(x.size() * y.size());
    for (double a : x) {
      for (double b : y) diffs.push_back(a - b);
    }
    std::sort(diffs.begin(), diffs.end());
    int qu = dist.quantile(alpha / 2);
    if (qu == 0) qu = 1;
    const int ql = m * n - qu;
    // R: cint <- c(diffs[qu], diffs[ql + 1]) with 1-based indexing.
    res.ci_low = diffs[static_cast<std::size_t>(qu - 1)];
    res.ci_high = diffs[static_cast<std::size_t>(ql)];
    const double achieved_alpha = 2 * dist.cdf(qu - 1);
    // R reports the level actually reached when the requested one is out of reach.
    // (as R's attr(cint, "conf.level"): 1 - signif(achieved.alpha, 2)).
    res.achieved_conf_level =
        achieved_alpha - alpha > alpha / 2 ? 1 - signif(achieved_alpha, 2) : options.conf_level;
    res.estimate = median_sorted(diffs);
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
  res.p_value = std::min(1.0, 2 * std::min(pnorm_lower(z), pnorm_lower(-z)));

  const double mumin = *std::min_element(x.begin(), x.end()) - *std::max_element(y.begin(), y.end());
  const double mumax = *std::max_element(x.begin(), x.end()) - *std::min_element(y.begin(), y.end());
  ShiftedStatistic wdiff{x, y, options.digits_rank, options.continuity_correction};
  auto root = [&](double zq) -> std::optional<double> {
    const double f_lo = wdiff(mumin, zq);
    const double f_hi = wdiff(mumax, zq);
    if (std::isnan(f_lo) || std::isnan(f_hi)) return std::nullopt;
    if (f_lo <= 0) return mumin;  // extreme cases: the interval ends at the data range
    if (f_hi >= 0) return mumax;
    return brent_root([&](double d) { return wdiff(d, zq); }, mumin, mumax, f_lo, f_hi,
                      options.tol_root);
  };
  res.ci_low = root(qnorm_lower(1 - alpha / 2));
  res.ci_high = root(qnorm_lower(alpha / 2));
  // R's estimate: the zero of the uncorrected shifted statistic.
  ShiftedStatistic w0{x, y, options.digits_rank, false};
  const double e_lo = w0(mumin, 0), e_hi = w0(mumax, 0);
  if (!std::isnan(e_lo) && !std::isnan(e_hi)) {
    if (e_lo * e_hi > 0) {
      // R's uniroot() would stop; happens only for degenerate data (e.g. one distinct
      // difference), where the shift is that common difference.
      res.estimate = std::fabs(e_lo) < std::fabs(e_hi) ? mumin : mumax;
    } else {
      res.estimate = brent_root([&](double d) { return w0(d, 0); }, mumin, mumax, e_lo, e_hi,
                                options.tol_root);
    }
  }
  return res;
}

MedianCI median_ci(std::vector<double> values, double conf_level) {
  if (values.empty()) throw Error(ExitCode::kUsage, "median of an empty group");
  std::sort(values.begin(), values.end());
  MedianCI out;
  out.median = median_sorted(values);
  const std::size_t n = values.size();
  const boost::math::binomial_distribution<double> b(static_cast<double>(n), 0.5);
  // Coverage of [x_(k), x_(n+1-k)] is P(k <= B <= n - k) = 1 - 2 P(B <= k - 1).
  auto coverage = [&](std::size_t k) { return 1 - 2 * boost::math::cdf(b, static_cast<double>(k - 1)); };
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
  const double h = (static_cast<double>(values.size()) - 1) * p;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
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
