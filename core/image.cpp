#include "core/image.hpp"

#include <cmath>

namespace lungvol {

std::array<double, 3> Geometry::to_physical(double i, double j, double k) const {
  const double v[3] = {i * spacing[0], j * spacing[1], k * spacing[2]};
  std::array<double, 3> p{};
  for (int r = 0; r < 3; ++r) {
    p[r] = origin[r] + direction[3 * r] * v[0] + direction[3 * r + 1] * v[1] +
           direction[3 * r + 2] * v[2];
  }
  return p;
}

bool Geometry::same_grid(const Geometry& o, double tol_mm) const {
  if (size != o.size) return false;
  for (int a = 0; a < 3; ++a) {
    if (std::abs(spacing[a] - o.spacing[a]) > tol_mm) return false;
    if (std::abs(origin[a] - o.origin[a]) > tol_mm) return false;
  }
  for (int n = 0; n < 9; ++n) {
    if (std::abs(direction[n] - o.direction[n]) > 1e-4) return false;
  }
  return true;
}

}  // namespace lungvol
