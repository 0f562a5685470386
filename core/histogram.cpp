#include "core/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace lungvol {

std::uint64_t HuHistogram::total() const {
  std::uint64_t t = 0;
  for (auto c : counts) t += c;
  return t;
}

std::uint64_t HuHistogram::count_in(double lo, double hi) const {
  // Integer HU h is inside when lo <= h < hi, i.e. ceil(lo) <= h <= ceil(hi) - 1.
  const double first = std::max<double>(kMinHu, std::ceil(lo));
  const double last = std::min<double>(kMaxHu, std::ceil(hi) - 1);
  std::uint64_t t = 0;
  for (int h = int(first); h <= int(last); ++h) t += counts[h - kMinHu];
  return t;
}

}  // namespace lungvol
