// The dense pathology stress suite of issue #15: does dense pathology stay in the lung mask?
// Families of lesions (tests/support/lesion_families.hpp) at seeded random positions in POPI,
// CIP ct-64 and POPI at 1 mm slices, and the phantom severity series, measured against the
// inserted truth with the issue's targets (docs/validation.md, "Dense pathology stress suite").
//
// Expected-failure bookkeeping. The lung segmentation is being rewritten for #15, and several
// families fail the targets today. kFamilyTargets holds, per family, the target and whether
// the family is known to be below it today:
//   - a family not marked below target must meet every target: a miss fails the test (a
//     regression);
//   - a family marked below target prints "BELOW TARGET" lines and a summary, and fails only
//     under LUNGVOL_FAMILIES_STRICT=1 (which the lead turns on when the new segmentation
//     lands; then every target is enforced for every family);
//   - a marked family that meets all targets prints "NOW MEETS TARGET": remove its mark.
// What is asserted whatever the mode: that the lesions were made as specified (placed, sized,
// classed, truth inside the clean lung), the clean controls, and that the suite ran.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <memory>

#include "core/labels.hpp"
#include "core/protocol.hpp"
#include "io/image_io.hpp"
#include "segmentation/lung_base.hpp"
#include "tests/support/stress_suite.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::test {
namespace {

// The issue's targets (#15, "How to prove it"), one place for all thresholds.
const stress::Targets kTargets{};

struct FamilyTarget {
  const char* family;
  double min_inside_required;  // fraction of each lesion's truth inside the lung mask
  bool below_target_today;     // expected failure on this branch's segmentation
  // Every lesion below the inside target must be on a scan with a dense-tissue flag ("never
  // silently wrong"); enforced whatever the mode.
  bool no_silent_miss = false;
};
// Measured on main 57d65af (docs/validation.md, "Dense pathology stress suite", "before").
constexpr FamilyTarget kFamilyTargets[] = {
    {"round_juxtapleural", 0.95, true},
    {"band_consolidation", 0.95, true},
    {"band_ground_glass", 0.95, true},
    {"lobar", 0.95, true, true},
    {"paramediastinal", 0.95, true},
    {"hilar_mass", 0.95, true},
    {"phantom_severity", 0.95, true},
};
// The clean scans' lung volumes on main 57d65af (mL): the rewritten segmentation must stay
// within kTargets.clean_volume_rel of them (#15: "within 1 % of today's").
const std::map<std::string, double> kCleanLungMl = {
    {"popi", 5248.1}, {"cip", 4533.8}, {"popi_1mm", 5237.8}};

bool strict() {
  const char* env = std::getenv("LUNGVOL_FAMILIES_STRICT");
  return env && std::string(env) == "1";
}

const FamilyTarget& target_of(const std::string& family) {
  for (const auto& t : kFamilyTargets) {
    if (family == t.family) return t;
  }
  throw std::runtime_error("no target entry for family " + family);
}

// A target that was missed: a failure for a family that should meet it (or in strict mode),
// otherwise a BELOW TARGET line.
struct TargetBook {
  const FamilyTarget& target;
  int misses = 0;
  void check(bool met, const std::string& what) {
    if (met) return;
    ++misses;
    if (strict() || !target.below_target_today) {
      ADD_FAILURE() << target.family << ": target missed: " << what;
    } else {
      std::printf("BELOW TARGET  %s: %s\n", target.family, what.c_str());
    }
  }
  void finish(std::size_t checked) {
    if (target.below_target_today && misses == 0 && checked > 0) {
      std::printf("NOW MEETS TARGET  %s: every target met; remove its below_target_today mark "
                  "in kFamilyTargets\n",
                  target.family);
    }
    std::printf("%s: %d target misses (%s)\n", target.family, misses,
                strict() ? "strict: failures"
                         : (target.below_target_today ? "marked below target today: reported"
                                                      : "not marked: failures"));
  }
};

Protocol protocol() {
  setenv("LUNGVOL_PROTOCOL_DIR", (source_dir() + "/protocols").c_str(), 1);
  return load_protocol(kDefaultProtocol);
}

// One clean run per scan and process (and across processes, through the cache).
const stress::ScanCase& scan(const std::string& name) {
  static std::map<std::string, std::unique_ptr<stress::ScanCase>> cases;
  auto& c = cases[name];
  if (!c) {
    c = std::make_unique<stress::ScanCase>(stress::load_case(name, protocol()));
    std::printf("%s: clean lungs %.1f mL, ground-glass %.2f, solid %.2f mL (%s %.1f s); noise "
                "%.1f HU; surface points lateral %zu anterior %zu posterior %zu paravertebral "
                "%zu apical %zu diaphragmatic %zu paramediastinal %zu paracardiac %zu hilar %zu\n",
                c->description.c_str(), c->lung_ml, c->ggo_ml, c->solid_ml,
                c->from_cache ? "cached run of" : "segmented in", c->clean_seconds,
                c->anatomy.noise_hu, c->anatomy.count(Position::kLateral),
                c->anatomy.count(Position::kAnterior), c->anatomy.count(Position::kPosterior),
                c->anatomy.count(Position::kParavertebral), c->anatomy.count(Position::kApical),
                c->anatomy.count(Position::kDiaphragmatic),
                c->anatomy.count(Position::kParamediastinal),
                c->anatomy.count(Position::kParacardiac), c->anatomy.count(Position::kHilar));
  }
  return *c;
}

#define REQUIRE_SUITE_DATA()                                   \
  do {                                                         \
    LUNGVOL_REQUIRE_DATA(stress::case_data("popi"));           \
    LUNGVOL_REQUIRE_DATA(stress::case_data("cip"));            \
  } while (0)

// The lesions are what the family promises: a check of the generator on the real scans.
void expect_made_as_specified(const stress::CaseRun& run, int count) {
  EXPECT_EQ(run.lesions.size(), std::size_t(count))
      << run.case_name << " seed " << run.seed << ": lesions placed";
  for (const auto& n : run.notes) std::printf("  note: %s\n", n.c_str());
  for (const auto& r : run.lesions) {
    const FamilyLesion& l = r.lesion;
    SCOPED_TRACE(run.case_name + ": " + l.describe());
    EXPECT_GT(l.truth_ml, 0.4);
    const double changed = l.ggo_ml + l.solid_ml + l.other_ml;
    EXPECT_GE(changed, l.truth_ml * 0.999);
    if (l.inserted == InsertedClass::kConsolidation) {
      EXPECT_GE(l.base_hu, 20);
      EXPECT_LE(l.base_hu, 40);
      // Mostly solid; the soft margin toward aerated lung reads as ground-glass.
      EXPECT_GT(l.solid_ml, 0.5 * l.truth_ml);
    } else {
      EXPECT_GE(l.base_hu, -650);
      EXPECT_LE(l.base_hu, -350);
      EXPECT_GT(l.ggo_ml, 0.5 * l.truth_ml);
    }
    switch (l.family) {
      case Family::kRoundJuxtapleural:
        EXPECT_GE(l.shape_ml, 5 * 0.68);  // 5-100 mL spheres, axes jittered by up to 12 %
        EXPECT_LE(l.shape_ml, 100 * 1.41);
        EXPECT_GE(l.depth_fraction, 0.2);
        EXPECT_LE(l.depth_fraction, 0.6);
        if (l.shape_ml >= 40) {
          EXPECT_GT(l.bronchogram_segments, 0);
        }
        break;
      case Family::kBandConsolidation:
      case Family::kBandGroundGlass:
        EXPECT_GE(l.thickness_mm, 3);
        EXPECT_LE(l.thickness_mm, 20);
        EXPECT_GE(l.length_mm, 40);
        break;
      case Family::kLobar:
        EXPECT_GE(l.truth_ml, 300);
        EXPECT_GT(l.bronchogram_ml, 0.5);
        EXPECT_EQ(l.position, Position::kLowerLobe);
        break;
      default:
        break;
    }
  }
}

// One family on every case (one run per case), with the per-family summary. A helper, not a
// parameterised test: the test names stay StressSuite.<Family>.
void run_family_test(Family family) {
  const std::string name = family_name(family);
  TargetBook book{target_of(name)};
  const Protocol proto = protocol();
  stress::Targets targets = kTargets;
  targets.min_inside = book.target.min_inside_required;
  const int count = stress::default_count(family);
  std::vector<stress::CaseRun> runs;
  for (const std::string& c : stress::case_names()) {
    const stress::ScanCase& sc = scan(c);
    {
      const std::uint64_t seed = stress::case_seed(c);
      runs.push_back(stress::run_family(sc, family, seed, count, proto, targets));
      const stress::CaseRun& run = runs.back();
      std::printf("%s %s seed %llu: %zu lesions, inserted %.1f s, segmented %.1f s; lungs %.1f "
                  "-> %.1f mL; ground-glass %+.2f mL (inserted %.2f), solid %+.2f mL (inserted "
                  "%.2f)\n",
                  name.c_str(), c.c_str(), static_cast<unsigned long long>(seed),
                  run.lesions.size(), run.insert_seconds, run.segment_seconds, run.lung_ml_clean,
                  run.lung_ml_after, run.ggo_increase_ml, run.inserted_ggo_ml,
                  run.solid_increase_ml, run.inserted_solid_ml);
      expect_made_as_specified(run, count);
      for (const auto& r : run.lesions) {
        const FamilyLesion& l = r.lesion;
        std::printf("  %-44s inside %5.1f %% | ground-glass %7.2f / %7.2f mL | solid %7.2f / "
                    "%7.2f mL (measured / inserted)%s\n",
                    (c + " " + position_name(l.position) + " " +
                     (l.lung == labels::kRightLung ? "R" : "L") + " #" + std::to_string(l.seed) +
                     "." + std::to_string(l.index) + " " + std::to_string(int(l.truth_ml + 0.5)) +
                     " mL")
                        .c_str(),
                    100 * r.inside, r.measured_ggo_ml, l.ggo_ml, r.measured_solid_ml, l.solid_ml,
                    r.ok() ? "" : "  (below target)");
        const std::string who = c + " " + l.describe();
        char what[256];
        std::snprintf(what, sizeof what, ": %.1f %% inside the lung mask (target %.0f %%)",
                      100 * r.inside, 100 * targets.min_inside);
        book.check(r.inside_ok, who + what);
        std::snprintf(what, sizeof what,
                      ": ground-glass measured %.2f mL, inserted %.2f mL (tolerance %.2f mL)",
                      r.measured_ggo_ml, l.ggo_ml, stress::class_tolerance_ml(l.ggo_ml, targets));
        book.check(r.ggo_ok, who + what);
        std::snprintf(what, sizeof what,
                      ": solid measured %.2f mL, inserted %.2f mL (tolerance %.2f mL)",
                      r.measured_solid_ml, l.solid_ml,
                      stress::class_tolerance_ml(l.solid_ml, targets));
        book.check(r.solid_ok, who + what);
      }
    }
  }
  // Every position of the family appears on every scan.
  if (family == Family::kRoundJuxtapleural || family == Family::kParamediastinal) {
    for (const std::string& c : stress::case_names()) {
      std::set<int> seen;
      for (const auto& run : runs)
        for (const auto& r : run.lesions)
          if (r.case_name == c) seen.insert(int(r.lesion.position));
      EXPECT_EQ(seen.size(), family == Family::kRoundJuxtapleural ? 6u : 2u) << c;
    }
  }
  const stress::FamilySummary s = stress::summarise(name, runs);
  std::printf("\n%s: %zu lesions in %zu cases; inside >= %.0f %%: %zu; worst %.1f %% (%s); "
              "median %.1f %%; ground-glass within tolerance %zu, solid %zu; all targets %zu; "
              "worst errors ground-glass %+.2f mL, solid %+.2f mL; %.1f s\n",
              name.c_str(), s.lesions, s.cases, 100 * targets.min_inside, s.inside_ok,
              100 * s.worst_inside, s.worst_lesion.c_str(), 100 * s.median_inside, s.ggo_ok,
              s.solid_ok, s.all_ok, s.worst_ggo_err_ml, s.worst_solid_err_ml, s.seconds);
  std::printf("\n%s\n", stress::markdown_summary({s}, targets).c_str());
  ::testing::Test::RecordProperty("lesions", int(s.lesions));
  ::testing::Test::RecordProperty("lesions_passing", int(s.all_ok));
  ::testing::Test::RecordProperty("inside_passing", int(s.inside_ok));
  ::testing::Test::RecordProperty("worst_inside_pct", std::to_string(100 * s.worst_inside));
  ::testing::Test::RecordProperty("median_inside_pct", std::to_string(100 * s.median_inside));
  ::testing::Test::RecordProperty("worst_lesion", s.worst_lesion);
  ::testing::Test::RecordProperty("worst_ggo_error_ml", std::to_string(s.worst_ggo_err_ml));
  ::testing::Test::RecordProperty("worst_solid_error_ml", std::to_string(s.worst_solid_err_ml));
  const std::string out = stress::output_dir();
  stress::write_lesion_csv(out + "/lesions_" + name + ".csv", runs);
  stress::write_summary_csv(out + "/summary_" + name + ".csv", {s});
  std::printf("written: %s/lesions_%s.csv, %s/summary_%s.csv\n", out.c_str(), name.c_str(),
              out.c_str(), name.c_str());
  EXPECT_EQ(s.lesions, std::size_t(count) * stress::case_names().size());
  if (book.target.no_silent_miss) {
    EXPECT_EQ(s.silent_misses, 0u) << name << ": lesions left out of the lung mask on scans "
                                   << "without a dense-tissue flag";
  }
  book.finish(s.lesions);
}

TEST(StressSuite, RoundJuxtapleural) {
  REQUIRE_SUITE_DATA();
  run_family_test(Family::kRoundJuxtapleural);
}
TEST(StressSuite, BandConsolidation) {
  REQUIRE_SUITE_DATA();
  run_family_test(Family::kBandConsolidation);
}
TEST(StressSuite, BandGroundGlass) {
  REQUIRE_SUITE_DATA();
  run_family_test(Family::kBandGroundGlass);
}
TEST(StressSuite, Lobar) {
  REQUIRE_SUITE_DATA();
  run_family_test(Family::kLobar);
}
TEST(StressSuite, Paramediastinal) {
  REQUIRE_SUITE_DATA();
  run_family_test(Family::kParamediastinal);
}
TEST(StressSuite, HilarMass) {
  REQUIRE_SUITE_DATA();
  run_family_test(Family::kHilarMass);
}

// The clean-scan control: a method that takes in chest wall passes every lesion test, so the
// unaltered scans must keep their lung volume, and CIP its agreement with the reference mask.
TEST(StressSuiteClean, LungVolumeAndCipDice) {
  REQUIRE_SUITE_DATA();
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/wholeLung-64.nrrd");
  for (const std::string& c : stress::case_names()) {
    const stress::ScanCase& sc = scan(c);
    const double ref = kCleanLungMl.at(c);
    const double rel = (sc.lung_ml - ref) / ref;
    std::printf("clean %s: lungs %.1f mL, stored reference %.1f mL (%+.2f %%)\n", c.c_str(),
                sc.lung_ml, ref, 100 * rel);
    RecordProperty("lung_ml_" + c, std::to_string(sc.lung_ml));
    EXPECT_LE(std::abs(rel), kTargets.clean_volume_rel)
        << c << ": clean lung volume " << sc.lung_ml << " mL vs stored " << ref << " mL";
    // No false alarm of the base check on a clean lung (segmentation/lung_base.hpp).
    for (const std::uint8_t lung : {labels::kRightLung, labels::kLeftLung}) {
      const seg::LungBase b = seg::lung_base(sc.lungs, lung);
      std::printf("clean %s %s lung: base rise %.1f mm (limit %.1f mm)\n", c.c_str(),
                  lung == labels::kRightLung ? "right" : "left", b.rise_mm(),
                  seg::base_rise_flag_mm(sc.lungs.geom.spacing[2]));
      EXPECT_LE(b.rise_mm(), seg::base_rise_flag_mm(sc.lungs.geom.spacing[2])) << c;
    }
  }
  const stress::ScanCase& cip = scan("cip");
  const LabelImage ref =
      io::read_label_image(shared_data("cip-chest-imaging-platform/wholeLung-64.nrrd"));
  ASSERT_EQ(ref.size(), cip.lungs.size());
  std::uint64_t a = 0, b = 0, both = 0;
  for (std::size_t n = 0; n < ref.size(); ++n) {
    const bool mine = cip.lungs[n] == labels::kRightLung || cip.lungs[n] == labels::kLeftLung;
    a += mine;
    b += ref[n] != 0;
    both += mine && ref[n] != 0;
  }
  const double dice = 2.0 * double(both) / double(a + b);
  std::printf("clean cip: Dice %.4f vs wholeLung-64 (target >= %.2f)\n", dice, kTargets.cip_dice);
  RecordProperty("cip_dice", std::to_string(dice));
  EXPECT_GE(dice, kTargets.cip_dice);
}

// The phantom severity series: lungvol phantom --lesion-scale 0.5 ... 3.0 against truth.json.
TEST(StressSuiteSeverity, PhantomLesionScale) {
  TargetBook book{target_of("phantom_severity")};
  const Protocol proto = protocol();
  std::vector<stress::SeverityPoint> points;
  for (const double scale : stress::severity_scales()) {
    points.push_back(stress::run_severity(scale, proto));
    const auto& p = points.back();
    std::printf("scale %.1f: lesion %.2f %% (truth %.2f), ground-glass %.2f %% (%.2f), solid "
                "%.2f %% (%.2f); lesion inside the lung mask %.1f %%; lungs %+.2f %%; %.1f s\n",
                p.scale, p.lesion_pct, p.truth_lesion_pct, p.ggo_pct, p.truth_ggo_pct,
                p.solid_pct, p.truth_solid_pct, 100 * p.lesion_inside,
                100 * p.rel(p.lung_ml, p.truth_lung_ml), p.seconds);
    char what[256];
    std::snprintf(what, sizeof what,
                  "scale %.1f: lesion %+.1f %%, ground-glass %+.1f %%, solid %+.1f %% of truth "
                  "(target within %.0f %%)",
                  p.scale, 100 * p.rel(p.lesion_pct, p.truth_lesion_pct),
                  100 * p.rel(p.ggo_pct, p.truth_ggo_pct),
                  100 * p.rel(p.solid_pct, p.truth_solid_pct), 100 * kTargets.severity_rel);
    book.check(p.ok(kTargets), what);
    std::snprintf(what, sizeof what, "scale %.1f: %.1f %% of the lesions inside the lung mask",
                  p.scale, 100 * p.lesion_inside);
    book.check(p.lesion_inside >= book.target.min_inside_required, what);
    // The truth itself: the series grows with the scale.
    if (points.size() > 1) {
      EXPECT_GT(p.truth_lesion_pct, points[points.size() - 2].truth_lesion_pct);
      EXPECT_GT(p.truth_solid_pct, points[points.size() - 2].truth_solid_pct);
    }
    EXPECT_GT(p.lesion_pct, 0.0);
  }
  std::printf("\n%s\n", stress::markdown_severity(points, kTargets).c_str());
  stress::write_severity_csv(stress::output_dir() + "/severity.csv", points);
  std::size_t ok = 0;
  for (const auto& p : points) ok += p.ok(kTargets);
  RecordProperty("scales_within_target", int(ok));
  book.finish(points.size());
}

}  // namespace
}  // namespace lungvol::test
