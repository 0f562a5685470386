// The lesion family generator of the stress suite (tests/support/lesion_families.hpp), checked
// on the phantom with its exact lung map as the clean map: placement by position, truth =
// lung before insertion, appearance (texture, soft margin, full density at the wall, partial
// volume on the wall side, air bronchograms), no overlap, reproducibility.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/labels.hpp"
#include "phantom/phantom.hpp"
#include "segmentation/morphology.hpp"
#include "tests/support/lesion_families.hpp"

namespace lungvol::test {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

struct Clean {
  phantom::Phantom ph;
  ScanAnatomy anatomy;
};
const Clean& clean() {
  static const Clean c = [] {
    phantom::PhantomOptions o;
    o.with_lesions = false;
    Clean x{phantom::make_phantom(o), {}};
    x.anatomy = analyse_anatomy(x.ph.ct, x.ph.lungs);
    return x;
  }();
  return c;
}

FamilyCase make(Family f, std::uint64_t seed, int count) {
  FamilyOptions o;
  o.family = f;
  o.seed = seed;
  o.count = count;
  return insert_family(clean().ph.ct, clean().ph.lungs, clean().anatomy, o);
}

TEST(LesionFamilies, SurfacePositionsAreFoundOnThePhantom) {
  const ScanAnatomy& a = clean().anatomy;
  for (Position p : {Position::kLateral, Position::kAnterior, Position::kPosterior,
                     Position::kParavertebral, Position::kApical, Position::kDiaphragmatic,
                     Position::kParacardiac, Position::kParamediastinal, Position::kHilar}) {
    EXPECT_GT(a.count(p), 5u) << position_name(p);
  }
  // The phantom's noise SD is 15 HU: the estimate from soft tissue finds it.
  EXPECT_NEAR(a.noise_hu, 15.0, 2.5);
  // Positions mean what they say: lateral points face away from the midline, apical ones are
  // high, diaphragmatic ones face down.
  for (const SurfacePoint& s : a.surface) {
    if (!s.position) continue;
    const LungExtent& e = a.extent(s.lung);
    const double outward = (s.p[0] - a.midline_x) > 0 ? s.normal[0] : -s.normal[0];
    switch (*s.position) {
      case Position::kLateral: EXPECT_GT(outward, 0.6); break;
      case Position::kPosterior: EXPECT_GT(s.normal[1], 0.6); break;
      case Position::kAnterior: EXPECT_LT(s.normal[1], -0.6); break;
      case Position::kApical: EXPECT_GT(s.p[2], e.lo[2] + 0.85 * (e.hi[2] - e.lo[2])); break;
      case Position::kDiaphragmatic: EXPECT_LT(s.normal[2], -0.55); break;
      case Position::kParacardiac:
      case Position::kParamediastinal: EXPECT_LT(outward, -0.55); break;
      default: break;
    }
  }
}

// What every family must satisfy: truth = lung of the lesion's side before insertion; only
// the changed voxels and the wall's partial-volume voxels differ from the clean CT; lesions do
// not overlap; classes add up.
void check_case(const FamilyCase& fc, int count) {
  const phantom::Phantom& ph = clean().ph;
  const double vml = ph.ct.geom.voxel_volume_ml();
  EXPECT_EQ(fc.lesions.size(), std::size_t(count));
  std::set<std::size_t> all_changed;
  double wall_ml = 0;
  for (const FamilyLesion& l : fc.lesions) {
    SCOPED_TRACE(l.describe());
    ASSERT_FALSE(l.truth.empty());
    EXPECT_TRUE(std::is_sorted(l.truth.begin(), l.truth.end()));
    EXPECT_TRUE(std::includes(l.changed.begin(), l.changed.end(), l.truth.begin(), l.truth.end()));
    for (std::size_t n : l.changed) {
      ASSERT_EQ(ph.lungs[n], l.lung) << "a changed voxel that was not lung of its side";
      EXPECT_TRUE(all_changed.insert(n).second) << "lesions overlap";
    }
    EXPECT_NEAR(l.truth_ml, double(l.truth.size()) * vml, 1e-9);
    EXPECT_NEAR(l.ggo_ml + l.solid_ml + l.other_ml, double(l.changed.size()) * vml, 1e-6);
    wall_ml += l.wall_ml;
  }
  std::uint64_t differ = 0, differ_outside = 0;
  for (std::size_t n = 0; n < ph.ct.size(); ++n) {
    if (fc.ct[n] == ph.ct[n]) continue;
    ++differ;
    if (!all_changed.count(n)) {
      ++differ_outside;
      EXPECT_EQ(ph.lungs[n], labels::kBackground) << "only wall voxels change outside a lesion";
    }
  }
  EXPECT_LE(double(differ_outside) * vml, wall_ml + 1e-9);
  EXPECT_GT(differ, 0u);
}

TEST(LesionFamilies, EveryFamilyMakesValidTruth) {
  for (Family f : all_families()) {
    SCOPED_TRACE(family_name(f));
    const int count = f == Family::kLobar || f == Family::kHilarMass ? 2 : 3;  // one per lung
    check_case(make(f, 1, count), count);
  }
}

TEST(LesionFamilies, SeededAndReproducible) {
  const FamilyCase a = make(Family::kRoundJuxtapleural, 7, 3);
  const FamilyCase b = make(Family::kRoundJuxtapleural, 7, 3);
  const FamilyCase c = make(Family::kRoundJuxtapleural, 8, 3);
  EXPECT_TRUE(a.ct.data == b.ct.data);
  ASSERT_EQ(a.lesions.size(), b.lesions.size());
  for (std::size_t i = 0; i < a.lesions.size(); ++i) EXPECT_EQ(a.lesions[i].truth, b.lesions[i].truth);
  EXPECT_FALSE(a.ct.data == c.ct.data);
}

TEST(LesionFamilies, RoundLesionsCoverTheSixPositionsAndSizes) {
  std::set<Position> seen;
  double smallest = 1e9, largest = 0;
  for (std::uint64_t seed : {1u, 2u}) {
    const FamilyCase fc = make(Family::kRoundJuxtapleural, seed, 3);
    for (const FamilyLesion& l : fc.lesions) {
      seen.insert(l.position);
      smallest = std::min(smallest, l.shape_ml);
      largest = std::max(largest, l.shape_ml);
      EXPECT_GE(l.depth_fraction, 0.2);
      EXPECT_LE(l.depth_fraction, 0.6);
      // Centre 20-60 % of the radius inside the lung: part of the sphere lies in the wall, and
      // most of it in the lung.
      EXPECT_LT(l.truth_ml, 0.97 * l.shape_ml) << l.describe();
      EXPECT_GT(l.truth_ml, 0.3 * l.shape_ml) << l.describe();
    }
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_LT(smallest, 15);  // stratified sizes: one small, one large per case
  EXPECT_GT(largest, 35);
}

// Appearance of a consolidation: lesion density with texture and the scan's noise inside,
// soft toward aerated lung (voxels between lung and lesion density just outside the nominal
// shape), full density right up to the wall.
TEST(LesionFamilies, ConsolidationAppearance) {
  const phantom::Phantom& ph = clean().ph;
  const Geometry& g = ph.ct.geom;
  const FamilyCase fc = make(Family::kRoundJuxtapleural, 3, 3);
  for (const FamilyLesion& l : fc.lesions) {
    SCOPED_TRACE(l.describe());
    std::set<std::size_t> truth(l.truth.begin(), l.truth.end());
    double sum = 0, sum2 = 0;
    std::uint64_t n_core = 0, margin = 0, wall_side = 0, wall_side_dense = 0;
    for (std::size_t n : l.truth) {
      const double h = fc.ct[n];
      const std::size_t i = n % g.size[0], j = (n / g.size[0]) % g.size[1];
      const std::size_t k = n / g.slice_voxels();
      bool next_to_wall = false, next_to_margin = false;
      for (const long d : {-1L, 1L}) {
        for (int ax = 0; ax < 3; ++ax) {
          long c[3] = {long(i), long(j), long(k)};
          c[ax] += d;
          if (c[ax] < 0 || c[ax] >= long(g.size[ax])) continue;
          const std::size_t m = g.index(std::size_t(c[0]), std::size_t(c[1]), std::size_t(c[2]));
          if (!is_lung(ph.lungs[m])) next_to_wall = true;
          if (is_lung(ph.lungs[m]) && !truth.count(m)) next_to_margin = true;
        }
      }
      // Against the wall, well inside the nominal sphere (away from its soft rim): full
      // density right up to the lung's old boundary.
      const auto p = g.to_physical(double(i), double(j), double(k));
      double r2 = 0;
      for (int c = 0; c < 3; ++c) r2 += std::pow(p[c] - l.centre_lps_mm[c], 2);
      const double radius = std::cbrt(3 * l.shape_ml * 1000 / (4 * 3.14159265358979));
      if (next_to_wall && std::sqrt(r2) < 0.88 * radius - 3.5) {
        ++wall_side;
        wall_side_dense += h > l.base_hu - 80;
      }
      if (!next_to_wall && !next_to_margin && l.bronchogram_segments == 0) {
        sum += h;
        sum2 += h * h;
        ++n_core;
      }
    }
    for (std::size_t n : l.changed) {
      if (truth.count(n)) continue;
      margin += fc.ct[n] > -800 && fc.ct[n] < -100;
    }
    EXPECT_GT(wall_side, 0u) << "a juxtapleural lesion touches the wall";
    EXPECT_GE(double(wall_side_dense), 0.97 * double(wall_side)) << "full density at the wall";
    EXPECT_GT(margin, 0u) << "a soft margin toward aerated lung";
    if (n_core > 30) {
      const double mean = sum / double(n_core);
      const double sd = std::sqrt(std::max(0.0, sum2 / double(n_core) - mean * mean));
      EXPECT_NEAR(mean, l.base_hu, 12);
      EXPECT_GT(sd, 0.7 * clean().anatomy.noise_hu);  // noise of the scan, plus texture
      EXPECT_LT(sd, 1.6 * clean().anatomy.noise_hu + 8);
    }
  }
}

// Partial volume at the wall: with a pleural layer of part-air voxels outside the lung (as a
// real scan has; the phantom has none), those next to a lesion become dense, the others stay.
TEST(LesionFamilies, WallPartialVolumeTakesTheLesionDensity) {
  const phantom::Phantom& ph = clean().ph;
  const Geometry& g = ph.ct.geom;
  CtImage ct = ph.ct;
  std::uint64_t layer = 0;
  for (std::size_t k = 1; k + 1 < g.size[2]; ++k)
    for (std::size_t j = 1; j + 1 < g.size[1]; ++j)
      for (std::size_t i = 1; i + 1 < g.size[0]; ++i) {
        const std::size_t n = g.index(i, j, k);
        if (ph.lungs[n] != labels::kBackground || ph.ct[n] < -200 || ph.ct[n] > 150) continue;
        if (is_lung(ph.lungs[n - 1]) || is_lung(ph.lungs[n + 1]) ||
            is_lung(ph.lungs[n - g.size[0]]) || is_lung(ph.lungs[n + g.size[0]])) {
          ct[n] = -400;
          ++layer;
        }
      }
  ASSERT_GT(layer, 1000u);
  FamilyOptions o;
  o.family = Family::kRoundJuxtapleural;
  o.seed = 1;
  o.count = 3;
  o.positions = {Position::kLateral};
  const FamilyCase fc = insert_family(ct, ph.lungs, clean().anatomy, o);
  double wall_ml = 0;
  for (const auto& l : fc.lesions) wall_ml += l.wall_ml;
  EXPECT_GT(wall_ml, 0.1);
  std::uint64_t raised = 0, still = 0;
  for (std::size_t n = 0; n < ct.size(); ++n) {
    if (ct[n] != -400 || ph.lungs[n] != labels::kBackground) continue;
    if (fc.ct[n] > -150) {
      ++raised;
    } else {
      still += fc.ct[n] == -400;
    }
  }
  EXPECT_NEAR(double(raised) * g.voxel_volume_ml(), wall_ml, 1e-6);
  EXPECT_GT(still, layer / 2) << "the layer away from the lesions is untouched";
}

TEST(LesionFamilies, BandsFollowThePleura) {
  const phantom::Phantom& ph = clean().ph;
  const Geometry& g = ph.ct.geom;
  for (Family f : {Family::kBandConsolidation, Family::kBandGroundGlass}) {
    const FamilyCase fc = make(f, 1, 4);
    ASSERT_EQ(fc.lesions.size(), 4u);
    std::set<std::pair<int, int>> where;  // (position, lung)
    for (const FamilyLesion& l : fc.lesions) {
      SCOPED_TRACE(l.describe());
      where.insert({int(l.position), int(l.lung)});
      MaskImage other(g, 0);
      for (std::size_t n = 0; n < ph.lungs.size(); ++n) other[n] = ph.lungs[n] != l.lung;
      const auto d2 = seg::squared_distance_to(other);
      double deepest = 0;
      for (std::size_t n : l.truth) deepest = std::max(deepest, double(std::sqrt(d2[n])));
      EXPECT_LE(deepest, l.thickness_mm + g.spacing[0]);
      EXPECT_GE(deepest, std::min(l.thickness_mm, 2 * g.spacing[0]) - 0.01);
      if (f == Family::kBandGroundGlass) {
        EXPECT_GT(l.ggo_ml, 0.8 * l.truth_ml);
      }
    }
    EXPECT_EQ(where.size(), 4u) << "posterior and lateral, both lungs";
  }
}

TEST(LesionFamilies, LobarConsolidationWithAirBronchograms) {
  const phantom::Phantom& ph = clean().ph;
  const Geometry& g = ph.ct.geom;
  for (std::uint64_t seed : {1u, 2u}) {
    const FamilyCase fc = make(Family::kLobar, seed, 1);
    ASSERT_EQ(fc.lesions.size(), 1u);
    const FamilyLesion& l = fc.lesions[0];
    SCOPED_TRACE(l.describe());
    EXPECT_GE(l.truth_ml, 300);
    EXPECT_GT(l.bronchogram_segments, 7);
    std::uint64_t air = 0, diaphragm = 0, posterior = 0;
    double zmean = 0;
    for (std::size_t n : l.truth) {
      air += fc.ct[n] < -700;
      const std::size_t i = n % g.size[0], j = (n / g.size[0]) % g.size[1];
      const std::size_t k = n / g.slice_voxels();
      zmean += g.to_physical(double(i), double(j), double(k))[2];
      if (k > 0 && !is_lung(ph.lungs[n - g.slice_voxels()])) ++diaphragm;
      if (j + 1 < g.size[1] && !is_lung(ph.lungs[n + g.size[0]])) ++posterior;
    }
    zmean /= double(l.truth.size());
    EXPECT_GT(double(air) * g.voxel_volume_ml(), 0.5) << "air bronchograms";
    EXPECT_LT(double(air), 0.2 * double(l.truth.size()));
    EXPECT_GT(diaphragm, 100u) << "rests on the diaphragm";
    EXPECT_GT(posterior, 100u) << "rests on the posterior wall";
    EXPECT_LT(zmean, clean().anatomy.extent(l.lung).centroid[2]) << "a lower lobe";
  }
}

TEST(LesionFamilies, HilarAndParamediastinalSitMedially) {
  const ScanAnatomy& a = clean().anatomy;
  for (Family f : {Family::kHilarMass, Family::kParamediastinal}) {
    const FamilyCase fc = make(f, 1, 2);
    for (const FamilyLesion& l : fc.lesions) {
      SCOPED_TRACE(l.describe());
      const LungExtent& e = a.extent(l.lung);
      // In the medial half of the lung's width (the centroid is no bound: a lung reaching into
      // the paravertebral gutter has its centroid medial of the heart's left border).
      const double medial = std::min(std::abs(e.lo[0] - a.midline_x), std::abs(e.hi[0] - a.midline_x));
      const double lateral = std::max(std::abs(e.lo[0] - a.midline_x), std::abs(e.hi[0] - a.midline_x));
      // Against the heart the left lung's medial surface lies lateral (the heart's left
      // border, 70-80 mm from the midline in the phantom): there, inside the lung's width.
      const double bound = l.position == Position::kParacardiac ? lateral : 0.5 * (medial + lateral);
      EXPECT_LT(std::abs(l.centre_lps_mm[0] - a.midline_x), bound);
      if (f == Family::kHilarMass) {
        EXPECT_EQ(l.position, Position::kHilar);
        double d = 0;
        for (int c = 0; c < 3; ++c) d += std::pow(l.centre_lps_mm[c] - e.hilum[c], 2);
        EXPECT_LT(std::sqrt(d), 45);
      }
    }
  }
}

}  // namespace
}  // namespace lungvol::test
