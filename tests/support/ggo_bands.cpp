#include "tests/support/ggo_bands.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/labels.hpp"

namespace lungvol::test {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

struct Wave {
  std::array<double, 3> k;  // rad/mm
  double phase;
};

std::array<double, 3> random_unit(std::mt19937_64& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  std::array<double, 3> v{n(rng), n(rng), n(rng)};
  const double len = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  for (double& x : v) x /= len;
  return v;
}

}  // namespace

const char* band_kind_name(BandKind kind) {
  switch (kind) {
    case BandKind::kGroundGlass: return "ground-glass band";
    case BandKind::kSolid: return "solid band";
    case BandKind::kCrazyPaving: return "crazy paving";
  }
  return "?";
}

const char* facing_name(Facing f) { return f == Facing::kPosterior ? "posterior" : "lateral"; }

BandTruth insert_pleural_band(CtImage& ct, const LabelImage& lungs, const PleuralBand& band,
                              const LesionParams& bands, std::uint64_t seed) {
  if (!ct.geom.same_grid(lungs.geom)) throw std::invalid_argument("ct and lungs differ in grid");
  const Geometry& g = ct.geom;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const double span = band.hi_hu - band.lo_hu;
  const double base_hu = band.lo_hu + span * (0.25 + 0.5 * uni(rng));
  std::vector<Wave> waves(8);
  for (auto& w : waves) {
    const auto d = random_unit(rng);
    const double wavelength = 4.0 + 8.0 * uni(rng);
    for (int a = 0; a < 3; ++a) w.k[a] = 2 * M_PI / wavelength * d[a];
    w.phase = 2 * M_PI * uni(rng);
  }
  const double wave_norm = band.texture_hu * std::sqrt(2.0 / double(waves.size()));
  // Crazy paving: three orthogonal families of septa in a random orientation.
  std::array<std::array<double, 3>, 3> normal{};
  std::array<double, 3> septa_phase{}, septa_spacing{};
  double septum_hu = 0;
  if (band.kind == BandKind::kCrazyPaving) {
    normal[0] = random_unit(rng);
    auto t = random_unit(rng);
    double dot = t[0] * normal[0][0] + t[1] * normal[0][1] + t[2] * normal[0][2];
    for (int a = 0; a < 3; ++a) t[a] -= dot * normal[0][a];
    const double len = std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
    for (int a = 0; a < 3; ++a) normal[1][a] = t[a] / len;
    normal[2] = {normal[0][1] * normal[1][2] - normal[0][2] * normal[1][1],
                 normal[0][2] * normal[1][0] - normal[0][0] * normal[1][2],
                 normal[0][0] * normal[1][1] - normal[0][1] * normal[1][0]};
    for (int f = 0; f < 3; ++f) {
      septa_phase[f] = uni(rng);
      septa_spacing[f] = band.septa_spacing_mm * (0.85 + 0.3 * uni(rng));
    }
    septum_hu = band.septa_lo_hu + (band.septa_hi_hu - band.septa_lo_hu) * (0.25 + 0.5 * uni(rng));
  }
  std::normal_distribution<double> noise(0.0, band.noise_hu);

  // The patch's box, with room for the depth search.
  const double reach = band.thickness_mm + 2 * std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  std::array<std::size_t, 3> lo{}, hi{};
  std::array<std::ptrdiff_t, 3> win{};
  for (int a = 0; a < 3; ++a) {
    const double r = band.radius_mm / g.spacing[a];
    lo[a] = std::size_t(std::max(0.0, std::floor(band.anchor_index[a] - r)));
    hi[a] = std::size_t(std::min(double(g.size[a] - 1), std::ceil(band.anchor_index[a] + r)));
    win[a] = std::ptrdiff_t(std::ceil(reach / g.spacing[a]));
  }
  // Squared distance to the nearest non-lung voxel centre, exact within `reach` (separable
  // minimum over windows along i, then j, then k), over the box grown by the window.
  std::array<std::ptrdiff_t, 3> elo{}, ehi{};
  for (int a = 0; a < 3; ++a) {
    elo[a] = std::max<std::ptrdiff_t>(0, std::ptrdiff_t(lo[a]) - win[a]);
    ehi[a] = std::min<std::ptrdiff_t>(std::ptrdiff_t(g.size[a]) - 1, std::ptrdiff_t(hi[a]) + win[a]);
  }
  const std::size_t ex = std::size_t(ehi[0] - elo[0] + 1), ey = std::size_t(ehi[1] - elo[1] + 1),
                    ez = std::size_t(ehi[2] - elo[2] + 1);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> d(ex * ey * ez), tmp(d.size());
  auto at = [&](std::size_t i, std::size_t j, std::size_t k) { return (k * ey + j) * ex + i; };
  for (std::size_t k = 0; k < ez; ++k)
    for (std::size_t j = 0; j < ey; ++j)
      for (std::size_t i = 0; i < ex; ++i)
        d[at(i, j, k)] = is_lung(lungs.at(std::size_t(elo[0]) + i, std::size_t(elo[1]) + j,
                                          std::size_t(elo[2]) + k))
                             ? inf
                             : 0.0f;
  const std::array<std::size_t, 3> ext{ex, ey, ez};
  for (int axis = 0; axis < 3; ++axis) {
    tmp = d;
    const double h = g.spacing[std::size_t(axis)];
    for (std::size_t k = 0; k < ez; ++k)
      for (std::size_t j = 0; j < ey; ++j)
        for (std::size_t i = 0; i < ex; ++i) {
          const std::array<std::size_t, 3> p{i, j, k};
          float best = tmp[at(i, j, k)];
          for (std::ptrdiff_t o = -win[axis]; o <= win[axis]; ++o) {
            const std::ptrdiff_t q = std::ptrdiff_t(p[std::size_t(axis)]) + o;
            if (o == 0 || q < 0 || q >= std::ptrdiff_t(ext[std::size_t(axis)])) continue;
            std::array<std::size_t, 3> r = p;
            r[std::size_t(axis)] = std::size_t(q);
            const float c = float(h * h * double(o) * double(o));
            best = std::min(best, tmp[at(r[0], r[1], r[2])] + c);
          }
          d[at(i, j, k)] = best;
        }
  }

  const double h_in = std::min(g.spacing[0], g.spacing[1]);
  const auto anchor_mm = g.to_physical(band.anchor_index[0], band.anchor_index[1], band.anchor_index[2]);
  BandTruth truth;
  for (std::size_t k = lo[2]; k <= hi[2]; ++k)
    for (std::size_t j = lo[1]; j <= hi[1]; ++j)
      for (std::size_t i = lo[0]; i <= hi[0]; ++i) {
        const std::size_t n = g.index(i, j, k);
        if (!is_lung(lungs[n])) continue;
        const auto x = g.to_physical(double(i), double(j), double(k));
        const double r = std::sqrt((x[0] - anchor_mm[0]) * (x[0] - anchor_mm[0]) +
                                   (x[1] - anchor_mm[1]) * (x[1] - anchor_mm[1]) +
                                   (x[2] - anchor_mm[2]) * (x[2] - anchor_mm[2]));
        const double w_lat = std::clamp((band.radius_mm - r) / std::max(band.margin_mm, 1e-6), 0.0, 1.0);
        if (w_lat <= 0) continue;
        const double dist = std::sqrt(double(d[at(i - std::size_t(elo[0]), j - std::size_t(elo[1]),
                                                  k - std::size_t(elo[2]))]));
        const double depth = dist - 0.5 * h_in;
        const double w_depth = std::clamp((band.thickness_mm - depth) / h_in + 0.5, 0.0, 1.0);
        if (w_depth <= 0) continue;
        ++truth.lung_in_reach;
        double tex = 0;
        for (const auto& w : waves) tex += std::cos(w.k[0] * x[0] + w.k[1] * x[1] + w.k[2] * x[2] + w.phase);
        double hu = base_hu + wave_norm * tex + noise(rng);
        hu = std::clamp(hu, band.lo_hu, band.hi_hu);
        if (band.kind == BandKind::kCrazyPaving) {
          double ws = 0;
          for (int f = 0; f < 3; ++f) {
            const auto& nf = normal[std::size_t(f)];
            const double u = (x[0] * nf[0] + x[1] * nf[1] + x[2] * nf[2]) / septa_spacing[std::size_t(f)] +
                             septa_phase[std::size_t(f)];
            const double frac = u - std::floor(u);
            const double dplane = septa_spacing[std::size_t(f)] * std::min(frac, 1.0 - frac);
            const double extent = std::abs(nf[0]) * g.spacing[0] + std::abs(nf[1]) * g.spacing[1] +
                                  std::abs(nf[2]) * g.spacing[2];
            ws = std::max(ws, std::clamp((0.5 * band.septa_thickness_mm - dplane) / extent + 0.5, 0.0, 1.0));
          }
          hu = hu + ws * (septum_hu + noise(rng) - hu);
          hu = std::clamp(hu, band.lo_hu, band.septa_hi_hu);
        }
        const double orig = ct[n];
        const double mixed = orig + w_lat * w_depth * (hu - orig);
        const auto v = std::int16_t(std::lround(std::max(orig, mixed)));
        if (v <= ct[n]) continue;
        ct[n] = v;
        truth.voxels.push_back(n);
        if (bands.ground_glass.contains(v)) ++truth.ggo_voxels;
        if (bands.solid.contains(v)) ++truth.solid_voxels;
      }
  std::sort(truth.voxels.begin(), truth.voxels.end());
  truth.ggo_ml = double(truth.ggo_voxels) * g.voxel_volume_ml();
  truth.solid_ml = double(truth.solid_voxels) * g.voxel_volume_ml();
  return truth;
}

