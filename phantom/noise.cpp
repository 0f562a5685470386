#include "phantom/noise.hpp"

#include <cmath>

namespace lungvol::phantom {
namespace {

// Quantile of the standard normal for 0 < p <= 0.5: the Abramowitz-Stegun 26.2.23 rational
// start (error < 4.5e-4), polished by Newton steps on erfc to double precision.
double lower_quantile(double p) {
  const double t = std::sqrt(-2.0 * std::log(p));
  double x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                       (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t));
  for (int it = 0; it < 3; ++it) {
    const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
    x -= (cdf - p) / pdf;
  }
  return x;
}

}  // namespace

const std::array<float, 65536>& normal_quantiles() {
  static const std::array<float, 65536> table = [] {
    std::array<float, 65536> q{};
    for (std::size_t m = 0; m < 32768; ++m) {
      const auto x = static_cast<float>(lower_quantile((static_cast<double>(m) + 0.5) / 65536.0));
      q[m] = x;
      q[65535 - m] = -x;  // exactly symmetric: the noise has mean 0
    }
    return q;
  }();
  return table;
}

}  // namespace lungvol::phantom
