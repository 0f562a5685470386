#include "segmentation/lung_base.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace lungvol::seg {
namespace {

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto n = std::size_t(std::clamp(q, 0.0, 1.0) * double(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(n), v.end());
  return v[n];
}

}  // namespace

double base_rise_flag_mm(double slice_mm) { return std::max(10.0, 2.0 * slice_mm); }

LungBase lung_base(const LabelImage& labels, std::uint8_t label) {
  const Geometry& g = labels.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  LungBase out;
  if (nx == 0 || ny == 0 || nz == 0) return out;
  constexpr double kNone = std::numeric_limits<double>::infinity();
  std::vector<double> low(nx * ny, kNone), high(nx * ny, -kNone);
  std::vector<double> z(nz);
  for (std::size_t k = 0; k < nz; ++k) z[k] = g.to_physical(0, 0, double(k))[2];
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < ny; ++j) {
      const std::uint8_t* row = &labels.at(0, j, k);
      for (std::size_t i = 0; i < nx; ++i) {
        if (row[i] != label) continue;
        double& lo = low[j * nx + i];
        double& hi = high[j * nx + i];
        lo = std::min(lo, z[k]);
        hi = std::max(hi, z[k]);
      }
    }
  }
  std::vector<double> ys, bottoms;
  double zmin = kNone, zmax = -kNone;
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t i = 0; i < nx; ++i) {
      const double lo = low[j * nx + i];
      if (lo == kNone) continue;
      ys.push_back(g.to_physical(double(i), double(j), 0)[1]);
      bottoms.push_back(lo);
      zmin = std::min(zmin, lo);
      zmax = std::max(zmax, high[j * nx + i]);
    }
  }
  out.columns = ys.size();
  if (ys.size() < 16) return out;
  out.height_mm = zmax - zmin;
  // LPS: y grows towards the back.
  const double front = quantile(ys, 0.02), back = quantile(ys, 0.98);
  const double quarter = 0.25 * (back - front);
  std::vector<double> post, ant;
  for (std::size_t c = 0; c < ys.size(); ++c) {
    if (ys[c] >= back - quarter) post.push_back(bottoms[c]);
    if (ys[c] <= front + quarter) ant.push_back(bottoms[c]);
  }
  out.posterior_mm = quantile(post, 0.10);
  out.anterior_mm = quantile(ant, 0.10);
  out.lowest_mm = quantile(bottoms, 0.05);
  return out;
}

std::vector<std::int32_t> open_base_heights(const std::vector<std::int32_t>& h, std::size_t nx,
                                            std::size_t ny, std::size_t wi, std::size_t wj) {
  constexpr std::int32_t kNone = std::numeric_limits<std::int32_t>::max();
  // Separable: along i into tmp (every column, so that the pass along j sees the neighbours of
  // columns without lung too), then along j for the columns with lung.
  const auto pass = [&](const std::vector<std::int32_t>& in, bool erode) {
    std::vector<std::int32_t> tmp(in.size(), kNone), out(in.size(), kNone);
    const auto better = [erode](std::int32_t a, std::int32_t b) { return erode ? a < b : a > b; };
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        std::int32_t v = kNone;
        for (std::size_t a = i >= wi ? i - wi : 0; a <= std::min(nx - 1, i + wi); ++a) {
          const std::int32_t x = in[j * nx + a];
          if (x != kNone && (v == kNone || better(x, v))) v = x;
        }
        tmp[j * nx + i] = v;
      }
    }
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        if (h[j * nx + i] == kNone) continue;
        std::int32_t v = kNone;
        for (std::size_t b = j >= wj ? j - wj : 0; b <= std::min(ny - 1, j + wj); ++b) {
          const std::int32_t x = tmp[b * nx + i];
          if (x != kNone && (v == kNone || better(x, v))) v = x;
        }
        out[j * nx + i] = v;
      }
    }
    return out;
  };
  std::vector<std::int32_t> o = pass(pass(h, true), false);
  for (std::size_t n = 0; n < o.size(); ++n) o[n] = std::min(o[n], h[n]);
  return o;
}

}  // namespace lungvol::seg
