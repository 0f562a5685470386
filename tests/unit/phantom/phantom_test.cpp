// The phantom is the pipeline's known truth, so these tests check it against geometry and
// arithmetic that does not come from the generator: ellipsoid volumes 4/3*pi*abc, the
// protocol HU bands, voxel counts taken directly from the label maps.
#include "phantom/phantom.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.hpp"
#include "core/labels.hpp"

namespace lungvol::phantom {
namespace {

using labels::kAirway;
using labels::kGroundGlass;
using labels::kLeftLung;
using labels::kRightLung;
using labels::kSolid;

const Phantom& default_phantom() {
  static const Phantom p = make_phantom(PhantomOptions{});
  return p;
}

// Default anatomy at 1.2 mm isotropic voxels: fine enough for 2 % volume agreement.
PhantomOptions fine_options() {
  PhantomOptions o;
  o.size = {288, 288, 267};
  o.spacing = {1.2, 1.2, 1.2};
  return o;
}
const Phantom& fine_phantom() {
  static const Phantom p = make_phantom(fine_options());
  return p;
}

std::size_t count(const LabelImage& im, std::uint8_t v) {
  std::size_t n = 0;
  for (std::uint8_t x : im.data) n += x == v;
  return n;
}

struct LesionTruth {
  std::string type, lung;
  bool pleural = false;
  double c[3], r[3];
  double analytic_ml = 0;
};
std::vector<LesionTruth> lesions_of(const Phantom& p) {
  std::vector<LesionTruth> out;
  for (const auto& j : p.truth.at("lesions")) {
    LesionTruth t;
    t.type = j.at("type");
    t.lung = j.at("lung");
    t.pleural = j.at("pleural");
    for (int a = 0; a < 3; ++a) {
      t.c[a] = j.at("centre_lps_mm")[a];
      t.r[a] = j.at("semi_axes_mm")[a];
    }
    t.analytic_ml = j.at("analytic_ml");
    out.push_back(t);
  }
  return out;
}

bool in_ellipsoid(const LesionTruth& l, const std::array<double, 3>& p) {
  double s = 0;
  for (int a = 0; a < 3; ++a) s += std::pow((p[a] - l.c[a]) / l.r[a], 2);
  return s <= 1.0;
}

// Voxels whose centre lies in the lesion's ellipsoid: in total, and those labelled as lesion.
struct EllipsoidCount {
  std::size_t grid = 0, labelled = 0;
};
// Index range [lo, hi) along `axis` covering the lesion's extent (identity direction).
std::pair<std::size_t, std::size_t> extent(const Geometry& g, const LesionTruth& l, int axis) {
  const double lo = (l.c[axis] - l.r[axis] - g.origin[axis]) / g.spacing[axis];
  const double hi = (l.c[axis] + l.r[axis] - g.origin[axis]) / g.spacing[axis];
  const double n = static_cast<double>(g.size[axis]);
  return {static_cast<std::size_t>(std::clamp(std::floor(lo), 0.0, n)),
          static_cast<std::size_t>(std::clamp(std::ceil(hi) + 1, 0.0, n))};
}

EllipsoidCount count_in_ellipsoid(const Phantom& p, const LesionTruth& l) {
  const Geometry& g = p.ct.geom;
  const auto [i0, i1] = extent(g, l, 0);
  const auto [j0, j1] = extent(g, l, 1);
  const auto [k0, k1] = extent(g, l, 2);
  EllipsoidCount c;
  for (std::size_t k = k0; k < k1; ++k)
    for (std::size_t j = j0; j < j1; ++j)
      for (std::size_t i = i0; i < i1; ++i) {
        const auto x =
            g.to_physical(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
        if (!in_ellipsoid(l, x)) continue;
        ++c.grid;
        c.labelled += p.lesions.at(i, j, k) != labels::kNoLesion;
      }
  return c;
}

TEST(Phantom, DefaultGridAndOrientation) {
  const Phantom& p = default_phantom();
  const Geometry& g = p.ct.geom;
  EXPECT_EQ(g.size, (std::array<std::size_t, 3>{192, 192, 80}));
  EXPECT_EQ(g.spacing, (std::array<double, 3>{1.8, 1.8, 4.0}));
  EXPECT_TRUE(p.lungs.geom.same_grid(g));
  EXPECT_TRUE(p.lesions.geom.same_grid(g));
  // Identity direction: +i = patient left, +j = posterior, +k = superior.
  EXPECT_EQ(g.direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  // The right lung lies at -x (patient right), the left lung at +x.
  double xr = 0, xl = 0;
  std::size_t nr = 0, nl = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const double x = g.to_physical(static_cast<double>(i), 0, 0)[0];
        if (p.lungs.at(i, j, k) == kRightLung) xr += x, ++nr;
        if (p.lungs.at(i, j, k) == kLeftLung) xl += x, ++nl;
      }
  ASSERT_GT(nr, 0u);
  ASSERT_GT(nl, 0u);
  EXPECT_LT(xr / nr, -40.0);
  EXPECT_GT(xl / nl, 40.0);
  // Outside air in a corner, body soft tissue between the lungs.
  EXPECT_NEAR(p.ct.at(2, 2, 40), -1000, 90);
}

TEST(Phantom, TruthVolumesAreLabelMapCounts) {
  const Phantom& p = default_phantom();
  const double vml = 1.8 * 1.8 * 4.0 / 1000.0;
  const auto& v = p.truth.at("volumes");
  EXPECT_DOUBLE_EQ(v.at("right_lung_ml"), count(p.lungs, kRightLung) * vml);
  EXPECT_DOUBLE_EQ(v.at("left_lung_ml"), count(p.lungs, kLeftLung) * vml);
  EXPECT_DOUBLE_EQ(v.at("lung_ml"), (count(p.lungs, kRightLung) + count(p.lungs, kLeftLung)) * vml);
  EXPECT_DOUBLE_EQ(v.at("airway_ml"), count(p.lungs, kAirway) * vml);
  EXPECT_DOUBLE_EQ(v.at("ggo_ml"), count(p.lesions, kGroundGlass) * vml);
  EXPECT_DOUBLE_EQ(v.at("solid_ml"), count(p.lesions, kSolid) * vml);
  const double lesion = (count(p.lesions, kGroundGlass) + count(p.lesions, kSolid)) * vml;
  EXPECT_NEAR(v.at("lesion_ml").get<double>(), lesion, 1e-9);
  EXPECT_NEAR(v.at("lesion_pct").get<double>(), 100 * lesion / v.at("lung_ml").get<double>(), 1e-9);
  // A plausible adult chest: 2.5-6 L of lung, right larger than left, 20-80 mL airway.
  EXPECT_GT(v.at("lung_ml").get<double>(), 2500);
  EXPECT_LT(v.at("lung_ml").get<double>(), 6000);
  EXPECT_GT(v.at("right_lung_ml").get<double>(), v.at("left_lung_ml").get<double>());
  EXPECT_GT(v.at("airway_ml").get<double>(), 20);
  EXPECT_LT(v.at("airway_ml").get<double>(), 80);
  // Default set: 3 ground-glass, 2 solid, 1 pleural solid.
  std::map<std::string, int> kinds;
  for (const auto& l : lesions_of(p)) ++kinds[l.type + (l.pleural ? "/pleural" : "")];
  EXPECT_EQ(kinds["ground_glass"], 3);
  EXPECT_EQ(kinds["solid"], 2);
  EXPECT_EQ(kinds["solid/pleural"], 1);
}

TEST(Phantom, LesionVolumesMatchEllipsoidsAtFineSpacing) {
  const Phantom& p = fine_phantom();
  const double vml = 1.2 * 1.2 * 1.2 / 1000.0;
  const auto lesions = lesions_of(p);
  ASSERT_EQ(lesions.size(), 6u);
  for (const auto& l : lesions) {
    const EllipsoidCount c = count_in_ellipsoid(p, l);
    const double ellipsoid_ml = 4.0 / 3.0 * M_PI * l.r[0] * l.r[1] * l.r[2] / 1000.0;
    if (l.pleural) {
      // Clipped by the chest wall: a good part of the ellipsoid, never all of it.
      EXPECT_LT(c.labelled, c.grid);
      EXPECT_GT(c.labelled * vml, 0.4 * ellipsoid_ml);
      EXPECT_LT(c.labelled * vml, 0.9 * ellipsoid_ml);
      EXPECT_NEAR(c.labelled * vml, l.analytic_ml, 0.03 * l.analytic_ml);
    } else {
      // Wholly inside its lung: every grid voxel of the ellipsoid is lesion.
      EXPECT_EQ(c.labelled, c.grid) << l.type << " " << l.lung;
      EXPECT_NEAR(l.analytic_ml, ellipsoid_ml, 1e-9);
      EXPECT_NEAR(c.labelled * vml, ellipsoid_ml, 0.02 * ellipsoid_ml) << l.type << " " << l.lung;
    }
  }
}

TEST(Phantom, LesionsLieInsideTheirLungs) {
  for (const Phantom* p : {&default_phantom(), &fine_phantom()}) {
    const Geometry& g = p->ct.geom;
    std::size_t outside = 0;
    for (std::size_t n = 0; n < g.voxel_count(); ++n) {
      if (p->lesions[n] && p->lungs[n] != kRightLung && p->lungs[n] != kLeftLung) ++outside;
    }
    EXPECT_EQ(outside, 0u);
    for (const auto& l : lesions_of(*p)) {
      const std::uint8_t side = l.lung == "right" ? kRightLung : kLeftLung;
      std::size_t wrong = 0, n = 0;
      for (std::size_t k = 0; k < g.size[2]; ++k)
        for (std::size_t j = 0; j < g.size[1]; ++j)
          for (std::size_t i = 0; i < g.size[0]; ++i) {
            if (!p->lesions.at(i, j, k)) continue;
            if (!in_ellipsoid(l, g.to_physical(double(i), double(j), double(k)))) continue;
            ++n;
            wrong += p->lungs.at(i, j, k) != side;
          }
      EXPECT_GT(n, 0u);
      EXPECT_EQ(wrong, 0u);
    }
  }
}

TEST(Phantom, LesionHuStaysInsideItsClassBand) {
  PhantomOptions noisy;
  noisy.noise_hu = 60;  // far more than any scanner; the bands must still hold
  for (const Phantom& p : {default_phantom(), make_phantom(noisy)}) {
    std::size_t ggo = 0, solid = 0;
    for (std::size_t n = 0; n < p.ct.size(); ++n) {
      if (p.lesions[n] == kGroundGlass) {
        ++ggo;
        ASSERT_GE(p.ct[n], -700);
        ASSERT_LT(p.ct[n], -300);
      } else if (p.lesions[n] == kSolid) {
        ++solid;
        ASSERT_GE(p.ct[n], -300);
        ASSERT_LT(p.ct[n], 100);
      }
    }
    EXPECT_GT(ggo, 1000u);
    EXPECT_GT(solid, 500u);
  }
}

TEST(Phantom, PleuralLesionTouchesTheLateralChestWall) {
  const Phantom& p = default_phantom();
  const Geometry& g = p.ct.geom;
  for (const auto& l : lesions_of(p)) {
    // Lateral neighbour (away from the midline) of a lesion voxel that is soft tissue and
    // neither lung nor lesion: the chest wall.
    std::size_t wall_contacts = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k)
      for (std::size_t j = 0; j < g.size[1]; ++j)
        for (std::size_t i = 1; i + 1 < g.size[0]; ++i) {
          if (!p.lesions.at(i, j, k)) continue;
          const auto x = g.to_physical(double(i), double(j), double(k));
          if (!in_ellipsoid(l, x)) continue;
          const std::size_t il = x[0] < 0 ? i - 1 : i + 1;
          const int hu = p.ct.at(il, j, k);
          if (p.lungs.at(il, j, k) == 0 && p.lesions.at(il, j, k) == 0 && hu > -200 && hu < 200) {
            ++wall_contacts;
          }
        }
    if (l.pleural) {
      EXPECT_GT(wall_contacts, 10u);
    } else {
      EXPECT_EQ(wall_contacts, 0u) << l.type << " " << l.lung;
    }
  }
  std::size_t flagged = 0;
  for (const auto& j : p.truth.at("lesions")) {
    flagged += j.at("touches_chest_wall").get<bool>();
    EXPECT_EQ(j.at("touches_chest_wall").get<bool>(), j.at("pleural").get<bool>());
  }
  EXPECT_EQ(flagged, 1u);
}

TEST(Phantom, LesionScaleShrinksOnlyTheLesions) {
  PhantomOptions half = fine_options(), none = fine_options();
  half.lesion_scale = 0.5;
  none.lesion_scale = 0.0;
  const Phantom& full = fine_phantom();
  const Phantom ph = make_phantom(half);
  const Phantom p0 = make_phantom(none);
  EXPECT_EQ(count(p0.lesions, kGroundGlass) + count(p0.lesions, kSolid), 0u);
  EXPECT_EQ(p0.truth.at("volumes").at("lesion_ml").get<double>(), 0.0);
  EXPECT_EQ(p0.truth.at("lesions").size(), 0u);
  // Lungs (which include their lesions) and airways do not change between visits.
  EXPECT_EQ(p0.lungs.data, full.lungs.data);
  EXPECT_EQ(ph.lungs.data, full.lungs.data);
  const double v_full = full.truth.at("volumes").at("lesion_ml");
  const double v_half = ph.truth.at("volumes").at("lesion_ml");
  EXPECT_NEAR(v_half / v_full, 0.125, 0.01);
  // Same centres, half the semi-axes.
  const auto a = lesions_of(full), b = lesions_of(ph);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t n = 0; n < a.size(); ++n) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_DOUBLE_EQ(a[n].c[k], b[n].c[k]);
      EXPECT_NEAR(b[n].r[k], 0.5 * a[n].r[k], 1e-9);
    }
  }
}

