#include "registration/synthetic.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/labels.hpp"

namespace lungvol::registration {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kWavelengthMm = 160.0;

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A standard normal deviate from (seed, n): Box-Muller on two hashed uniforms.
double normal(std::uint64_t seed, std::uint64_t n) {
  const std::uint64_t a = splitmix(seed * 0x632be59bd9b4e019ULL ^ n);
  const std::uint64_t b = splitmix(a ^ 0xd1b54a32d192ed03ULL);
  const double u1 = (double(a >> 11) + 0.5) / 9007199254740992.0;
  const double u2 = (double(b >> 11) + 0.5) / 9007199254740992.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
}

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

}  // namespace

nlohmann::json BreathingParams::to_json() const {
  return {{"diaphragm_mm", diaphragm_mm},
          {"ap_expansion", ap_expansion},
          {"lateral_expansion", lateral_expansion},
          {"wobble_mm", wobble_mm},
          {"wobble_wavelength_mm", kWavelengthMm},
          {"translation_mm", translation_mm},
          {"rotation_deg", rotation_deg},
          {"mass_preserving", mass_preserving},
          {"noise_hu", noise_hu},
          {"seed", seed}};
}

BreathingMotion::BreathingMotion(const LabelImage& lungs, const BreathingParams& p) : p_(p) {
  const IndexBox b = label_box(lungs, 0.0, {labels::kRightLung, labels::kLeftLung});
  if (b.empty()) throw Error(ExitCode::kProcessing, "breathing motion: no lung voxel");
  double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
  for (int corner = 0; corner < 8; ++corner) {
    const auto q = lungs.geom.to_physical((corner & 1) ? double(b.hi[0] - 1) : double(b.lo[0]),
                                          (corner & 2) ? double(b.hi[1] - 1) : double(b.lo[1]),
                                          (corner & 4) ? double(b.hi[2] - 1) : double(b.lo[2]));
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], q[a]);
      hi[a] = std::max(hi[a], q[a]);
    }
  }
  z_lo_ = lo[2];
  z_hi_ = hi[2];
  for (int a = 0; a < 3; ++a) centre_[a] = 0.5 * (lo[a] + hi[a]);
  if (p.diaphragm_mm >= 0.5 * (z_hi_ - z_lo_)) {
    throw Error(ExitCode::kUsage, "breathing motion: diaphragm displacement too large for the lungs");
  }
}

Vec3 BreathingMotion::to_original(const Vec3& y) const {
  // Undo the rigid offset: y = R (u - c) + c + t.
  const double th = p_.rotation_deg * kPi / 180.0;
  const double dx = y[0] - centre_[0] - p_.translation_mm[0];
  const double dy = y[1] - centre_[1] - p_.translation_mm[1];
  Vec3 u{centre_[0] + std::cos(th) * dx + std::sin(th) * dy,
         centre_[1] - std::sin(th) * dx + std::cos(th) * dy, y[2] - p_.translation_mm[2]};
  // Breathing: the new lungs span [z_lo - D, z_hi]; t = depth below the apex, 0..1 over them.
  const double D = p_.diaphragm_mm;
  const double t = std::max(0.0, (z_hi_ - u[2]) / (z_hi_ - z_lo_ + D));
  const double w = t <= 1 ? t * t : 2 * t - 1;  // C1 continuation below the lungs
  const double tc = std::min(t, 1.0);
  const double eap = p_.ap_expansion * (0.4 + 0.6 * tc);
  const double elat = p_.lateral_expansion * (0.4 + 0.6 * tc);
  Vec3 x{centre_[0] + (u[0] - centre_[0]) / (1 + elat),
         centre_[1] + (u[1] - centre_[1]) / (1 + eap), u[2] + D * w};
  if (p_.wobble_mm != 0) {
    const double k = 2 * kPi / kWavelengthMm;
    x[0] += p_.wobble_mm * std::sin(k * (u[1] + u[2]));
    x[1] += p_.wobble_mm * std::sin(k * (u[0] + 0.5 * u[2]));
    x[2] += p_.wobble_mm * std::sin(k * (u[0] + u[1]));
  }
  return x;
}

