#include "tests/support/lesion_families.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "core/labels.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::test {
namespace {

using Vec = std::array<double, 3>;

constexpr double kPi = 3.14159265358979323846;
// Reference densities for the partial-volume model at the wall (HU).
constexpr double kWallHu = 40;
constexpr double kAirHu = -950;
// Non-lung voxels next to a lesion darker than this hold air: pleural partial volume.
constexpr double kPartialVolumeMaxHu = -150;
// Same-side lesions keep their boxes this far apart (mm); the suite measures each lesion in
// its changed voxels grown by 3 mm, so these regions never meet.
constexpr double kSeparationMm = 8;

Vec add(const Vec& a, const Vec& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
Vec sub(const Vec& a, const Vec& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec mul(const Vec& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
double dot(const Vec& a, const Vec& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec& a) { return std::sqrt(dot(a, a)); }
Vec unit(const Vec& a) {
  const double n = norm(a);
  return n > 0 ? mul(a, 1.0 / n) : Vec{0, 0, 1};
}
Vec cross(const Vec& a, const Vec& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
// Two unit vectors perpendicular to n and to each other.
std::pair<Vec, Vec> perpendiculars(const Vec& n) {
  const Vec helper = std::abs(n[2]) < 0.9 ? Vec{0, 0, 1} : Vec{1, 0, 0};
  const Vec a = unit(cross(n, helper));
  return {a, cross(n, a)};
}

// Physical (LPS mm) to continuous index, for an orthonormal direction matrix.
Vec to_index(const Geometry& g, const Vec& p) {
  const Vec d = sub(p, g.origin);
  Vec out{};
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int r = 0; r < 3; ++r) s += g.direction[3 * r + c] * d[r];
    out[c] = s / g.spacing[c];
  }
  return out;
}
Vec physical(const Geometry& g, std::size_t n) {
  const std::size_t i = n % g.size[0], j = (n / g.size[0]) % g.size[1], k = n / g.slice_voxels();
  return g.to_physical(double(i), double(j), double(k));
}

struct IndexBox {
  std::array<std::size_t, 3> lo{0, 0, 0}, hi{0, 0, 0};  // inclusive
  bool empty = true;
  std::size_t voxels() const {
    return empty ? 0 : (hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1);
  }
};
// Index box of a physical box [lo, hi] (all 8 corners), clipped to the image.
IndexBox index_box(const Geometry& g, const Vec& lo, const Vec& hi) {
  Vec imin{1e30, 1e30, 1e30}, imax{-1e30, -1e30, -1e30};
  for (int c = 0; c < 8; ++c) {
    const Vec p{(c & 1) ? hi[0] : lo[0], (c & 2) ? hi[1] : lo[1], (c & 4) ? hi[2] : lo[2]};
    const Vec x = to_index(g, p);
    for (int a = 0; a < 3; ++a) {
      imin[a] = std::min(imin[a], x[a]);
      imax[a] = std::max(imax[a], x[a]);
    }
  }
  IndexBox b;
  for (int a = 0; a < 3; ++a) {
    const double top = double(g.size[a] - 1);
    if (imax[a] < 0 || imin[a] > top) return b;
    b.lo[a] = std::size_t(std::max(0.0, std::floor(imin[a])));
    b.hi[a] = std::size_t(std::min(top, std::ceil(imax[a])));
  }
  b.empty = false;
  return b;
}

struct PhysBox {
  Vec lo{0, 0, 0}, hi{0, 0, 0};
  PhysBox grown(double mm) const {
    return {sub(lo, Vec{mm, mm, mm}), add(hi, Vec{mm, mm, mm})};
  }
  bool intersects(const PhysBox& o) const {
    for (int a = 0; a < 3; ++a) {
      if (hi[a] < o.lo[a] || o.hi[a] < lo[a]) return false;
    }
    return true;
  }
};

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

// The smooth random texture: four plane waves of wavelength 12-30 mm, amplitudes summing to
// `amplitude` HU, so the texture stays within +-amplitude.
struct Texture {
  std::array<Vec, 4> k{};
  std::array<double, 4> phase{}, amp{};
  Texture(std::mt19937_64& rng, double amplitude) {
    double total = 0;
    for (int m = 0; m < 4; ++m) {
      const double z = uniform(rng, -1, 1), t = uniform(rng, 0, 2 * kPi);
      const double s = std::sqrt(1 - z * z);
      const double wavelength = uniform(rng, 12, 30);
      k[m] = mul(Vec{s * std::cos(t), s * std::sin(t), z}, 2 * kPi / wavelength);
      phase[m] = uniform(rng, 0, 2 * kPi);
      amp[m] = uniform(rng, 0.5, 1.0);
      total += amp[m];
    }
    for (auto& a : amp) a *= amplitude / total;
  }
  double operator()(const Vec& p) const {
    double v = 0;
    for (int m = 0; m < 4; ++m) v += amp[m] * std::cos(dot(k[m], p) + phase[m]);
    return v;
  }
};

// An air bronchogram: a tree of tubes.
struct Segment {
  Vec a, b;
  double radius;
};
std::vector<Segment> bronchial_tree(std::mt19937_64& rng, const Vec& root, const Vec& direction,
                                    double radius, double length, int generations) {
  std::vector<Segment> out;
  struct Tip {
    Vec p, d;
    double r, l;
  };
  std::vector<Tip> tips{{root, unit(direction), radius, length}};
  for (int g = 0; g < generations; ++g) {
    std::vector<Tip> next;
    for (const Tip& t : tips) {
      const Vec end = add(t.p, mul(t.d, t.l));
      out.push_back({t.p, end, t.r});
      const auto [e1, e2] = perpendiculars(t.d);
      const double turn = uniform(rng, 0, 2 * kPi);
      const Vec axis = add(mul(e1, std::cos(turn)), mul(e2, std::sin(turn)));
      for (const double side : {1.0, -1.0}) {
        const double angle = uniform(rng, 25, 40) * kPi / 180;
        const Vec d = unit(add(mul(t.d, std::cos(angle)), mul(axis, side * std::sin(angle))));
        next.push_back({end, d, std::max(0.8, t.r * 0.72), t.l * 0.8});
      }
    }
    tips = std::move(next);
  }
  return out;
}
double distance_to_segment(const Vec& p, const Segment& s) {
  const Vec ab = sub(s.b, s.a);
  const double t = std::clamp(dot(sub(p, s.a), ab) / std::max(1e-9, dot(ab, ab)), 0.0, 1.0);
  return norm(sub(p, add(s.a, mul(ab, t))));
}

// The nominal shape of a lesion: a signed distance (mm, negative inside) and a box.
struct Shape {
  enum class Kind { kEllipsoid, kBand, kHalfSpace } kind = Kind::kEllipsoid;
  Vec centre{0, 0, 0};
  std::array<Vec, 3> axes{};  // unit
  Vec semi{10, 10, 10};
  // Band: lung within `thickness` of the pleura, inside the patch ellipse (semi-axes
  // patch_a in the axial plane, patch_b along z) around `centre`.
  double thickness = 0, patch_a = 0, patch_b = 0;
  // Half space: n . p < offset.
  Vec normal{0, 0, 1};
  double offset = 0;
  PhysBox box;

  double ellipsoid_sdf(const Vec& p) const {
    const Vec d = sub(p, centre);
    double q = 0;
    for (int a = 0; a < 3; ++a) q += std::pow(dot(d, axes[a]) / semi[a], 2);
    q = std::sqrt(q);
    const double r = norm(d);
    return q > 1e-9 ? r * (1 - 1 / q) : -std::min({semi[0], semi[1], semi[2]});
  }
  double patch_sdf(const Vec& p) const {
    const Vec d = sub(p, centre);
    const double q = std::sqrt((d[0] * d[0] + d[1] * d[1]) / (patch_a * patch_a) +
                               d[2] * d[2] / (patch_b * patch_b));
    const double r = norm(d);
    return q > 1e-9 ? r * (1 - 1 / q) : -std::min(patch_a, patch_b);
  }
  // depth_mm: distance below the pleural surface (lung voxels), 0 elsewhere.
  double sdf(const Vec& p, double depth_mm) const {
    switch (kind) {
      case Kind::kEllipsoid:
        return ellipsoid_sdf(p);
      case Kind::kBand:
        return std::max(depth_mm - thickness, patch_sdf(p));
      default:
        return dot(normal, p) - offset;
    }
  }
};

struct Candidate {
  Shape shape;
  Position position = Position::kLateral;
  std::uint8_t lung = 0;
  InsertedClass inserted = InsertedClass::kConsolidation;
  double base_hu = 0;
  double shape_ml = 0;
  double depth_fraction = 0;
  bool bronchogram = false;
};

double inside_lung_hu(InsertedClass c, std::mt19937_64& rng) {
  return c == InsertedClass::kConsolidation ? uniform(rng, 20, 40) : uniform(rng, -650, -350);
}

std::vector<Position> default_positions(Family f) {
  switch (f) {
    case Family::kRoundJuxtapleural:
      return {Position::kLateral,       Position::kAnterior, Position::kPosterior,
              Position::kParavertebral, Position::kApical,   Position::kDiaphragmatic};
    case Family::kBandConsolidation:
    case Family::kBandGroundGlass:
      return {Position::kPosterior, Position::kLateral};
    case Family::kLobar:
      return {Position::kLowerLobe};
    case Family::kParamediastinal:
      return {Position::kParacardiac, Position::kParamediastinal};
    default:
      return {Position::kHilar};
  }
}

struct Placer {
  const CtImage& ct;
  const LabelImage& lungs;
  const ScanAnatomy& anatomy;
  const FamilyOptions& opt;
  const Geometry& g;
  double voxel_ml;
  double noise_hu;
  double margin_extra;  // margin widening by the voxel size, mm

  Placer(const CtImage& c, const LabelImage& l, const ScanAnatomy& a, const FamilyOptions& o)
      : ct(c), lungs(l), anatomy(a), opt(o), g(c.geom), voxel_ml(c.geom.voxel_volume_ml()),
        noise_hu(o.noise_hu >= 0 ? o.noise_hu : a.noise_hu) {
    margin_extra = (g.spacing[0] + g.spacing[1] + g.spacing[2]) / 3.0;
  }

  std::vector<const SurfacePoint*> points(Position p, std::uint8_t lung) const {
    std::vector<const SurfacePoint*> out;
    for (const auto& s : anatomy.surface) {
      if (s.position == p && (lung == 0 || s.lung == lung)) out.push_back(&s);
    }
    return out;
  }

  // A candidate shape for lesion `index` of the family, or nothing.
  // `stratum`: which of opt.count equal slices of the family's size (or thickness) range this
  // lesion draws from, so that every case holds small and large lesions.
  std::optional<Candidate> propose(std::mt19937_64& rng, int index, int stratum,
                                   Position pos) const {
    Candidate c;
    c.position = pos;
    const double u01 = (double(stratum) + uniform(rng, 0, 1)) / double(std::max(1, opt.count));
    switch (opt.family) {
      case Family::kRoundJuxtapleural:
      case Family::kParamediastinal:
      case Family::kHilarMass: {
        const auto pts = points(pos, 0);
        if (pts.empty()) return std::nullopt;
        const SurfacePoint& sp = *pts[std::uniform_int_distribution<std::size_t>(0, pts.size() - 1)(rng)];
        c.lung = sp.lung;
        c.inserted = InsertedClass::kConsolidation;
        double lo_ml = 5, hi_ml = 100;
        if (opt.family == Family::kParamediastinal) lo_ml = 10, hi_ml = 60;
        if (opt.family == Family::kHilarMass) lo_ml = 10, hi_ml = 40;
        const double ml = std::exp(std::log(lo_ml) + u01 * (std::log(hi_ml) - std::log(lo_ml)));
        const double r = std::cbrt(3.0 * ml * 1000.0 / (4.0 * kPi));
        Shape& s = c.shape;
        s.kind = Shape::Kind::kEllipsoid;
        const auto [t1, t2] = perpendiculars(sp.normal);
        s.axes = {sp.normal, t1, t2};
        if (opt.family == Family::kParamediastinal) {
          s.semi = {0.75 * r, 1.155 * r, 1.155 * r};  // flattened against the mediastinum
        } else {
          for (int a = 0; a < 3; ++a) s.semi[a] = r * uniform(rng, 0.88, 1.12);
        }
        c.depth_fraction = opt.family == Family::kHilarMass ? uniform(rng, 0.3, 0.6)
                                                            : uniform(rng, 0.2, 0.6);
        s.centre = sub(sp.p, mul(sp.normal, c.depth_fraction * s.semi[0]));
        const double ext = std::max({s.semi[0], s.semi[1], s.semi[2]});
        s.box = {sub(s.centre, Vec{ext, ext, ext}), add(s.centre, Vec{ext, ext, ext})};
        c.shape_ml = 4.0 / 3.0 * kPi * s.semi[0] * s.semi[1] * s.semi[2] / 1000.0;
        c.bronchogram = c.shape_ml >= 40 && opt.family != Family::kHilarMass;
        break;
      }
      case Family::kBandConsolidation:
      case Family::kBandGroundGlass: {
        const std::uint8_t lung = ((opt.seed + std::uint64_t(index) / 2) % 2) == 0
                                      ? labels::kRightLung
                                      : labels::kLeftLung;
        auto pts = points(pos, lung);
        if (pts.empty()) pts = points(pos, 0);
        if (pts.empty()) return std::nullopt;
        const SurfacePoint& sp = *pts[std::uniform_int_distribution<std::size_t>(0, pts.size() - 1)(rng)];
        c.lung = sp.lung;
        c.inserted = opt.family == Family::kBandConsolidation ? InsertedClass::kConsolidation
                                                              : InsertedClass::kGroundGlass;
        Shape& s = c.shape;
        s.kind = Shape::Kind::kBand;
        s.centre = sp.p;
        s.thickness = 3 + 17 * u01;
        s.patch_a = uniform(rng, 20, 50);
        s.patch_b = uniform(rng, 15, 40);
        s.box = {sub(s.centre, Vec{s.patch_a, s.patch_a, s.patch_b}),
                 add(s.centre, Vec{s.patch_a, s.patch_a, s.patch_b})};
        c.shape_ml = 0;  // set from the voxels: the band's lung volume
        break;
      }
      case Family::kLobar: {
        const std::uint8_t lung = ((opt.seed + std::uint64_t(index)) % 2) == 1
                                      ? labels::kRightLung
                                      : labels::kLeftLung;
        c.lung = lung;
        c.inserted = InsertedClass::kConsolidation;
        c.bronchogram = true;
        const LungExtent& e = anatomy.extent(lung);
        // The major fissure, seen from the side, runs from high at the back down to the front
        // of the diaphragm: the lower lobe lies behind and below it.
        const double phi = uniform(rng, 35, 50) * kPi / 180;
        const double tilt = uniform(rng, -8, 8) * kPi / 180;
        Shape& s = c.shape;
        s.kind = Shape::Kind::kHalfSpace;
        s.normal = unit(Vec{std::tan(tilt), -std::sin(phi), std::cos(phi)});
        // The offset for the wanted volume: most of a lower lobe (a lower lobe is about 30 %
        // of its lung), at least 300 mL.
        const double want_ml =
            std::max(320.0, uniform(rng, 0.75, 0.95) * 0.30 * e.volume_ml);
        std::vector<double> proj;
        proj.reserve(e.voxels);
        for (std::size_t n = 0; n < lungs.size(); ++n) {
          if (lungs[n] == lung) proj.push_back(dot(s.normal, physical(g, n)));
        }
        const std::size_t want = std::min(proj.size() - 1, std::size_t(want_ml / voxel_ml));
        std::nth_element(proj.begin(), proj.begin() + std::ptrdiff_t(want), proj.end());
        s.offset = proj[want];
        s.box = {e.lo, e.hi};
        c.shape_ml = 0;  // the lobe region's lung volume, from the voxels
        break;
      }
    }
    c.base_hu = inside_lung_hu(c.inserted, rng);
    return c;
  }
};

}  // namespace

const char* family_name(Family f) {
  switch (f) {
    case Family::kRoundJuxtapleural: return "round_juxtapleural";
    case Family::kBandConsolidation: return "band_consolidation";
    case Family::kBandGroundGlass: return "band_ground_glass";
    case Family::kLobar: return "lobar";
    case Family::kParamediastinal: return "paramediastinal";
    case Family::kHilarMass: return "hilar_mass";
  }
  return "?";
}

std::vector<Family> all_families() {
  return {Family::kRoundJuxtapleural, Family::kBandConsolidation, Family::kBandGroundGlass,
          Family::kLobar, Family::kParamediastinal, Family::kHilarMass};
}

std::optional<Family> parse_family(const std::string& name) {
  for (Family f : all_families()) {
    if (name == family_name(f)) return f;
  }
  return std::nullopt;
}

const char* position_name(Position p) {
  switch (p) {
    case Position::kLateral: return "lateral";
    case Position::kAnterior: return "anterior";
    case Position::kPosterior: return "posterior";
    case Position::kParavertebral: return "paravertebral";
    case Position::kApical: return "apical";
    case Position::kDiaphragmatic: return "diaphragmatic";
    case Position::kParamediastinal: return "paramediastinal";
    case Position::kParacardiac: return "paracardiac";
    case Position::kHilar: return "hilar";
    case Position::kLowerLobe: return "lower_lobe";
  }
  return "?";
}

std::string FamilyLesion::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s #%d seed %llu: %s %s lung, %s %+.0f HU, shape %.1f mL, truth %.1f mL",
                family_name(family), index, static_cast<unsigned long long>(seed),
                position_name(position), lung == labels::kRightLung ? "right" : "left",
                inserted == InsertedClass::kConsolidation ? "consolidation" : "ground-glass",
                base_hu, shape_ml, truth_ml);
  std::string s = buf;
  if (thickness_mm > 0) {
    std::snprintf(buf, sizeof buf, ", %.1f mm thick, %.0f mm long", thickness_mm, length_mm);
    s += buf;
  }
  if (bronchogram_segments > 0) {
    std::snprintf(buf, sizeof buf, ", air bronchogram %d tubes %.1f mL", bronchogram_segments,
                  bronchogram_ml);
    s += buf;
  }
  return s;
}