TEST(Phantom, NoLesionsOption) {
  PhantomOptions o;
  o.with_lesions = false;
  const Phantom p = make_phantom(o);
  EXPECT_EQ(count(p.lesions, kGroundGlass) + count(p.lesions, kSolid), 0u);
  EXPECT_EQ(p.lungs.data, default_phantom().lungs.data);
}

TEST(Phantom, NoiseIsSeededAndThreadIndependent) {
  PhantomOptions o;
  o.size = {96, 96, 40};
  o.spacing = {3.6, 3.6, 8.0};
  const Phantom a = make_phantom(o);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Phantom a1 = make_phantom(o);
  omp_set_num_threads(threads);
  EXPECT_EQ(a.ct.data, a1.ct.data);
  EXPECT_EQ(a.lungs.data, a1.lungs.data);
  EXPECT_EQ(make_phantom(o).ct.data, a.ct.data);
  o.seed = 2;
  const Phantom b = make_phantom(o);
  std::size_t differ = 0;
  for (std::size_t n = 0; n < a.ct.size(); ++n) differ += a.ct[n] != b.ct[n];
  EXPECT_GT(differ, a.ct.size() / 2);
}

TEST(Phantom, NoiseHasTheRequestedSpread) {
  // Parenchyma away from vessels: -850 HU plus Gaussian noise of SD 15.
  const Phantom& p = default_phantom();
  double sum = 0, sum2 = 0;
  std::size_t n = 0;
  for (std::size_t v = 0; v < p.ct.size(); ++v) {
    if ((p.lungs[v] == kRightLung || p.lungs[v] == kLeftLung) && !p.lesions[v] && p.ct[v] < -700) {
      sum += p.ct[v];
      sum2 += double(p.ct[v]) * p.ct[v];
      ++n;
    }
  }
  const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  EXPECT_NEAR(mean, -850, 0.5);
  EXPECT_NEAR(sd, 15, 0.3);
  PhantomOptions quiet;
  quiet.noise_hu = 0;
  const Phantom q = make_phantom(quiet);
  EXPECT_EQ(q.ct.at(2, 2, 2), -1000);
}

