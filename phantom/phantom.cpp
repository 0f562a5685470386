#include "phantom/phantom.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "core/version.hpp"
#include "phantom/anatomy.hpp"
#include "phantom/noise.hpp"
#include "phantom/raster.hpp"

namespace lungvol::phantom {
namespace {

using nlohmann::json;

std::int16_t to_hu(double v) {
  return static_cast<std::int16_t>(std::lround(std::clamp(v, -1024.0, 3071.0)));
}

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

// Air, table, subcutaneous fat and muscle do not vary along z: one slice, copied.
void paint_body(const Anatomy& a, CtImage& ct) {
  const Geometry& g = ct.geom;
  std::vector<std::int16_t> slice(g.slice_voxels(), to_hu(hu::kAir));
  for (std::size_t j = 0; j < g.size[1]; ++j) {
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      const Vec3 p =
          voxel_centre(g, static_cast<std::ptrdiff_t>(i), static_cast<std::ptrdiff_t>(j), 0);
      double v = hu::kAir;
      const double table_top = a.table_y - a.table_curve * p.x * p.x;
      if (std::abs(p.x) <= a.table_half_width && p.y >= table_top &&
          p.y <= table_top + a.table_thickness) {
        v = hu::kTable;
      }
      if (a.body.contains(p.x, p.y)) v = a.muscle.contains(p.x, p.y) ? hu::kSoftTissue : hu::kFat;
      slice[i + g.size[0] * j] = to_hu(v);
    }
  }
  const auto nz = static_cast<std::ptrdiff_t>(g.size[2]);
#pragma omp parallel for
  for (std::ptrdiff_t k = 0; k < nz; ++k) {
    std::copy(slice.begin(), slice.end(),
              ct.data.begin() + static_cast<std::ptrdiff_t>(g.slice_voxels()) * k);
  }
}

void paint_skeleton(const Anatomy& a, CtImage& ct) {
  const Geometry& g = ct.geom;
  const double s = a.scale_xy;
  // Ribs: one horizontal arc pair per level; open at the front (cartilage near the sternum
  // and a gap at the midline) and at the back where the spine is.
  for (double zr = a.rib_z_lo + 0.5 * a.rib_period; zr <= a.rib_z_hi; zr += a.rib_period) {
    const double f = cage_scale(a, zr);
    const Ellipse2 ro = scaled(a.rib_outer, f), ri = scaled(a.rib_inner, f);
    const Box box{{-ro.a, ro.cy - ro.b, zr - 0.5 * a.rib_height},
                  {ro.a, ro.cy + ro.b, zr + 0.5 * a.rib_height}};
    for_each_voxel(g, box, [&](std::size_t n, Vec3 p) {
      if (!ro.contains(p.x, p.y) || ri.contains(p.x, p.y)) return;
      const bool anterior = p.y < ro.cy;
      if (anterior && std::abs(p.x) < 20 * s) return;
      if (!anterior && std::abs(p.x) < 10 * s) return;
      const bool cartilage = anterior && std::abs(p.x) < 0.45 * ro.a && p.y < ro.cy - 0.5 * ro.b;
      ct[n] = to_hu(cartilage ? hu::kCartilage : hu::kRib);
    });
  }
  // Sternum.
  const Ellipse2& st = a.sternum;
  for_each_voxel(g,
                 Box{{-st.a, st.cy - st.b, a.sternum_z_lo}, {st.a, st.cy + st.b, a.sternum_z_hi}},
                 [&](std::size_t n, Vec3 p) {
                   if (st.contains(p.x, p.y)) ct[n] = to_hu(hu::kSternum);
                 });
  // Spine: vertebral bodies (cortex + cancellous bone) separated by discs, spinal canal,
  // spinous processes.
  const double zlo = g.origin[2] - g.spacing[2],
               zhi = g.origin[2] + g.spacing[2] * static_cast<double>(g.size[2]);
  const Ellipse2& sp = a.spinous;
  const Box spine{{-a.vertebra_r, a.spine_y - a.vertebra_r, zlo},
                  {a.vertebra_r, sp.cy + sp.b, zhi}};
  for_each_voxel(g, spine, [&](std::size_t n, Vec3 p) {
    const double dy = p.y - a.spine_y;
    const double r = std::sqrt(p.x * p.x + dy * dy);
    const double phase = std::fmod(p.z - zlo, a.vertebra_period);
    const bool disc = phase < a.disc_height;
    if (r <= a.vertebra_r) {
      ct[n] = to_hu(disc                          ? hu::kDisc
                    : r > a.vertebra_r - a.cortex ? hu::kCorticalBone
                                                  : hu::kCancellousBone);
      return;
    }
    const double dc = p.y - a.canal_y;
    if (p.x * p.x + dc * dc <= a.canal_r * a.canal_r) {
      ct[n] = to_hu(hu::kSpinalCanal);
      return;
    }
    // Neural arch around the canal, and the spinous process behind it.
    const double ra = a.canal_r + a.cortex + 1.5 * a.scale_xy;
    if (!disc && ((p.x * p.x + dc * dc <= ra * ra && p.y > a.spine_y) || sp.contains(p.x, p.y))) {
      ct[n] = to_hu(hu::kCorticalBone);
    }
  });
}

void paint_mediastinum(const Anatomy& a, CtImage& ct) {
  // Heart and mediastinum are the surrounding soft tissue already; the aorta is blood.
  for (const Tube& t : a.aorta) {
    for_each_voxel(ct.geom, t.box(), [&](std::size_t n, Vec3 p) {
      if (t.contains(p)) ct[n] = to_hu(hu::kBlood);
    });
  }
}

void paint_lungs(const Anatomy& a, CtImage& ct, LabelImage& lungs) {
  for_each_voxel(ct.geom, lungs_box(a), [&](std::size_t n, Vec3 p) {
    const std::uint8_t side = lung_side_at(a, p);
    if (side == 0) return;
    ct[n] = to_hu(hu::kLung);
    lungs[n] = side;
  });
}

void paint_vessels(const Anatomy& a, CtImage& ct, const LabelImage& lungs) {
  // Vessels belong to their lung: only lung voxels are painted.
  for (const Tube& t : a.vessels) {
    for_each_voxel(ct.geom, t.box(), [&](std::size_t n, Vec3 p) {
      if (is_lung(lungs[n]) && t.contains(p)) ct[n] = to_hu(hu::kVessel);
    });
  }
}

// Where the diaphragm dome, the mediastinal band and the organ margins meet, the analytic
// lung can leave slivers of a few voxels cut off from the lung. Truth should be one piece per
// lung, so everything but each lung's largest 6-connected component becomes soft tissue.
// Visited voxels are marked in the label's high bit, so no extra volume is allocated.
void remove_lung_islands(CtImage& ct, LabelImage& lungs) {
  constexpr std::uint8_t kSeen = 0x80;
  const Geometry& g = lungs.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  struct Seed {
    std::size_t i, j, k;
  };
  std::vector<Seed> stack;
  // Scan-line flood fill (6-connected) from `start` over voxels equal to `from`, setting them
  // to `to`; returns the size. Whole runs along x are filled at once.
  auto flood = [&](std::size_t start, std::uint8_t from, std::uint8_t to) {
    std::size_t size = 0;
    stack.assign(1, Seed{start % nx, (start / nx) % ny, start / (nx * ny)});
    while (!stack.empty()) {
      const Seed s = stack.back();
      stack.pop_back();
      std::uint8_t* row = &lungs.data[nx * (s.j + ny * s.k)];
      if (row[s.i] != from) continue;
      std::size_t l = s.i, r = s.i;
      while (l > 0 && row[l - 1] == from) --l;
      while (r + 1 < nx && row[r + 1] == from) ++r;
      std::fill(row + l, row + r + 1, to);
      size += r - l + 1;
      auto scan = [&](std::size_t j2, std::size_t k2) {
        const std::uint8_t* row2 = &lungs.data[nx * (j2 + ny * k2)];
        bool in_run = false;
        for (std::size_t x = l; x <= r; ++x) {
          const bool fill = row2[x] == from;
          if (fill && !in_run) stack.push_back({x, j2, k2});
          in_run = fill;
        }
      };
      if (s.j > 0) scan(s.j - 1, s.k);
      if (s.j + 1 < ny) scan(s.j + 1, s.k);
      if (s.k > 0) scan(s.j, s.k - 1);
      if (s.k + 1 < nz) scan(s.j, s.k + 1);
    }
    return size;
  };
  struct Piece {
    std::size_t seed, size;
    std::uint8_t label;
  };
  std::vector<Piece> pieces;
  for (std::size_t n = 0; n < lungs.size(); ++n) {
    const std::uint8_t v = lungs[n];
    if (is_lung(v)) pieces.push_back({n, flood(n, v, static_cast<std::uint8_t>(v | kSeen)), v});
  }
  for (const std::uint8_t label : {labels::kRightLung, labels::kLeftLung}) {
    std::size_t largest = 0;
    for (const Piece& p : pieces) {
      if (p.label == label) largest = std::max(largest, p.size);
    }
    bool kept = false;
    for (const Piece& p : pieces) {
      if (p.label != label) continue;
      if (p.size == largest && !kept) {
        kept = true;
        continue;
      }
      flood(p.seed, static_cast<std::uint8_t>(label | kSeen), labels::kBackground);
      log::debug("phantom: removed a {}-voxel island of {}", p.size,
                 labels::lung_label_name(label));
    }
  }
  // The removed voxels lie against the mediastinum or diaphragm: soft tissue.
  const auto total = static_cast<std::ptrdiff_t>(lungs.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < total; ++n) {
    std::uint8_t& v = lungs.data[static_cast<std::size_t>(n)];
    if (v & kSeen) {
      v = static_cast<std::uint8_t>(v & ~kSeen);
    } else if (v == labels::kBackground &&
               ct.data[static_cast<std::size_t>(n)] == to_hu(hu::kLung)) {
      ct.data[static_cast<std::size_t>(n)] = to_hu(hu::kSoftTissue);
    }
  }
}

void paint_airways(const Anatomy& a, CtImage& ct, LabelImage& lungs) {
  std::vector<Tube> tubes = a.bronchi;
  tubes.push_back(a.trachea);
  // Walls first (inside a lung they stay lung, like vessels), then every lumen.
  for (const Tube& t : tubes) {
    for_each_voxel(ct.geom, t.box(a.airway_wall), [&](std::size_t n, Vec3 p) {
      if (t.contains(p, a.airway_wall)) ct[n] = to_hu(hu::kAirwayWall);
    });
  }
  for (const Tube& t : tubes) {
    for_each_voxel(ct.geom, t.box(), [&](std::size_t n, Vec3 p) {
      if (!t.contains(p)) return;
      ct[n] = to_hu(hu::kAir);
      lungs[n] = labels::kAirway;
    });
  }
}

std::uint8_t lesion_label(const LesionSpec& s) {
  return s.type == LesionType::kSolid ? labels::kSolid : labels::kGroundGlass;
}

void paint_lesions(const std::vector<PlacedLesion>& placed, CtImage& ct, const LabelImage& lungs,
                   LabelImage& lesions) {
  // Ground-glass first, so solid wins where lesions overlap; lesions overwrite vessels.
  for (const std::uint8_t label : {labels::kGroundGlass, labels::kSolid}) {
    const double value = label == labels::kSolid ? hu::kSolid : hu::kGroundGlass;
    for (const PlacedLesion& l : placed) {
      if (lesion_label(l.spec) != label) continue;
      for_each_voxel(ct.geom, l.shape.box(), [&](std::size_t n, Vec3 p) {
        if (!is_lung(lungs[n]) || !l.shape.contains(p)) return;
        ct[n] = to_hu(value);
        lesions[n] = label;
      });
    }
  }
}

void add_noise(const PhantomOptions& o, CtImage& ct, const LabelImage& lesions) {
  if (o.noise_hu <= 0) return;
  const std::uint64_t key = mix64(o.seed ^ 0xC0FFEE1234567ULL);
  const auto sd = static_cast<float>(o.noise_hu);
  const auto& quantiles = normal_quantiles();
  const std::size_t total = ct.size();
  const auto blocks = static_cast<std::ptrdiff_t>((total + 3) / 4);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t b = 0; b < blocks; ++b) {
    float g[4];
    gaussian_quad(quantiles, key, static_cast<std::uint64_t>(b), g);
    for (std::size_t h = 0; h < 4; ++h) {
      const std::size_t n = 4 * static_cast<std::size_t>(b) + h;
      if (n >= total) break;
      // float arithmetic and floor(v + 0.5): this loop touches every voxel of the volume.
      float v = static_cast<float>(ct[n]) + sd * g[h];
      const std::uint8_t lesion = lesions[n];
      if (lesion == labels::kGroundGlass) {
        v = std::clamp(v, static_cast<float>(hu::kGroundGlassMin),
                       static_cast<float>(hu::kGroundGlassMax));
      } else if (lesion == labels::kSolid) {
        v = std::clamp(v, static_cast<float>(hu::kSolidMin), static_cast<float>(hu::kSolidMax));
      }
      v = std::clamp(std::floor(v + 0.5f), -1024.0f, 3071.0f);
      ct[n] = static_cast<std::int16_t>(v);
    }
  }
}

