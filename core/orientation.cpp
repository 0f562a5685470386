#include "core/orientation.hpp"

#include <cstdint>

#include <fmt/format.h>

namespace lungvol {
namespace {

constexpr double kRadToDeg = 57.29577951308232;

// Patient direction letter of +axis c (LPS) or -axis c.
char letter(int c, bool negative) {
  static const char pos[3] = {'L', 'P', 'S'};
  static const char neg[3] = {'R', 'A', 'I'};
  return negative ? neg[c] : pos[c];
}

}  // namespace

std::string Orientation::describe() const {
  if (axis_aligned) {
    return fmt::format("{} (index axes {}, {}, {})", name, axes[0], axes[1], axes[2]);
  }
  return fmt::format("oblique (index axes {:.1f} degrees from the patient axes; direction of "
                     "index axes i, j, k: {})",
                     worst_angle_deg, axes);
}

Orientation orientation_of(const Geometry& g) {
  Orientation o;
  const auto& d = g.direction;  // column a is the LPS direction of index axis a
  std::array<int, 3> patient_axis{0, 0, 0};
  std::array<bool, 3> negative{false, false, false};
  bool distinct = true;
  double worst_sin = 0;
  std::string oblique_axes;
  for (int a = 0; a < 3; ++a) {
    const double v[3] = {d[0 * 3 + a], d[1 * 3 + a], d[2 * 3 + a]};
    const double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    int best = 0;
    for (int c = 1; c < 3; ++c) {
      if (std::abs(v[c]) > std::abs(v[best])) best = c;
    }
    patient_axis[a] = best;
    negative[a] = v[best] < 0;
    const double cos_a = norm > 0 ? std::abs(v[best]) / norm : 0.0;
    const double sin_a = std::sqrt(std::max(0.0, 1.0 - cos_a * cos_a));
    worst_sin = std::max(worst_sin, sin_a);
    for (int b = 0; b < a; ++b) distinct = distinct && patient_axis[b] != best;
    oblique_axes += fmt::format("{}({:.4g}, {:.4g}, {:.4g})", a ? ", " : "", v[0], v[1], v[2]);
  }
  o.worst_angle_deg = std::asin(std::min(1.0, worst_sin)) * kRadToDeg;
  o.axis_aligned = distinct && worst_sin <= kTiltTolerance;
  if (!o.axis_aligned) {
    o.name = "oblique";
    o.axes = oblique_axes;
    return o;
  }
  for (int a = 0; a < 3; ++a) {
    o.axes.push_back(letter(patient_axis[a], negative[a]));
    o.map.source_axis[static_cast<std::size_t>(patient_axis[a])] = a;
    o.map.flipped[static_cast<std::size_t>(patient_axis[a])] = negative[a];
  }
  static const char* names[3] = {"sagittal", "coronal", "axial"};
  o.name = names[patient_axis[2]];
  return o;
}

Geometry canonical_geometry(const Geometry& g, const AxisMap& m) {
  Geometry out;
  std::array<double, 3> corner{0, 0, 0};  // original index of the new voxel (0, 0, 0)
  for (int c = 0; c < 3; ++c) {
    const int a = m.source_axis[static_cast<std::size_t>(c)];
    const bool flip = m.flipped[static_cast<std::size_t>(c)];
    out.size[static_cast<std::size_t>(c)] = g.size[static_cast<std::size_t>(a)];
    out.spacing[static_cast<std::size_t>(c)] = g.spacing[static_cast<std::size_t>(a)];
    for (int r = 0; r < 3; ++r) {
      const double v = g.direction[static_cast<std::size_t>(r * 3 + a)];
      out.direction[static_cast<std::size_t>(r * 3 + c)] = flip ? -v : v;
    }
    corner[static_cast<std::size_t>(a)] =
        flip ? static_cast<double>(g.size[static_cast<std::size_t>(a)]) - 1.0 : 0.0;
  }
  out.origin = g.to_physical(corner[0], corner[1], corner[2]);
  return out;
}

namespace detail {

IndexMap index_map(const Geometry& original, const AxisMap& m) {
  IndexMap im;
  const std::array<std::ptrdiff_t, 3> stride{
      1, static_cast<std::ptrdiff_t>(original.size[0]),
      static_cast<std::ptrdiff_t>(original.size[0] * original.size[1])};
  for (int c = 0; c < 3; ++c) {
    const auto a = static_cast<std::size_t>(m.source_axis[static_cast<std::size_t>(c)]);
    const std::size_t n = original.size[a];
    im.canonical_size[static_cast<std::size_t>(c)] = n;
    if (m.flipped[static_cast<std::size_t>(c)]) {
      im.base += static_cast<std::ptrdiff_t>(n - 1) * stride[a];
      im.step[static_cast<std::size_t>(c)] = -stride[a];
    } else {
      im.step[static_cast<std::size_t>(c)] = stride[a];
    }
  }
  return im;
}

template <class T>
void permute_voxels(const T* src, T* dst, const IndexMap& im, bool to_canonical) {
  const auto nx = im.canonical_size[0], ny = im.canonical_size[1], nz = im.canonical_size[2];
  const bool large = nx * ny * nz >= (std::size_t(1) << 18);  // threads pay off from here
#pragma omp parallel for schedule(static) if (large)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < ny; ++j) {
      std::ptrdiff_t o = im.base + im.step[1] * std::ptrdiff_t(j) + im.step[2] * kk;
      std::size_t n = (k * ny + j) * nx;
      for (std::size_t i = 0; i < nx; ++i, ++n, o += im.step[0]) {
        if (to_canonical) {
          dst[n] = src[o];
        } else {
          dst[o] = src[n];
        }
      }
    }
  }
}

template void permute_voxels<std::int16_t>(const std::int16_t*, std::int16_t*, const IndexMap&, bool);
template void permute_voxels<std::uint8_t>(const std::uint8_t*, std::uint8_t*, const IndexMap&, bool);
template void permute_voxels<float>(const float*, float*, const IndexMap&, bool);

}  // namespace detail
}  // namespace lungvol