TEST(Phantom, LungsHoldVesselsThatAreNotLesions) {
  // Dense tubes (+40 HU) inside the lung masks but outside the lesion map: what a lesion
  // detector has to ignore. Expect a few mL, far below the lung volume.
  const Phantom& p = fine_phantom();
  std::size_t dense = 0, lung = 0;
  for (std::size_t n = 0; n < p.ct.size(); ++n) {
    if (p.lungs[n] != kRightLung && p.lungs[n] != kLeftLung) continue;
    ++lung;
    if (!p.lesions[n] && p.ct[n] >= -300 && p.ct[n] < 100) ++dense;
  }
  const double dense_ml = dense * 1.2 * 1.2 * 1.2 / 1000.0;
  EXPECT_GT(dense_ml, 2.0);
  EXPECT_LT(dense, lung / 50);
}

bool lungs_touch(const LabelImage& lungs) {
  const Geometry& g = lungs.geom;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i + 1 < g.size[0]; ++i) {
        const auto a = lungs.at(i, j, k), b = lungs.at(i + 1, j, k);
        if ((a == kRightLung && b == kLeftLung) || (a == kLeftLung && b == kRightLung)) return true;
      }
  return false;
}

TEST(Phantom, LungsAreSeparateUnlessTouchingIsAsked) {
  EXPECT_FALSE(lungs_touch(default_phantom().lungs));
  PhantomOptions o;
  o.touching = true;
  const Phantom t = make_phantom(o);
  EXPECT_TRUE(lungs_touch(t.lungs));
  EXPECT_EQ(t.truth.at("lesions").size(), 6u);
}