// Volume of the lesion inside its lung: exact for an ellipsoid wholly inside, otherwise by
// midpoint quadrature on a grid 40 times finer than the smallest semi-axis.
struct LesionVolume {
  double ml = 0;
  bool inside = true;
};
LesionVolume lesion_reference_volume(const Anatomy& a, const PlacedLesion& l) {
  const Ellipsoid& e = l.shape;
  const std::uint8_t side =
      l.spec.side == LungSide::kRight ? labels::kRightLung : labels::kLeftLung;
  auto in_lung = [&](Vec3 p) { return lung_side_at(a, p) == side && !in_airway_lumen(a, p); };
  bool inside = true;
  const int n_theta = 48, n_phi = 96;
  for (int t = 0; t <= n_theta && inside; ++t) {
    const double th = M_PI * t / n_theta;
    for (int f = 0; f < n_phi; ++f) {
      const double ph = 2 * M_PI * f / n_phi;
      const Vec3 p{e.c.x + e.r.x * std::sin(th) * std::cos(ph),
                   e.c.y + e.r.y * std::sin(th) * std::sin(ph), e.c.z + e.r.z * std::cos(th)};
      if (!in_lung(p)) {
        inside = false;
        break;
      }
    }
  }
  if (inside) return {e.volume_mm3() / 1000.0, true};
  const double h = std::min({e.r.x, e.r.y, e.r.z}) / 40.0;
  const int nx = static_cast<int>(std::ceil(2 * e.r.x / h)),
            ny = static_cast<int>(std::ceil(2 * e.r.y / h)),
            nz = static_cast<int>(std::ceil(2 * e.r.z / h));
  const double hx = 2 * e.r.x / nx, hy = 2 * e.r.y / ny, hz = 2 * e.r.z / nz;
  std::size_t count = 0;
#pragma omp parallel for reduction(+ : count) schedule(dynamic, 1)
  for (int k = 0; k < nz; ++k) {
    for (int j = 0; j < ny; ++j) {
      for (int i = 0; i < nx; ++i) {
        const Vec3 p{e.c.x - e.r.x + (i + 0.5) * hx, e.c.y - e.r.y + (j + 0.5) * hy,
                     e.c.z - e.r.z + (k + 0.5) * hz};
        if (e.contains(p) && in_lung(p)) ++count;
      }
    }
  }
  return {static_cast<double>(count) * hx * hy * hz / 1000.0, false};
}

