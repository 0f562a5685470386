#include "volumetry/coverage.hpp"

#include <fmt/format.h>

#include "core/labels.hpp"

namespace lungvol::vol {

const std::array<const char*, 6>& volume_face_names() {
  static const std::array<const char*, 6> names = {"right",     "left",     "anterior",
                                                   "posterior", "inferior", "superior"};
  return names;
}

double CoverageSide::boundary_mm2_total() const {
  double s = 0;
  for (double v : boundary_mm2) s += v;
  return s;
}

double CoverageSide::boundary_fraction() const {
  return surface_mm2 > 0 ? boundary_mm2_total() / surface_mm2 : 0.0;
}

std::vector<std::string> CoverageSide::cut_by() const {
  std::vector<std::string> out;
  for (std::size_t f = 0; f < 6; ++f) {
    if (boundary_mm2[f] > 0) out.push_back(volume_face_names()[f]);
  }
  return out;
}

std::string Coverage::warning() const {
  const auto faces = lungs.cut_by();
  if (faces.empty()) return {};
  std::string list;
  for (std::size_t q = 0; q < faces.size(); ++q) list += (q ? ", " : "") + faces[q];
  return fmt::format("coverage: the lungs are cut by the {} boundary of the volume ({:.1f} % of the "
                     "lung surface lies on it): volumes and proportions cover part of the lungs only",
                     list, 100.0 * lungs.boundary_fraction());
}

Coverage measure_coverage(const LabelImage& lungs) {
  Coverage c;
  const Geometry& g = lungs.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  if (lungs.empty()) return c;
  // Face areas of a voxel, by the axis the face is normal to.
  const double area[3] = {g.spacing[1] * g.spacing[2], g.spacing[0] * g.spacing[2],
                          g.spacing[0] * g.spacing[1]};
  auto is_lung = [](std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; };
  // Integer face counts per thread (exact, order-independent), converted to mm2 at the end.
  // [side 0 right lung, 1 left lung][axis][0 interior face, 1 low boundary, 2 high boundary]
  using Counts = std::array<std::array<std::array<unsigned long long, 3>, 3>, 2>;
  Counts total{};
#pragma omp parallel
  {
    Counts mine{};
#pragma omp for schedule(static)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
      const std::size_t k = std::size_t(kk);
      for (std::size_t j = 0; j < ny; ++j) {
        for (std::size_t i = 0; i < nx; ++i) {
          const std::uint8_t v = lungs.at(i, j, k);
          if (!is_lung(v)) continue;
          auto& side = mine[v == labels::kRightLung ? 0 : 1];
          const std::size_t idx[3] = {i, j, k};
          const std::size_t n[3] = {nx, ny, nz};
          for (int a = 0; a < 3; ++a) {
            // Low neighbour.
            if (idx[a] == 0) {
              ++side[a][1];
            } else {
              std::size_t q[3] = {i, j, k};
              --q[a];
              if (!is_lung(lungs.at(q[0], q[1], q[2]))) ++side[a][0];
            }
            if (idx[a] + 1 == n[a]) {
              ++side[a][2];
            } else {
              std::size_t q[3] = {i, j, k};
              ++q[a];
              if (!is_lung(lungs.at(q[0], q[1], q[2]))) ++side[a][0];
            }
          }
        }
      }
    }
#pragma omp critical(lungvol_coverage)
    for (int s = 0; s < 2; ++s)
      for (int a = 0; a < 3; ++a)
        for (int f = 0; f < 3; ++f) total[s][a][f] += mine[s][a][f];
  }
  CoverageSide* sides[2] = {&c.right, &c.left};
  for (int s = 0; s < 2; ++s) {
    CoverageSide& out = *sides[s];
    for (int a = 0; a < 3; ++a) {
      const auto& t = total[s][a];
      out.surface_mm2 += double(t[0] + t[1] + t[2]) * area[a];
      // Canonical axes: x runs right -> left, y anterior -> posterior, z inferior -> superior.
      out.boundary_mm2[std::size_t(2 * a)] = double(t[1]) * area[a];
      out.boundary_mm2[std::size_t(2 * a + 1)] = double(t[2]) * area[a];
    }
  }
  c.lungs.surface_mm2 = c.right.surface_mm2 + c.left.surface_mm2;
  for (std::size_t f = 0; f < 6; ++f) {
    c.lungs.boundary_mm2[f] = c.right.boundary_mm2[f] + c.left.boundary_mm2[f];
  }
  return c;
}

}  // namespace lungvol::vol