// Number of 6-connected components of voxels with label v.
std::size_t components(const LabelImage& im, std::uint8_t v) {
  const Geometry& g = im.geom;
  std::vector<std::uint8_t> seen(im.size(), 0);
  std::vector<std::size_t> stack;
  std::size_t n_comp = 0;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  for (std::size_t start = 0; start < im.size(); ++start) {
    if (im[start] != v || seen[start]) continue;
    ++n_comp;
    seen[start] = 1;
    stack.push_back(start);
    while (!stack.empty()) {
      const std::size_t n = stack.back();
      stack.pop_back();
      const std::size_t i = n % nx, j = (n / nx) % ny, k = n / (nx * ny);
      auto visit = [&](bool ok, std::size_t m) {
        if (ok && im[m] == v && !seen[m]) {
          seen[m] = 1;
          stack.push_back(m);
        }
      };
      visit(i > 0, n - 1);
      visit(i + 1 < nx, n + 1);
      visit(j > 0, n - nx);
      visit(j + 1 < ny, n + nx);
      visit(k > 0, n - nx * ny);
      visit(k + 1 < nz, n + nx * ny);
    }
  }
  return n_comp;
}

TEST(Phantom, EachLungAndTheAirwayIsOnePiece) {
  PhantomOptions touching;
  touching.touching = true;
  for (const Phantom* p : {&default_phantom(), &fine_phantom()}) {
    EXPECT_EQ(components(p->lungs, kRightLung), 1u);
    EXPECT_EQ(components(p->lungs, kLeftLung), 1u);
    EXPECT_EQ(components(p->lungs, kAirway), 1u);
  }
  {
    const Phantom p = make_phantom(touching);
    EXPECT_EQ(components(p.lungs, kRightLung), 1u);
    EXPECT_EQ(components(p.lungs, kLeftLung), 1u);
    EXPECT_EQ(components(p.lungs, kAirway), 1u);
  }
}