json vec(Vec3 v) { return json::array({v.x, v.y, v.z}); }
json ellipsoid_json(const Ellipsoid& e) {
  return {{"centre_mm", vec(e.c)}, {"semi_axes_mm", vec(e.r)}};
}

json lesion_truth(const Anatomy& a, const PlacedLesion& l, const Geometry& g,
                  const LabelImage& lungs, double voxel_ml) {
  const Ellipsoid& e = l.shape;
  const std::size_t voxels = count_voxels(
      g, e.box(), [&](std::size_t n, Vec3 p) { return is_lung(lungs[n]) && e.contains(p); });
  // Chest wall contact: a lesion voxel whose in-plane neighbour lies outside the cavity
  // (lungs never do), i.e. in the chest wall.
  const std::size_t wall = count_voxels(g, e.box(), [&](std::size_t n, Vec3 p) {
    if (!is_lung(lungs[n]) || !e.contains(p)) return false;
    const double dx = g.spacing[0], dy = g.spacing[1];
    const Ellipse2 cav = scaled(a.cavity, cage_scale(a, p.z));
    return !cav.contains(p.x + dx, p.y) || !cav.contains(p.x - dx, p.y) ||
           !cav.contains(p.x, p.y + dy) || !cav.contains(p.x, p.y - dy);
  });
  const LesionVolume ref = lesion_reference_volume(a, l);
  json j;
  j["type"] = l.spec.type == LesionType::kSolid ? "solid" : "ground_glass";
  j["label"] = lesion_label(l.spec);
  j["pleural"] = l.spec.pleural;
  j["lung"] = l.spec.side == LungSide::kRight ? "right" : "left";
  j["centre_lps_mm"] = vec(e.c);
  j["semi_axes_mm"] = vec(e.r);
  j["ellipsoid_ml"] = e.volume_mm3() / 1000.0;
  j["analytic_ml"] = ref.ml;
  j["analytic_method"] = ref.inside ? "ellipsoid" : "quadrature (ellipsoid within lung)";
  j["inside_lung"] = ref.inside;
  j["voxels"] = voxels;
  j["voxel_ml"] = static_cast<double>(voxels) * voxel_ml;
  j["touches_chest_wall"] = wall > 0;
  return j;
}

}  // namespace

