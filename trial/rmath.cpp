#include "trial/rmath.hpp"

#include <cmath>
#include <mutex>

#define MATHLIB_STANDALONE 1
#include <Rmath.h>
// Rmath.h maps qnorm / pnorm to qnorm5 / pnorm5 with macros: keep our own names ours.
#undef qnorm
#undef pnorm

namespace lungvol::trial::rmath {
namespace {
std::mutex& wilcox_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

double qnorm(double p, bool lower_tail) { return ::qnorm5(p, 0.0, 1.0, lower_tail ? 1 : 0, 0); }
double pnorm(double x, bool lower_tail) { return ::pnorm5(x, 0.0, 1.0, lower_tail ? 1 : 0, 0); }

double pwilcox(double q, double m, double n, bool lower_tail) {
  std::lock_guard<std::mutex> lock(wilcox_mutex());
  return ::pwilcox(q, m, n, lower_tail ? 1 : 0, 0);
}

double qwilcox(double p, double m, double n, bool lower_tail) {
  std::lock_guard<std::mutex> lock(wilcox_mutex());
  return ::qwilcox(p, m, n, lower_tail ? 1 : 0, 0);
}

double pbinom(double x, double n, double p, bool lower_tail) {
  return ::pbinom(x, n, p, lower_tail ? 1 : 0, 0);
}

double signif(double x, int digits) { return ::fprec(x, static_cast<double>(digits)); }

double mean(const std::vector<double>& x) {
  const auto n = static_cast<long double>(x.size());
  long double s = 0.0L;
  for (double v : x) s += v;
  if (std::isfinite(static_cast<double>(s))) {
    s /= n;
  } else {  // the sum overflowed (or is infinite): add smaller terms
    long double t = 0.0L;
    for (double v : x) t += v / n;
    s = t;
  }
  if (std::isfinite(static_cast<double>(s))) {
    long double t = 0.0L;
    for (double v : x) t += (v - s);
    s += t / n;
  }
  return static_cast<double>(s);
}

double median_sorted(const std::vector<double>& s) {
  const std::size_t n = s.size();
  if (n % 2 == 1) return s[n / 2];
  return mean({s[n / 2 - 1], s[n / 2]});
}

double quantile7_sorted(const std::vector<double>& x, double p) {
  const double n = static_cast<double>(x.size());
  const double index = 1 + std::max(n - 1, 0.0) * p;
  const double lo = std::floor(index);
  const double hi = std::ceil(index);
  const double qs = x[static_cast<std::size_t>(lo) - 1];
  const double xhi = x[static_cast<std::size_t>(hi) - 1];
  if (!(index > lo && xhi != qs)) return qs;
  const double h = index - lo;
  return (1 - h) * qs + h * xhi;
}

}  // namespace lungvol::trial::rmath