std::array<double, 3> pick_pleural_anchor(const LabelImage& lungs, std::uint8_t label,
                                          Facing facing, std::mt19937_64& rng,
                                          const std::vector<std::array<double, 3>>& taken,
                                          double clear_mm) {
  const Geometry& g = lungs.geom;
  // The index axis and step that point most nearly along the wanted LPS direction.
  std::array<double, 3> want{0, 0, 0};
  if (facing == Facing::kPosterior) want = {0, 1, 0};
  else want = {label == labels::kRightLung ? -1.0 : 1.0, 0, 0};
  int axis = 0;
  double best = 0;
  for (int a = 0; a < 3; ++a) {
    double dot = 0;
    for (int r = 0; r < 3; ++r) dot += g.direction[std::size_t(r * 3 + a)] * want[std::size_t(r)];
    if (std::abs(dot) > std::abs(best)) {
      best = dot;
      axis = a;
    }
  }
  const std::ptrdiff_t step = best > 0 ? 1 : -1;
  // Height range of the lung along k.
  std::size_t kmin = g.size[2], kmax = 0;
  for (std::size_t n = 0; n < lungs.size(); ++n) {
    if (lungs[n] != label) continue;
    const std::size_t k = n / g.slice_voxels();
    kmin = std::min(kmin, k);
    kmax = std::max(kmax, k);
  }
  if (kmin > kmax) throw std::runtime_error("pick_pleural_anchor: no voxel of that lung");
  const std::size_t k_lo = kmin + (kmax - kmin) * 3 / 10, k_hi = kmin + (kmax - kmin) * 7 / 10;
  std::vector<std::array<double, 3>> candidates;
  for (std::size_t k = k_lo; k <= k_hi; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        if (lungs.at(i, j, k) != label) continue;
        std::array<std::ptrdiff_t, 3> q{std::ptrdiff_t(i), std::ptrdiff_t(j), std::ptrdiff_t(k)};
        q[std::size_t(axis)] += step;
        if (q[std::size_t(axis)] < 0 || q[std::size_t(axis)] >= std::ptrdiff_t(g.size[std::size_t(axis)])) continue;
        if (lungs.at(std::size_t(q[0]), std::size_t(q[1]), std::size_t(q[2])) != labels::kBackground) continue;
        // The outermost such voxel of its row along the axis: the costal pleura, not a fissure
        // or the edge of a hole.
        bool outermost = true;
        for (std::ptrdiff_t s = 2; s < 40 && outermost; ++s) {
          std::array<std::ptrdiff_t, 3> r{std::ptrdiff_t(i), std::ptrdiff_t(j), std::ptrdiff_t(k)};
          r[std::size_t(axis)] += step * s;
          if (r[std::size_t(axis)] < 0 || r[std::size_t(axis)] >= std::ptrdiff_t(g.size[std::size_t(axis)])) break;
          if (lungs.at(std::size_t(r[0]), std::size_t(r[1]), std::size_t(r[2])) != labels::kBackground) outermost = false;
        }
        if (!outermost) continue;
        const auto x = g.to_physical(double(i), double(j), double(k));
        bool clear = true;
        for (const auto& t : taken) {
          const auto y = g.to_physical(t[0], t[1], t[2]);
          const double dd = std::sqrt((x[0] - y[0]) * (x[0] - y[0]) + (x[1] - y[1]) * (x[1] - y[1]) +
                                      (x[2] - y[2]) * (x[2] - y[2]));
          clear = clear && dd >= clear_mm;
        }
        if (clear) candidates.push_back({double(i), double(j), double(k)});
      }
  if (candidates.empty()) throw std::runtime_error("pick_pleural_anchor: no free pleural voxel");
  std::uniform_int_distribution<std::size_t> pick(0, candidates.size() - 1);
  return candidates[pick(rng)];
}

}  // namespace lungvol::test