const LungExtent& ScanAnatomy::extent(std::uint8_t label) const {
  return label == labels::kRightLung ? lungs[0] : lungs[1];
}

std::size_t ScanAnatomy::count(Position p) const {
  return std::size_t(std::count_if(surface.begin(), surface.end(),
                                   [&](const SurfacePoint& s) { return s.position == p; }));
}

ScanAnatomy analyse_anatomy(const CtImage& ct, const LabelImage& lungs) {
  if (!ct.geom.same_grid(lungs.geom)) {
    throw std::runtime_error("analyse_anatomy: the lung map is not on the CT's grid");
  }
  ScanAnatomy a;
  const Geometry& g = ct.geom;
  a.geom = g;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const double vml = g.voxel_volume_ml();

  // Per-lung extents.
  for (int s = 0; s < 2; ++s) {
    a.lungs[s].label = s == 0 ? labels::kRightLung : labels::kLeftLung;
    a.lungs[s].lo = {1e30, 1e30, 1e30};
    a.lungs[s].hi = {-1e30, -1e30, -1e30};
  }
  std::array<Vec, 2> sum{};
  for (std::size_t n = 0; n < lungs.size(); ++n) {
    const std::uint8_t l = lungs[n];
    if (l != labels::kRightLung && l != labels::kLeftLung) continue;
    LungExtent& e = a.lungs[l == labels::kRightLung ? 0 : 1];
    const Vec p = physical(g, n);
    ++e.voxels;
    for (int d = 0; d < 3; ++d) {
      sum[l == labels::kRightLung ? 0 : 1][d] += p[d];
      e.lo[d] = std::min(e.lo[d], p[d]);
      e.hi[d] = std::max(e.hi[d], p[d]);
    }
  }
  for (int s = 0; s < 2; ++s) {
    LungExtent& e = a.lungs[s];
    if (e.voxels == 0) throw std::runtime_error("analyse_anatomy: a lung is missing");
    e.volume_ml = double(e.voxels) * vml;
    e.centroid = mul(sum[s], 1.0 / double(e.voxels));
  }
  a.midline_x = 0.5 * (a.lungs[0].centroid[0] + a.lungs[1].centroid[0]);
  // +1 when the patient's right lung lies at lower LPS x than the left (always, in LPS).
  const double right_sign = a.lungs[0].centroid[0] < a.midline_x ? 1.0 : -1.0;

  // Hila: the most lateral airway voxel on each side (the main bronchus where it enters the
  // lung); without airway labels, the medial edge of the lung at 60 % of its height.
  for (int s = 0; s < 2; ++s) {
    LungExtent& e = a.lungs[s];
    const double side = s == 0 ? -right_sign : right_sign;  // +1: away from the midline in x
    double best = 10.0;
    bool found = false;
    for (std::size_t n = 0; n < lungs.size(); ++n) {
      if (lungs[n] != labels::kAirway) continue;
      const Vec p = physical(g, n);
      const double lateral = side * (p[0] - a.midline_x);
      if (lateral > best && p[2] < e.hi[2] - 0.25 * (e.hi[2] - e.lo[2])) {
        best = lateral;
        e.hilum = p;
        found = true;
      }
    }
    if (!found) {
      e.hilum = {a.midline_x + side * 0.25 * std::abs(e.centroid[0] - a.midline_x),
                 e.centroid[1], e.lo[2] + 0.6 * (e.hi[2] - e.lo[2])};
    }
  }

  // Noise: the median of the SDs of 5 x 5 in-plane windows lying wholly in soft tissue
  // (-80..+120 HU), on a sparse grid of window centres.
  {
    std::vector<double> sds;
    const std::size_t step_k = std::max<std::size_t>(1, nz / 24);
    for (std::size_t k = 0; k < nz; k += step_k) {
      for (std::size_t j = 2; j + 2 < ny; j += 6) {
        for (std::size_t i = 2; i + 2 < nx; i += 6) {
          double s = 0, s2 = 0;
          bool ok = true;
          for (std::size_t dj = 0; dj < 5 && ok; ++dj) {
            for (std::size_t di = 0; di < 5; ++di) {
              const double h = ct.at(i + di - 2, j + dj - 2, k);
              if (h < -80 || h > 120) {
                ok = false;
                break;
              }
              s += h;
              s2 += h * h;
            }
          }
          if (!ok) continue;
          const double m = s / 25;
          sds.push_back(std::sqrt(std::max(0.0, (s2 - 25 * m * m) / 24)));
        }
      }
    }
    if (!sds.empty()) {
      std::nth_element(sds.begin(), sds.begin() + std::ptrdiff_t(sds.size() / 2), sds.end());
      a.noise_hu = std::clamp(sds[sds.size() / 2], 3.0, 80.0);
    }
  }

  // The front of the spine: the 10th percentile of the LPS y of bone within 15 mm of the
  // midline over the lungs' height, behind the lungs' centroids (vertebral bodies and arches;
  // not the sternum).
  {
    const double zlo = std::min(a.lungs[0].lo[2], a.lungs[1].lo[2]);
    const double zhi = std::max(a.lungs[0].hi[2], a.lungs[1].hi[2]);
    const double ymid = 0.5 * (a.lungs[0].centroid[1] + a.lungs[1].centroid[1]);
    std::vector<double> ys;
    for (std::size_t n = 0; n < ct.size(); n += 3) {
      if (ct[n] < 250) continue;
      const Vec p = physical(g, n);
      if (std::abs(p[0] - a.midline_x) < 15 && p[2] >= zlo && p[2] <= zhi && p[1] > ymid) {
        ys.push_back(p[1]);
      }
    }
    if (!ys.empty()) {
      std::nth_element(ys.begin(), ys.begin() + std::ptrdiff_t(ys.size() / 10), ys.end());
      a.spine_y = ys[ys.size() / 10];
    } else {
      a.spine_y = std::max(a.lungs[0].hi[1], a.lungs[1].hi[1]) - 60;
    }
  }

  // Pleural surface: lung voxels with a face neighbour that is not their own lung.
  std::vector<std::size_t> surface;
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t n = g.index(i, j, k);
        const std::uint8_t l = lungs[n];
        if (l != labels::kRightLung && l != labels::kLeftLung) continue;
        const bool edge = i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz;
        if (edge || lungs[n - 1] != l || lungs[n + 1] != l || lungs[n - nx] != l ||
            lungs[n + nx] != l || lungs[n - nx * ny] != l || lungs[n + nx * ny] != l) {
          surface.push_back(n);
        }
      }
    }
  }
  // A fixed-seed sample (the same for every family and seed: placement is reproducible given
  // the clean lung map).
  std::mt19937_64 rng(0x5eed);
  std::shuffle(surface.begin(), surface.end(), rng);
  surface.resize(std::min<std::size_t>(surface.size(), 8000));
  std::sort(surface.begin(), surface.end());

  const double normal_radius = 10.0;  // mm
  a.surface.resize(surface.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (std::ptrdiff_t q = 0; q < std::ptrdiff_t(surface.size()); ++q) {
    SurfacePoint& sp = a.surface[std::size_t(q)];
    sp.voxel = surface[std::size_t(q)];
    sp.lung = lungs[sp.voxel];
    sp.p = physical(g, sp.voxel);
    const LungExtent& e = a.extent(sp.lung);
    // Outward normal: away from the centroid of the own lung within 10 mm.
    const IndexBox box = index_box(g, sub(sp.p, Vec{normal_radius, normal_radius, normal_radius}),
                                   add(sp.p, Vec{normal_radius, normal_radius, normal_radius}));
    Vec c{0, 0, 0};
    std::uint64_t m = 0;
    for (std::size_t k = box.lo[2]; k <= box.hi[2]; ++k) {
      for (std::size_t j = box.lo[1]; j <= box.hi[1]; ++j) {
        for (std::size_t i = box.lo[0]; i <= box.hi[0]; ++i) {
          if (lungs.at(i, j, k) != sp.lung) continue;
          const Vec p = g.to_physical(double(i), double(j), double(k));
          if (dot(sub(p, sp.p), sub(p, sp.p)) > normal_radius * normal_radius) continue;
          c = add(c, p);
          ++m;
        }
      }
    }
    if (m == 0) continue;
    const Vec away = sub(sp.p, mul(c, 1.0 / double(m)));
    if (norm(away) < 0.5) continue;  // a thin sheet or a voxel island: no clear side
    sp.normal = unit(away);
    const Vec& n = sp.normal;
    // Along the normal: how far through tissue before air (outside the body), and bone.
    double tissue_run = 0, first_bone = -1, to_air = -1;
    bool other_lung = false;
    for (double t = 1.0; t <= 150.0; t += 1.0) {
      const Vec x = to_index(g, add(sp.p, mul(n, t)));
      std::array<long, 3> v{};
      bool in = true;
      for (int d = 0; d < 3; ++d) {
        v[d] = std::lround(x[d]);
        if (v[d] < 0 || v[d] >= long(g.size[d])) in = false;
      }
      if (!in) break;
      const std::size_t idx = g.index(std::size_t(v[0]), std::size_t(v[1]), std::size_t(v[2]));
      const std::uint8_t l = lungs[idx];
      if (l == sp.lung) {
        if (t < 5) continue;  // partial volume along the surface
        break;                // back into the own lung: a fold, no wall here
      }
      if (l == labels::kRightLung || l == labels::kLeftLung || l == labels::kAirway) {
        other_lung = true;
        break;
      }
      const double h = ct[idx];
      if (h >= 250 && first_bone < 0) first_bone = t;
      if (h < -500) {
        to_air = t;
        break;
      }
      tissue_run = t;
    }
    const double height = std::max(1.0, e.hi[2] - e.lo[2]);
    const double zrel = (sp.p[2] - e.lo[2]) / height;
    const double medial_sign = sp.lung == labels::kRightLung ? right_sign : -right_sign;
    const double n_med = n[0] * medial_sign, n_post = n[1], n_sup = n[2];
    const double dx = std::abs(sp.p[0] - a.midline_x);
    const double to_hilum = norm(sub(sp.p, e.hilum));
    const bool chest_wall = !other_lung && to_air > 0 && tissue_run >= 4;
    if (to_hilum < 25 && n_med > 0.3) {
      sp.position = Position::kHilar;
    } else if (zrel > 0.85 && n_sup > 0.45 && n_med < 0.5 && !other_lung) {
      sp.position = Position::kApical;
    } else if (n_sup < -0.55 && zrel < 0.5) {
      // Abdomen below: at least 15 mm of tissue, no bone in the first 15 mm.
      if (!other_lung && (to_air < 0 || to_air > 15) && tissue_run >= 15 &&
          (first_bone < 0 || first_bone > 15)) {
        sp.position = Position::kDiaphragmatic;
      }
    } else if (std::abs(n_sup) < 0.55) {
      if (n_med > 0.55 && !chest_wall) {
        // Medial, with the mediastinum's soft tissue beyond (no bone close by) and in front of
        // the spine (behind it is paravertebral): the heart, low and well in front; the
        // mediastinum above it, away from the hilum.
        const bool soft = tissue_run >= 20 && (first_bone < 0 || first_bone > 30);
        if (soft && zrel < 0.45 && tissue_run >= 30 && sp.p[1] < a.spine_y - 30) {
          sp.position = Position::kParacardiac;
        } else if (soft && zrel >= 0.3 && zrel <= 0.75 && to_hilum > 30 &&
                   sp.p[1] < a.spine_y - 10) {
          sp.position = Position::kParamediastinal;
        }
      } else if (n_post > 0.4 && n_med > -0.2 && dx < 65 && !other_lung) {
        sp.position = Position::kParavertebral;
      } else if (n_post > 0.6 && dx >= 65 && chest_wall) {
        sp.position = Position::kPosterior;
      } else if (n_post < -0.6 && dx >= 25 && chest_wall) {
        sp.position = Position::kAnterior;
      } else if (-n_med > 0.6 && chest_wall) {
        sp.position = Position::kLateral;
      }
    }
  }
  return a;
}

