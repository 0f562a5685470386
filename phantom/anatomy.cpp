#include "phantom/anatomy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.hpp"
#include "core/labels.hpp"

namespace lungvol::phantom {
namespace {

// Subject variation: a fixed stream per seed (mt19937_64 is specified bit-exactly by the
// standard; the distributions are not, hence our own uniform).
class SubjectRng {
 public:
  explicit SubjectRng(std::uint64_t seed) : rng_(seed ^ 0x5DEECE66DULL) {}
  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  double jitter(double amplitude) { return 1.0 + amplitude * (2.0 * uniform() - 1.0); }
  double symmetric(double amplitude) { return amplitude * (2.0 * uniform() - 1.0); }

 private:
  std::mt19937_64 rng_;
};

constexpr double kDeg = M_PI / 180.0;

// Nominal adult dimensions (mm) at scale 1.
constexpr double kBodyHalfWidth = 165, kBodyHalfDepth = 120;
constexpr double kTableGap = 12, kTableThickness = 10;
constexpr double kLungHeight = 240;                 // left lung, base to apex
constexpr double kThoraxSpan = 1.25 * kLungHeight;  // z extent the layout needs

Vec3 any_perpendicular(Vec3 d) {
  const Vec3 ref = std::abs(d.z) < 0.9 ? Vec3{0, 0, 1} : Vec3{1, 0, 0};
  return normalized(cross(d, ref));
}

// Rotates unit vector d by angle around unit axis k (Rodrigues).
Vec3 rotate(Vec3 d, Vec3 k, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  return d * c + cross(k, d) * s + k * (dot(k, d) * (1 - c));
}

void grow_vessel_tree(const Anatomy& a, std::uint8_t side_label, Vec3 start, Vec3 dir,
                      double length, double radius, int depth, double r_min, SubjectRng& rng,
                      std::vector<Tube>& out) {
  if (depth < 0) return;
  // Shorten a branch that would leave its lung; drop it when even a short one would.
  Vec3 end = start + dir * length;
  int tries = 0;
  while (lung_side_at(a, end) != side_label && tries < 3) {
    length *= 0.6;
    end = start + dir * length;
    ++tries;
  }
  if (lung_side_at(a, end) != side_label) return;
  const double r_end = std::max(r_min, radius * 0.8);
  out.push_back({start, end, std::max(r_min, radius), r_end});
  const Vec3 axis = rotate(any_perpendicular(dir), dir, rng.uniform() * 2 * M_PI);
  for (int child = 0; child < 2; ++child) {
    const double angle = (25.0 + 15.0 * rng.uniform()) * kDeg * (child == 0 ? 1 : -1);
    grow_vessel_tree(a, side_label, end, normalized(rotate(dir, axis, angle)), length * 0.68,
                     radius * 0.75, depth - 1, r_min, rng, out);
  }
}

}  // namespace

Geometry phantom_geometry(const PhantomOptions& o) {
  Geometry g;
  for (int a = 0; a < 3; ++a) {
    if (o.size[a] < 8)
      throw Error(ExitCode::kUsage, "phantom: --size needs at least 8 voxels per axis");
    if (!(o.spacing[a] > 0) || !std::isfinite(o.spacing[a])) {
      throw Error(ExitCode::kUsage, "phantom: --spacing must be positive");
    }
    g.size[a] = o.size[a];
    g.spacing[a] = o.spacing[a];
    // Centred on LPS (0,0,0), rounded to 1/1024 mm so that float32 headers (NIfTI) hold it
    // exactly.
    g.origin[a] =
        std::round(-0.5 * static_cast<double>(o.size[a] - 1) * o.spacing[a] * 1024.0) / 1024.0;
  }
  return g;
}

Anatomy build_anatomy(const Geometry& geom, const PhantomOptions& o) {
  Anatomy a;
  a.geom = geom;
  a.touching = o.touching;
  SubjectRng rng(o.seed);
  const double fov_x = static_cast<double>(geom.size[0]) * geom.spacing[0];
  const double fov_y = static_cast<double>(geom.size[1]) * geom.spacing[1];
  const double fov_z = static_cast<double>(geom.size[2]) * geom.spacing[2];
  const double voxel_xy = std::max(geom.spacing[0], geom.spacing[1]);

  // Scale the adult chest down only when the field of view is too small for it.
  const double s = std::min({1.0, 0.92 * fov_x / (2 * kBodyHalfWidth),
                             0.92 * fov_y / (2 * kBodyHalfDepth + kTableGap + kTableThickness)});
  const double sz = std::min(1.0, fov_z / kThoraxSpan);
  a.scale_xy = s;
  a.scale_z = sz;

  // Body and chest wall.
  const double body_j = 1.0 - 0.04 * rng.uniform();  // subjects only get smaller (FOV)
  const double table_gap = kTableGap * s, table_th = kTableThickness * s;
  const double yc = -0.5 * (table_gap + table_th);
  a.body = {0, yc, kBodyHalfWidth * s * body_j, kBodyHalfDepth * s * body_j};
  const double fat = 14 * s * rng.jitter(0.2), muscle = 9 * s, rib = 7 * s;
  const double pleural_gap = std::max(4 * s, 1.2 * voxel_xy);
  a.muscle = a.body.offset(-fat);
  a.rib_outer = a.muscle.offset(-muscle);
  a.rib_inner = a.rib_outer.offset(-rib);
  a.cavity = a.rib_inner.offset(-pleural_gap);
  // Below this the "chest" would be a few voxels of noise, useless as a test object.
  const double lung_width_mm = a.cavity.a - 22 * s;
  if (s < 0.2 || sz < 0.2 || lung_width_mm < 6 * voxel_xy ||
      0.92 * kLungHeight * sz < 6 * geom.spacing[2]) {
    throw Error(
        ExitCode::kUsage,
        fmt::format("phantom: a {:.0f} x {:.0f} x {:.0f} mm field of view with {:g} x {:g} "
                    "x {:g} mm voxels is too small or too coarse for a chest (needs at "
                    "least about 70 x 60 x 60 mm and 6 voxels across each lung)",
                    fov_x, fov_y, fov_z, geom.spacing[0], geom.spacing[1], geom.spacing[2]));
  }
  const double Ac = a.cavity.a, Bc = a.cavity.b;

  a.table_y = yc + a.body.b + table_gap;
  a.table_curve = 15 * s / (a.body.a * a.body.a);
  a.table_thickness = table_th;
  a.table_half_width = 0.48 * fov_x;

  // Vertical layout: the thorax span centred in the volume (z = 0 is the volume centre).
  const double c_left = kLungHeight * sz * rng.jitter(0.03);
  const double c_right = 0.92 * c_left;
  const double z_apex = (0.5 * kThoraxSpan - 0.13 * kLungHeight) * sz;
  a.lung_z_top = z_apex;

  // Spine.
  a.vertebra_r = 17 * s;
  a.cortex = std::max(2 * s, 0.5 * voxel_xy);
  a.spine_y = yc + Bc - 30 * s;  // the vertebral body bulges into the cavity
  a.canal_r = 7 * s;
  a.canal_y = a.spine_y + a.vertebra_r + 8 * s;
  a.spinous = {0, a.canal_y + a.canal_r + 10 * s, 5 * s, 9 * s};
  a.vertebra_period = 30 * sz;
  a.disc_height = 6 * sz;

  // Mediastinum.
  a.mediastinum_half_width = 22 * s;
  a.organ_margin = std::max(3 * s, 0.6 * voxel_xy);
  const double zb_left = z_apex - c_left, zb_right = z_apex - c_right;
  const double heart_j = rng.jitter(0.04);
  a.heart = {{0.18 * Ac, yc - 0.22 * Bc, zb_left + 0.22 * c_left},
             {0.42 * Ac * heart_j, 0.48 * Bc * heart_j, 0.27 * c_left * heart_j}};
  const double z_carina = z_apex - 0.3 * c_left;
  const double trachea_y = a.spine_y - a.vertebra_r - 16 * s;
  const double r_asc = 14 * s, r_desc = 11 * s;
  const double x_desc = a.vertebra_r + r_desc + 3 * s;
  const Vec3 asc0{0.0, yc - 0.25 * Bc, a.heart.c.z + 0.5 * a.heart.r.z};
  const Vec3 asc1{-0.02 * Ac, yc - 0.3 * Bc, z_carina + 0.12 * c_left};
  const Vec3 arch{28 * s, trachea_y, z_carina + 0.16 * c_left};
  const Vec3 desc0{x_desc, a.spine_y - 0.5 * a.vertebra_r, z_carina + 0.1 * c_left};
  const Vec3 desc1{x_desc, a.spine_y - 0.5 * a.vertebra_r, -0.5 * fov_z - 10};
  a.aorta = {{asc0, asc1, r_asc, r_asc},
             {asc1, arch, r_asc, 12 * s},
             {arch, desc0, 12 * s, r_desc},
             {desc0, desc1, r_desc, r_desc}};

  // Lungs: half-ellipsoids reaching the midline band medially and beyond the cavity
  // laterally, so the cavity wall shapes their lateral surface.
  const double w_med = a.mediastinum_half_width;
  const double lung_a = 0.62 * (Ac - w_med) * rng.jitter(0.03);
  const double lung_b = 1.0 * Bc * rng.jitter(0.03);
  const double lung_cy = yc + 0.06 * Bc;
  a.right_lung = {{{-(w_med + lung_a), lung_cy, zb_right}, {lung_a, lung_b, c_right}}, 20 * sz, -1};
  a.left_lung = {{{w_med + lung_a, lung_cy, zb_left}, {lung_a, lung_b, c_left}}, 15 * sz, 1};
  a.lung_box_medial = w_med;
  a.lung_box_lateral = Ac;
  // Anterior junction (--touching): a retrosternal bulge of both lungs meeting at x = 0,
  // wide enough to merge with each lung's anterior-medial part.
  a.junction = {{0, yc - 0.55 * Bc, z_carina - 0.05 * c_left},
                {w_med + 45 * s, 0.3 * Bc, 0.22 * c_left}};

  // Ribs: horizontal arcs from the lung bases to the apices, open anteriorly (cartilage).
  a.rib_period = 26 * sz;
  a.rib_height = std::max(9 * sz, 0.6 * geom.spacing[2]);
  a.rib_z_lo = std::min(zb_left, zb_right) - 0.05 * c_left;
  a.rib_z_hi = z_apex + 0.05 * c_left;

  a.sternum = {0, a.rib_outer.cy - a.rib_outer.b + 0.5 * rib + 2 * s, 14 * s, 6 * s};
  a.sternum_z_lo = zb_left + 0.15 * c_left;
  a.sternum_z_hi = z_carina + 0.12 * c_left;

  // Airways: trachea from the top of the volume to the carina, main bronchi into the lungs.
  a.airway_wall = std::max(2 * s, 0.5 * voxel_xy);
  const Vec3 carina{0, trachea_y, z_carina};
  a.trachea = {{0, trachea_y, 0.5 * fov_z + 10}, carina, 9 * s, 9 * s};
  const Vec3 right_dir = normalized({-std::sin(40 * kDeg), 0.1, -std::cos(40 * kDeg)});
  const Vec3 left_dir = normalized({std::sin(55 * kDeg), 0.1, -std::cos(55 * kDeg)});
  a.bronchi = {{carina, carina + right_dir * (75 * s), 6 * s, 5.5 * s},
               {carina, carina + left_dir * (90 * s), 5 * s, 4.5 * s}};

  // Pulmonary vessel trees from each hilum; they follow the seed like the rest of the subject.
  const double r_min = std::max(1.0, 0.55 * voxel_xy);
  const double s_lung = std::min(s, sz);
  for (const LungShape* l : {&a.right_lung, &a.left_lung}) {
    const std::uint8_t label = l->side < 0 ? labels::kRightLung : labels::kLeftLung;
    // Hilum: the first lung point lateral of the mediastinum, below the carina.
    Vec3 hilum{l->side * w_med, trachea_y - 0.15 * Bc, z_carina - 0.18 * c_left};
    for (int step = 0; step < 400 && lung_side_at(a, hilum) != label; ++step) {
      hilum.x += l->side * 0.5;
    }
    if (lung_side_at(a, hilum) != label) continue;
    hilum.x += l->side * 3 * s;
    const Vec3 roots[] = {{0.35 * l->side, -0.1, 1.0},
                          {1.0 * l->side, -0.35, 0.1},
                          {0.4 * l->side, 0.45, -1.0},
                          {0.5 * l->side, -0.7, -0.6}};
    for (const Vec3& d : roots) {
      grow_vessel_tree(a, label, hilum, normalized(d), 0.2 * kLungHeight * s_lung,
                       2.5 * std::max(s_lung, 0.4), 3, r_min, rng, a.vessels);
    }
  }
  return a;
}

double cage_scale(const Anatomy& a, double z) {
  double f = kMinCageScale;
  for (const LungShape* l : {&a.right_lung, &a.left_lung}) {
    const double t = std::clamp((z - l->shape.c.z) / l->shape.r.z, 0.0, 1.0);
    f = std::max(f, std::pow(1.0 - t * t * t * t, 0.25));
  }
  return f;
}

Ellipse2 scaled(const Ellipse2& e, double f) { return {e.cx, e.cy, e.a * f, e.b * f}; }

const LungShape& lung(const Anatomy& a, LungSide side) {
  return side == LungSide::kRight ? a.right_lung : a.left_lung;
}

std::uint8_t lung_side_at(const Anatomy& a, Vec3 p) {
  if (!scaled(a.cavity, cage_scale(a, p.z)).contains(p.x, p.y)) return 0;
  const bool right = p.x < 0;
  const LungShape& l = right ? a.right_lung : a.left_lung;
  bool inside = false;
  // Behind the vertebral body's centre the lung fills the paravertebral gutter beside the
  // vertebra, as far as the rib heads, instead of stopping at the mediastinal band.
  const double medial = p.y > a.spine_y ? std::min(a.mediastinum_half_width, a.vertebra_r)
                                        : a.mediastinum_half_width;
  if (std::abs(p.x) >= medial && l.contains(p)) inside = true;
  if (!inside && a.touching && a.junction.contains(p)) inside = true;
  if (!inside) return 0;
  // Mediastinal organs and the spine (with a margin of pleura/adventitia) are never lung.
  if (a.heart.dilated(a.organ_margin).contains(p)) return 0;
  for (const Tube& t : a.aorta) {
    if (t.contains(p, a.organ_margin)) return 0;
  }
  const double dx = p.x, dy = p.y - a.spine_y, rv = a.vertebra_r + a.organ_margin + 2 * a.scale_xy;
  if (dx * dx + dy * dy <= rv * rv) return 0;
  return right ? labels::kRightLung : labels::kLeftLung;
}

bool in_airway_lumen(const Anatomy& a, Vec3 p) {
  if (a.trachea.contains(p)) return true;
  for (const Tube& t : a.bronchi) {
    if (t.contains(p)) return true;
  }
  return false;
}

Box lungs_box(const Anatomy& a) {
  Box b{{-a.cavity.a, a.cavity.cy - a.cavity.b,
         std::min(a.right_lung.shape.c.z, a.left_lung.shape.c.z)},
        {a.cavity.a, a.cavity.cy + a.cavity.b, a.lung_z_top}};
  return grow(b, 1e-6);
}

std::vector<PlacedLesion> place_lesions(const Anatomy& a, const PhantomOptions& o) {
  std::vector<PlacedLesion> out;
  if (!o.with_lesions || o.lesion_scale <= 0) return out;
  const bool defaults = o.lesions.empty();
  const std::vector<LesionSpec> specs = defaults ? default_lesions() : o.lesions;
  // Default sizes follow the chest's scale; positions get a small per-subject jitter that
  // does not depend on lesion_scale, so a subject's visits differ only in lesion size.
  SubjectRng rng(o.seed * 0x9E3779B97F4A7C15ULL + 17);
  const double size_scale = defaults ? std::min(a.scale_xy, a.scale_z) : 1.0;
  for (const LesionSpec& spec : specs) {
    double u = spec.uvw[0], v = spec.uvw[1], w = spec.uvw[2];
    double jr[3] = {1, 1, 1};
    if (defaults) {
      u += rng.symmetric(0.03);
      v += rng.symmetric(0.03);
      w += rng.symmetric(0.02);
      for (double& j : jr) j = rng.jitter(0.08);
    }
    const LungShape& l = lung(a, spec.side);
    const Vec3 r0{spec.semi_axes_mm[0] * size_scale * jr[0],
                  spec.semi_axes_mm[1] * size_scale * jr[1],
                  spec.semi_axes_mm[2] * size_scale * jr[2]};
    Vec3 c;
    c.y = a.cavity.cy + v * a.cavity.b;
    c.z = l.shape.c.z + w * l.shape.r.z;
    if (spec.pleural) {
      const Ellipse2 cav = scaled(a.cavity, cage_scale(a, c.z));
      const double t = std::clamp((c.y - cav.cy) / cav.b, -1.0, 1.0);
      const double wall = cav.a * std::sqrt(std::max(0.0, 1.0 - t * t));
      c.x = l.side * (wall - u * r0.x);  // u: depth of the centre inside the wall
    } else {
      const double mid = 0.5 * (a.lung_box_medial + a.lung_box_lateral);
      const double half = 0.5 * (a.lung_box_lateral - a.lung_box_medial);
      c.x = l.side * (mid + u * half);
    }
    out.push_back({spec, {c, r0 * o.lesion_scale}});
  }
  return out;
}

}  // namespace lungvol::phantom