double BreathingMotion::jacobian_to_original(const Vec3& y) const {
  constexpr double h = 0.25;
  double j[9];
  for (int c = 0; c < 3; ++c) {
    Vec3 a = y, b = y;
    a[c] += h;
    b[c] -= h;
    const Vec3 pa = to_original(a), pb = to_original(b);
    for (int r = 0; r < 3; ++r) j[3 * r + c] = (pa[r] - pb[r]) / (2 * h);
  }
  return j[0] * (j[4] * j[8] - j[5] * j[7]) - j[1] * (j[3] * j[8] - j[5] * j[6]) +
         j[2] * (j[3] * j[7] - j[4] * j[6]);
}

Vec3 BreathingMotion::to_new(const Vec3& x) const {
  Vec3 y = x;
  for (int it = 0; it < 50; ++it) {
    const Vec3 f = to_original(y);
    const Vec3 r{f[0] - x[0], f[1] - x[1], f[2] - x[2]};
    if (std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]) < 1e-7) break;
    constexpr double h = 0.25;
    double j[9];
    for (int c = 0; c < 3; ++c) {
      Vec3 a = y, b = y;
      a[c] += h;
      b[c] -= h;
      const Vec3 pa = to_original(a), pb = to_original(b);
      for (int q = 0; q < 3; ++q) j[3 * q + c] = (pa[q] - pb[q]) / (2 * h);
    }
    Affine jm;
    for (int n = 0; n < 9; ++n) jm.m[n] = j[n];
    const Affine ji = jm.inverse();
    const Vec3 step = ji.apply(r);
    for (int c = 0; c < 3; ++c) y[c] -= step[c];
  }
  return y;
}

RenderedScan render_breathing(const CtImage& ct, const LabelImage& lungs, const LabelImage& lesions,
                              const BreathingMotion& motion) {
  const Geometry& g = ct.geom;
  const GridMap gm(g);
  const bool have_lesions = !lesions.empty();
  RenderedScan out;
  out.ct = CtImage(g, CtImage::Uninitialised{});
  out.lungs = LabelImage(g, LabelImage::Uninitialised{});
  out.lesions = have_lesions ? LabelImage(g, LabelImage::Uninitialised{}) : LabelImage{};
  const auto& s = g.size;
  const BreathingParams& p = motion.params();
  const long nz = static_cast<long>(s[2]);
#pragma omp parallel for schedule(dynamic, 1)
  for (long k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < s[1]; ++j) {
      for (std::size_t i = 0; i < s[0]; ++i) {
        const Vec3 y = gm.to_point({double(i), double(j), double(k)});
        const Vec3 x = motion.to_original(y);
        const Vec3 c = gm.to_index(x);
        // Beyond the original scan: its nearest border voxel.
        Vec3 cc;
        for (int a = 0; a < 3; ++a) cc[a] = std::clamp(c[a], 0.0, double(s[a] - 1));
        double hu = sample_linear(ct, gm, gm.to_point(cc), -1024);
        const std::size_t nn = g.index(std::size_t(std::lround(cc[0])), std::size_t(std::lround(cc[1])),
                                       std::size_t(std::lround(cc[2])));
        const std::size_t n = g.index(i, j, std::size_t(k));
        const std::uint8_t lab = lungs.data[nn];
        out.lungs.data[n] = lab;
        if (have_lesions) out.lesions.data[n] = lesions.data[nn];
        if (p.mass_preserving && is_lung(lab) && hu < -200) {
          hu = -1000 + (hu + 1000) * motion.jacobian_to_original(y);
        }
        if (p.noise_hu > 0) hu += p.noise_hu * normal(p.seed, n);
        out.ct.data[n] = static_cast<std::int16_t>(std::lround(std::clamp(hu, -1024.0, 3071.0)));
      }
    }
  }
  return out;
}

}  // namespace lungvol::registration