FamilyCase insert_family(const CtImage& ct, const LabelImage& lungs, const ScanAnatomy& anatomy,
                         const FamilyOptions& opt) {
  if (!ct.geom.same_grid(lungs.geom)) {
    throw std::runtime_error("insert_family: the lung map is not on the CT's grid");
  }
  const Placer placer(ct, lungs, anatomy, opt);
  const Geometry& g = ct.geom;
  const double vml = g.voxel_volume_ml();
  FamilyCase out;
  out.ct = ct;
  out.noise_hu = placer.noise_hu;
  const std::vector<Position> positions =
      opt.positions.empty() ? default_positions(opt.family) : opt.positions;
  std::vector<std::pair<std::uint8_t, PhysBox>> taken;
  // Size strata in a seeded order: positions cycle with the index, sizes must not follow them.
  std::vector<int> strata(std::size_t(std::max(0, opt.count)));
  for (std::size_t i = 0; i < strata.size(); ++i) strata[i] = int(i);
  {
    std::mt19937_64 order(splitmix(opt.seed ^ 0x51a7a5ULL));
    std::shuffle(strata.begin(), strata.end(), order);
  }

  for (int index = 0; index < opt.count; ++index) {
    const Position pos =
        positions[std::size_t((opt.seed * std::uint64_t(opt.count) + std::uint64_t(index)) %
                              positions.size())];
    bool placed = false;
    std::string why = "no surface point of that position";
    for (int attempt = 0; attempt < 40 && !placed; ++attempt) {
      std::mt19937_64 rng(splitmix(splitmix(opt.seed * 1000003ULL + std::uint64_t(index)) +
                                   std::uint64_t(attempt)));
      const std::optional<Candidate> cand = placer.propose(rng, index, strata[std::size_t(index)], pos);
      if (!cand) break;
      const Shape& shape = cand->shape;
      const double w = uniform(rng, 1.0, 2.0);  // soft margin width, mm
      const double w_eff = std::sqrt(w * w + placer.margin_extra * placer.margin_extra);
      const PhysBox outer = shape.box.grown(w_eff + (shape.kind == Shape::Kind::kBand ? 0.0 : 1.0));
      bool overlaps = false;
      for (const auto& [lung, box] : taken) {
        if (lung == cand->lung && box.grown(kSeparationMm).intersects(outer)) overlaps = true;
      }
      if (overlaps) {
        why = "overlaps another lesion";
        continue;
      }
      const IndexBox box = index_box(g, outer.lo, outer.hi);
      if (box.empty) {
        why = "outside the image";
        continue;
      }
      const std::size_t bx = box.hi[0] - box.lo[0] + 1, by = box.hi[1] - box.lo[1] + 1;
      const std::size_t bz = box.hi[2] - box.lo[2] + 1;
      auto local = [&](std::size_t i, std::size_t j, std::size_t k) {
        return (i - box.lo[0]) + bx * ((j - box.lo[1]) + by * (k - box.lo[2]));
      };

      // Depth below the pleura for bands: distance to anything not this lung, in a crop
      // larger than the band's thickness.
      std::vector<float> depth;
      if (shape.kind == Shape::Kind::kBand || cand->bronchogram) {
        // Bands need the depth below the pleura; air bronchograms stay 4 mm away from it.
        const double reach = shape.kind == Shape::Kind::kBand ? shape.thickness + 5 : 6.0;
        const IndexBox dbox = index_box(g, outer.grown(reach).lo, outer.grown(reach).hi);
        Geometry cg = g;
        for (int d = 0; d < 3; ++d) cg.size[d] = dbox.hi[d] - dbox.lo[d] + 1;
        MaskImage not_lung(cg, 0);
        for (std::size_t k = 0; k < cg.size[2]; ++k)
          for (std::size_t j = 0; j < cg.size[1]; ++j)
            for (std::size_t i = 0; i < cg.size[0]; ++i)
              not_lung.at(i, j, k) =
                  lungs.at(i + dbox.lo[0], j + dbox.lo[1], k + dbox.lo[2]) != cand->lung;
        const auto d2 = seg::squared_distance_to(not_lung);
        const double half = 0.5 * std::min({g.spacing[0], g.spacing[1], g.spacing[2]});
        depth.assign(bx * by * bz, 0.0f);
        for (std::size_t k = box.lo[2]; k <= box.hi[2]; ++k)
          for (std::size_t j = box.lo[1]; j <= box.hi[1]; ++j)
            for (std::size_t i = box.lo[0]; i <= box.hi[0]; ++i) {
              if (lungs.at(i, j, k) != cand->lung) continue;
              const float v = d2[cg.index(i - dbox.lo[0], j - dbox.lo[1], k - dbox.lo[2])];
              depth[local(i, j, k)] = float(std::max(0.0, std::sqrt(double(v)) - half));
            }
      }

      // Pass 1: lesion fraction f and signed distance s of every voxel of the box.
      std::vector<float> f(bx * by * bz, 0.0f), sd(bx * by * bz, 1e9f);
      std::uint64_t truth_n = 0, changed_n = 0;
      std::vector<std::uint64_t> per_slice(bz, 0);
      Vec truth_sum{0, 0, 0};
      for (std::size_t k = box.lo[2]; k <= box.hi[2]; ++k)
        for (std::size_t j = box.lo[1]; j <= box.hi[1]; ++j)
          for (std::size_t i = box.lo[0]; i <= box.hi[0]; ++i) {
            const std::size_t li = local(i, j, k);
            const std::uint8_t l = lungs.at(i, j, k);
            const Vec p = g.to_physical(double(i), double(j), double(k));
            const double s = shape.sdf(p, l == cand->lung && !depth.empty() ? depth[li] : 0.0);
            // (the depth only enters the band's distance; other shapes ignore it)
            sd[li] = float(s);
            const double fv = std::clamp(0.5 - s / w_eff, 0.0, 1.0);
            f[li] = float(fv);
            if (l != cand->lung || fv <= 0) continue;
            ++changed_n;
            if (s <= 0) {
              ++truth_n;
              ++per_slice[k - box.lo[2]];
              truth_sum = add(truth_sum, p);
            }
          }
      const double truth_ml = double(truth_n) * vml;
      // Enough lung in the lesion: a round lesion at least a fifth inside (by construction it
      // is about half), a band or a lobe at least 1 mL.
      const double min_ml = cand->shape_ml > 0 ? std::max(0.5, 0.2 * cand->shape_ml) : 1.0;
      if (truth_ml < min_ml || truth_n == 0) {
        why = "too little lung inside the shape";
        continue;
      }
      if (opt.family == Family::kLobar && truth_ml < 300) {
        why = "lobe region under 300 mL";
        continue;
      }

      // Bronchograms: from the lesion's hilar side toward its centre and beyond.
      const Vec truth_centroid = mul(truth_sum, 1.0 / double(truth_n));
      const LungExtent& e = anatomy.extent(cand->lung);
      std::vector<Segment> tree;
      if (cand->bronchogram) {
        Vec root;
        double radius, length;
        int generations;
        if (opt.family == Family::kLobar) {
          // The truth voxel nearest the hilum, 8 mm further in.
          double best = 1e30;
          root = truth_centroid;
          for (std::size_t k = box.lo[2]; k <= box.hi[2]; ++k)
            for (std::size_t j = box.lo[1]; j <= box.hi[1]; ++j)
              for (std::size_t i = box.lo[0]; i <= box.hi[0]; ++i) {
                const std::size_t li = local(i, j, k);
                if (sd[li] > -8.0f || lungs.at(i, j, k) != cand->lung) continue;
                const Vec p = g.to_physical(double(i), double(j), double(k));
                const double d = norm(sub(p, e.hilum));
                if (d < best) best = d, root = p;
              }
          radius = 3.0;
          length = 30;
          generations = 4;
        } else {
          const Vec toward_hilum = unit(sub(e.hilum, shape.centre));
          const double r = std::min({shape.semi[0], shape.semi[1], shape.semi[2]});
          root = add(shape.centre, mul(toward_hilum, 0.6 * r));
          radius = 1.5;
          length = 0.6 * r;
          generations = 3;
        }
        // Lobar: toward the consolidated region's centre; round: through the lesion's centre.
        const Vec target = opt.family == Family::kLobar ? truth_centroid : shape.centre;
        tree = bronchial_tree(rng, root, sub(target, root), radius, length, generations);
      }

      // Pass 2: paint.
      FamilyLesion les;
      les.family = opt.family;
      les.position = pos;
      les.inserted = cand->inserted;
      les.lung = cand->lung;
      les.seed = opt.seed;
      les.index = index;
      les.base_hu = cand->base_hu;
      les.depth_fraction = cand->depth_fraction;
      les.centre_lps_mm = shape.kind == Shape::Kind::kEllipsoid || shape.kind == Shape::Kind::kBand
                              ? shape.centre
                              : truth_centroid;
      if (shape.kind == Shape::Kind::kBand) {
        les.thickness_mm = shape.thickness;
        les.length_mm = 2 * shape.patch_a;
      }
      const Texture texture(rng, 10.0);
      std::normal_distribution<double> noise(0.0, placer.noise_hu);
      // The local aerated lung level, for the partial-volume model at the wall.
      std::vector<double> aerated;
      for (std::size_t k = box.lo[2]; k <= box.hi[2]; ++k)
        for (std::size_t j = box.lo[1]; j <= box.hi[1]; ++j)
          for (std::size_t i = box.lo[0]; i <= box.hi[0]; ++i)
            if (lungs.at(i, j, k) == cand->lung && ct.at(i, j, k) < -500)
              aerated.push_back(ct.at(i, j, k));
      double lung_ref = -850;
      if (!aerated.empty()) {
        std::nth_element(aerated.begin(), aerated.begin() + std::ptrdiff_t(aerated.size() / 2),
                         aerated.end());
        lung_ref = std::min(-600.0, aerated[aerated.size() / 2]);
      }
      const double voxel_mm = placer.margin_extra;
      std::uint64_t ggo = 0, solid = 0, other = 0, wall = 0, air = 0;
      les.truth.reserve(truth_n);
      les.changed.reserve(changed_n);
      const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
      for (std::size_t k = box.lo[2]; k <= box.hi[2]; ++k)
        for (std::size_t j = box.lo[1]; j <= box.hi[1]; ++j)
          for (std::size_t i = box.lo[0]; i <= box.hi[0]; ++i) {
            const std::size_t li = local(i, j, k);
            const double fv = f[li];
            if (fv <= 0) continue;
            const std::size_t n = g.index(i, j, k);
            const std::uint8_t l = lungs[n];
            const double h = ct[n];
            const Vec p = g.to_physical(double(i), double(j), double(k));
            double lesion_hu = cand->base_hu + texture(p);
            if (l == cand->lung) {
              double air_fraction = 0;
              if (!tree.empty() && sd[li] <= -3.0f && depth[li] >= 4.0f) {
                for (const Segment& seg : tree) {
                  const double d = distance_to_segment(p, seg);
                  air_fraction = std::max(
                      air_fraction, std::clamp(0.5 + (seg.radius - d) / voxel_mm, 0.0, 1.0));
                }
              }
              if (air_fraction > 0.5 && sd[li] <= 0) ++air;
              lesion_hu = (1 - air_fraction) * lesion_hu + air_fraction * kAirHu;
              const double v = (1 - fv) * h + fv * (lesion_hu + noise(rng));
              const std::int16_t hv = std::int16_t(std::lround(std::clamp(v, -1024.0, 3071.0)));
              out.ct[n] = hv;
              les.changed.push_back(n);
              if (sd[li] <= 0) les.truth.push_back(n);
              if (opt.ground_glass.contains(hv)) {
                ++ggo;
              } else if (opt.solid.contains(hv)) {
                ++solid;
              } else {
                ++other;
              }
              continue;
            }
            if (l != labels::kBackground || fv < 0.5 || h >= kPartialVolumeMaxHu) continue;
            // A partial-volume voxel on the wall side: next to a truth voxel of this lesion?
            bool next_to_truth = false;
            for (int dk = -1; dk <= 1 && !next_to_truth; ++dk)
              for (int dj = -1; dj <= 1 && !next_to_truth; ++dj)
                for (int di = -1; di <= 1; ++di) {
                  const long a = long(i) + di, b = long(j) + dj, c = long(k) + dk;
                  if (a < long(box.lo[0]) || b < long(box.lo[1]) || c < long(box.lo[2]) ||
                      a > long(box.hi[0]) || b > long(box.hi[1]) || c > long(box.hi[2]) ||
                      a >= long(nx) || b >= long(ny) || c >= long(nz))
                    continue;
                  if (lungs.at(std::size_t(a), std::size_t(b), std::size_t(c)) == cand->lung &&
                      sd[local(std::size_t(a), std::size_t(b), std::size_t(c))] <= 0) {
                    next_to_truth = true;
                    break;
                  }
                }
            if (!next_to_truth) continue;
            const double alpha = std::clamp((kWallHu - h) / (kWallHu - lung_ref), 0.0, 1.0);
            const double v = h + alpha * (lesion_hu - lung_ref) + alpha * noise(rng) * 0.5;
            out.ct[n] = std::int16_t(std::lround(std::clamp(v, -1024.0, 3071.0)));
            ++wall;
          }
      les.truth_ml = double(les.truth.size()) * vml;
      les.shape_ml = cand->shape_ml > 0 ? cand->shape_ml : les.truth_ml;
      les.ggo_ml = double(ggo) * vml;
      les.solid_ml = double(solid) * vml;
      les.other_ml = double(other) * vml;
      les.wall_ml = double(wall) * vml;
      les.bronchogram_ml = double(air) * vml;
      les.bronchogram_segments = int(tree.size());
      les.qc_slice = box.lo[2] + std::size_t(std::max_element(per_slice.begin(), per_slice.end()) -
                                             per_slice.begin());
      out.lesions.push_back(std::move(les));
      taken.push_back({cand->lung, outer});
      placed = true;
    }
    if (!placed) {
      out.notes.push_back(std::string(family_name(opt.family)) + " #" + std::to_string(index) +
                          " (" + position_name(pos) + "): not placed, " + why);
    }
  }
  if (out.lesions.empty()) {
    std::string msg = std::string("insert_family: no ") + family_name(opt.family) +
                      " lesion could be placed";
    for (const auto& n : out.notes) msg += "; " + n;
    throw std::runtime_error(msg);
  }
  return out;
}

}  // namespace lungvol::test