TEST(Phantom, TracheaIsAbout18mmWide) {
  const Phantom& p = fine_phantom();
  const Geometry& g = p.ct.geom;
  const std::size_t k = g.size[2] - 3;  // above the lung apices
  std::size_t n = 0, lung = 0;
  for (std::size_t j = 0; j < g.size[1]; ++j)
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      n += p.lungs.at(i, j, k) == kAirway;
      lung += p.lungs.at(i, j, k) == kRightLung || p.lungs.at(i, j, k) == kLeftLung;
    }
  const double area = n * 1.2 * 1.2;
  EXPECT_GT(area, M_PI * 8 * 8);
  EXPECT_LT(area, M_PI * 10 * 10);
  EXPECT_EQ(lung, 0u);
}

TEST(Phantom, FitsOtherFieldsOfViewWithLesionsInside) {
  struct Case {
    std::array<std::size_t, 3> size;
    std::array<double, 3> spacing;
    std::uint64_t seed;
  };
  for (const Case& c :
       {Case{{64, 64, 32}, {5.0, 5.0, 10.0}, 3}, Case{{128, 128, 60}, {1.5, 1.5, 3.0}, 4},
        Case{{160, 120, 50}, {2.0, 2.5, 5.0}, 5}, Case{{96, 96, 96}, {1.0, 1.0, 1.0}, 6}}) {
    PhantomOptions o;
    o.size = c.size;
    o.spacing = c.spacing;
    o.seed = c.seed;
    const Phantom p = make_phantom(o);
    const auto& v = p.truth.at("volumes");
    EXPECT_GT(v.at("right_lung_ml").get<double>(), 0);
    EXPECT_GT(v.at("left_lung_ml").get<double>(), 0);
    EXPECT_GT(v.at("ggo_ml").get<double>(), 0);
    EXPECT_GT(v.at("solid_ml").get<double>(), 0);
    for (const auto& l : p.truth.at("lesions")) {
      EXPECT_EQ(l.at("inside_lung").get<bool>(), !l.at("pleural").get<bool>()) << c.size[0];
    }
    // The body stays inside the field of view: the border columns are air or table.
    const Geometry& g = p.ct.geom;
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      EXPECT_LT(p.ct.at(0, j, g.size[2] / 2), -500 + 800 * (j > g.size[1] * 3 / 4));
    }
  }
}

TEST(Phantom, RejectsImpossibleOptionsAsUsageErrors) {
  auto code_of = [](const PhantomOptions& o) {
    try {
      make_phantom(o);
    } catch (const Error& e) {
      return e.code();
    }
    return ExitCode::kOk;
  };
  PhantomOptions o;
  o.size = {4, 192, 80};
  EXPECT_EQ(code_of(o), ExitCode::kUsage);
  o = PhantomOptions{};
  o.spacing = {1.8, 0.0, 4.0};
  EXPECT_EQ(code_of(o), ExitCode::kUsage);
  o = PhantomOptions{};
  o.noise_hu = -1;
  EXPECT_EQ(code_of(o), ExitCode::kUsage);
  o = PhantomOptions{};
  o.lesion_scale = -0.5;
  EXPECT_EQ(code_of(o), ExitCode::kUsage);
  o = PhantomOptions{};
  o.size = {16, 16, 16};
  o.spacing = {1.0, 1.0, 1.0};  // a 16 mm field of view holds no chest
  EXPECT_EQ(code_of(o), ExitCode::kUsage);
}

}  // namespace
}  // namespace lungvol::phantom