Phantom make_phantom(const PhantomOptions& o) {
  if (!(o.noise_hu >= 0) || !std::isfinite(o.noise_hu)) {
    throw Error(ExitCode::kUsage, "phantom: --noise must be >= 0 HU");
  }
  if (!(o.lesion_scale >= 0) || !std::isfinite(o.lesion_scale)) {
    throw Error(ExitCode::kUsage, "phantom: --lesion-scale must be >= 0");
  }
  Stopwatch timer;
  const Geometry g = phantom_geometry(o);
  const Anatomy a = build_anatomy(g, o);
  Phantom ph;
  ph.ct = CtImage(g);
  ph.lungs = LabelImage(g, labels::kBackground);
  ph.lesions = LabelImage(g, labels::kNoLesion);

  Stopwatch step;
  std::string steps;
  auto done = [&](const char* what) { steps += fmt::format(" {} {:.2f}", what, step.lap()); };
  paint_body(a, ph.ct);
  paint_skeleton(a, ph.ct);
  paint_mediastinum(a, ph.ct);
  done("body");
  paint_lungs(a, ph.ct, ph.lungs);
  done("lungs");
  remove_lung_islands(ph.ct, ph.lungs);
  done("islands");
  paint_vessels(a, ph.ct, ph.lungs);
  paint_airways(a, ph.ct, ph.lungs);
  const std::vector<PlacedLesion> placed = place_lesions(a, o);
  paint_lesions(placed, ph.ct, ph.lungs, ph.lesions);
  done("vessels/airways/lesions");
  add_noise(o, ph.ct, ph.lesions);
  done("noise");

  // Truth by counting the label maps.
  std::size_t n_right = 0, n_left = 0, n_airway = 0, n_ggo = 0, n_solid = 0;
  std::size_t r_ggo = 0, r_solid = 0, l_ggo = 0, l_solid = 0;
  const auto total = static_cast<std::ptrdiff_t>(g.voxel_count());
#pragma omp parallel for reduction(+ : n_right, n_left, n_airway, n_ggo, n_solid, r_ggo, r_solid, l_ggo, l_solid)
  for (std::ptrdiff_t n = 0; n < total; ++n) {
    const std::uint8_t lu = ph.lungs.data[static_cast<std::size_t>(n)];
    const std::uint8_t le = ph.lesions.data[static_cast<std::size_t>(n)];
    n_right += lu == labels::kRightLung;
    n_left += lu == labels::kLeftLung;
    n_airway += lu == labels::kAirway;
    n_ggo += le == labels::kGroundGlass;
    n_solid += le == labels::kSolid;
    r_ggo += lu == labels::kRightLung && le == labels::kGroundGlass;
    r_solid += lu == labels::kRightLung && le == labels::kSolid;
    l_ggo += lu == labels::kLeftLung && le == labels::kGroundGlass;
    l_solid += lu == labels::kLeftLung && le == labels::kSolid;
  }
  const double vml = g.voxel_volume_ml();
  auto region = [&](std::size_t lung_n, std::size_t ggo_n, std::size_t solid_n) {
    const double lung_ml = static_cast<double>(lung_n) * vml;
    const double ggo_ml = static_cast<double>(ggo_n) * vml,
                 solid_ml = static_cast<double>(solid_n) * vml;
    auto pct = [&](double v) { return lung_ml > 0 ? 100.0 * v / lung_ml : 0.0; };
    return json{{"volume_ml", lung_ml},
                {"lesion_ml", ggo_ml + solid_ml},
                {"ggo_ml", ggo_ml},
                {"solid_ml", solid_ml},
                {"lesion_pct", pct(ggo_ml + solid_ml)},
                {"ggo_pct", pct(ggo_ml)},
                {"solid_pct", pct(solid_ml)},
                {"voxels", lung_n}};
  };

  json t;
  t["schema"] = "lungvol.phantom-truth/1";
  t["generator"] = {{"name", "lungvol phantom"},
                    {"version", kGeneratorVersion},
                    {"software_version", kSoftwareVersion},
                    {"seed", o.seed},
                    {"size", g.size},
                    {"spacing_mm", g.spacing},
                    {"origin_mm", g.origin},
                    {"noise_hu", o.noise_hu},
                    {"lesion_scale", o.lesion_scale},
                    {"with_lesions", o.with_lesions},
                    {"touching", o.touching},
                    {"lesion_spec", o.lesions.empty() ? "default" : format_lesion_spec(o.lesions)}};
  t["voxel_ml"] = vml;
  const double lung_ml = static_cast<double>(n_right + n_left) * vml;
  const double ggo_ml = static_cast<double>(n_ggo) * vml,
               solid_ml = static_cast<double>(n_solid) * vml;
  auto pct = [&](double v) { return lung_ml > 0 ? 100.0 * v / lung_ml : 0.0; };
  t["volumes"] = {{"right_lung_ml", static_cast<double>(n_right) * vml},
                  {"left_lung_ml", static_cast<double>(n_left) * vml},
                  {"lung_ml", lung_ml},
                  {"airway_ml", static_cast<double>(n_airway) * vml},
                  {"ggo_ml", ggo_ml},
                  {"solid_ml", solid_ml},
                  {"lesion_ml", ggo_ml + solid_ml},
                  {"lesion_pct", pct(ggo_ml + solid_ml)},
                  {"ggo_pct", pct(ggo_ml)},
                  {"solid_pct", pct(solid_ml)}};
  t["voxel_counts"] = {{"right_lung", n_right},
                       {"left_lung", n_left},
                       {"airway", n_airway},
                       {"ggo", n_ggo},
                       {"solid", n_solid}};
  t["regions"] = {{"lungs", region(n_right + n_left, n_ggo, n_solid)},
                  {"right", region(n_right, r_ggo, r_solid)},
                  {"left", region(n_left, l_ggo, l_solid)}};

  json lesion_list = json::array();
  double ggo_analytic = 0, solid_analytic = 0;
  for (const PlacedLesion& l : placed) {
    json j = lesion_truth(a, l, g, ph.lungs, vml);
    (l.spec.type == LesionType::kSolid ? solid_analytic : ggo_analytic) +=
        j["analytic_ml"].get<double>();
    lesion_list.push_back(std::move(j));
  }
  t["lesions"] = std::move(lesion_list);
  // Analytic volumes exist for the lesions only (lungs and airways are clipped shapes whose
  // truth is their voxel count); overlapping lesions would make these sums exceed the maps.
  t["analytic_volumes"] = {{"ggo_ml", ggo_analytic},
                           {"solid_ml", solid_analytic},
                           {"lesion_ml", ggo_analytic + solid_analytic},
                           {"right_lung_ml", nullptr},
                           {"left_lung_ml", nullptr},
                           {"lung_ml", nullptr},
                           {"airway_ml", nullptr}};
  t["hu"] = {{"air", hu::kAir},
             {"lung", hu::kLung},
             {"vessel", hu::kVessel},
             {"ground_glass", hu::kGroundGlass},
             {"solid", hu::kSolid},
             {"soft_tissue", hu::kSoftTissue},
             {"fat", hu::kFat},
             {"bone", hu::kRib},
             {"table", hu::kTable},
             {"ground_glass_range", {hu::kGroundGlassMin, hu::kGroundGlassMax}},
             {"solid_range", {hu::kSolidMin, hu::kSolidMax}}};
  t["anatomy"] = {{"scale_xy", a.scale_xy},
                  {"scale_z", a.scale_z},
                  {"body_semi_axes_mm", {a.body.a, a.body.b}},
                  {"body_centre_y_mm", a.body.cy},
                  {"cavity_semi_axes_mm", {a.cavity.a, a.cavity.b}},
                  {"right_lung_ellipsoid", ellipsoid_json(a.right_lung.shape)},
                  {"left_lung_ellipsoid", ellipsoid_json(a.left_lung.shape)},
                  {"heart_ellipsoid", ellipsoid_json(a.heart)},
                  {"trachea_radius_mm", a.trachea.ra},
                  {"carina_mm", vec(a.trachea.b)},
                  {"vessel_segments", a.vessels.size()}};
  ph.truth = std::move(t);
  done("truth");
  log::debug("phantom: {}x{}x{} voxels generated in {:.2f} s (s:{})", g.size[0], g.size[1],
             g.size[2], timer.seconds(), steps);
  return ph;
}

}  // namespace lungvol::phantom
