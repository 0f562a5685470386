#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"
#include "core/protocol.hpp"
#include "tests/support/minimal_protocol.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol {
namespace {

const char* const kMinimal = test::kMinimalProtocol;

TEST(Protocol, ParsesBandsAndDerivesSplit) {
  const Protocol p = parse_protocol(kMinimal, "inline");
  EXPECT_EQ(p.name, "t");
  EXPECT_DOUBLE_EQ(p.lesion.low_hu(), -700);
  EXPECT_DOUBLE_EQ(p.lesion.split_hu(), -300);
  EXPECT_DOUBLE_EQ(p.lesion.high_hu(), 100);
  EXPECT_TRUE(p.lesion.solid.contains(-300));   // half-open: -300 is solid
  EXPECT_FALSE(p.lesion.ground_glass.contains(-300));
  EXPECT_EQ(p.sha256.size(), 64u);
}

TEST(Protocol, RejectsNonContiguousLesionGroups) {
  std::string text = kMinimal;
  text.replace(text.find("lo_hu = -300"), 12, "lo_hu = -250");
  try {
    parse_protocol(text, "bad.toml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kProtocol);
    EXPECT_NE(std::string(e.what()).find("bad.toml"), std::string::npos);
  }
}

TEST(Protocol, RejectsUnknownClassAndSyntaxErrors) {
  std::string text = kMinimal;
  text.replace(text.find("solid = [\"s\"]"), 13, "solid = [\"x\"]");
  EXPECT_THROW(parse_protocol(text, "x.toml"), Error);
  EXPECT_THROW(parse_protocol("name = ", "syntax.toml"), Error);
}

TEST(Protocol, CalibrationRangesAreValidated) {
  const std::string text = std::string(kMinimal) + "[calibration]\noutside_air_hu = [-970, -1005]\n";
  try {
    parse_protocol(text, "cal.toml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kProtocol);
    EXPECT_NE(std::string(e.what()).find("calibration.outside_air_hu"), std::string::npos);
  }
  EXPECT_THROW(parse_protocol(std::string(kMinimal) + "[calibration]\ntrachea_air_hu = [-1000]\n",
                              "cal.toml"),
               Error);
}

// Issue #19 item 8 / #16: every key required or defaulted in the documented way, every value
// finite and in range, unknown keys and sections refused with file, line and key (exit 5).
std::string protocol_error(const std::string& text) {
  try {
    parse_protocol(text, "site.toml");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kProtocol) << e.what();
    EXPECT_NE(std::string(e.what()).find("site.toml"), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted:\n" << text;
  return {};
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Line of `needle` in kMinimal (1-based), as the message must name it.
std::string line_of(const std::string& text, const std::string& needle) {
  const auto at = text.find(needle);
  return "line " + std::to_string(1 + std::count(text.begin(), text.begin() + long(at), '\n'));
}

TEST(ProtocolSchema, MissingRequiredKeyIsNamedNotDefaulted) {
  // Was: a code default (vessel_radius_mm 1.5 mm where the shipped files said 4.0) used
  // without a word.
  const std::string text = replaced(kMinimal, "min_lesion_mm3 = 20.0\n", "");
  const std::string msg = protocol_error(text);
  EXPECT_TRUE(has(msg, "missing key 'lesion.min_lesion_mm3'")) << msg;
  EXPECT_TRUE(has(msg, line_of(text, "[lesion]"))) << msg;
  const std::string no_lung = protocol_error(replaced(kMinimal, "min_lung_ml = 100\n", ""));
  EXPECT_TRUE(has(no_lung, "missing key 'lung.min_lung_ml'")) << no_lung;
  // A whole section missing.
  std::string no_dens = kMinimal;
  no_dens = replaced(no_dens, "[densitometry]\nlaa_hu = [-950, -910, -856]\nhaa_hu = [-600, -250]\npercentiles = [10, 15]\n", "");
  const std::string m2 = protocol_error(no_dens);
  EXPECT_TRUE(has(m2, "missing key 'densitometry.laa_hu' (no [densitometry] section)")) << m2;
}

TEST(ProtocolSchema, NonFiniteAndOutOfRangeValuesAreRefused) {
  struct Case {
    std::string from, to, expect;
  };
  const std::vector<Case> cases = {
      {"min_lesion_mm3 = 20.0", "min_lesion_mm3 = nan", "'lesion.min_lesion_mm3' = nan must be a finite number in [0, 100000] mm3"},
      {"laa_hu = [-950, -910, -856]", "laa_hu = [nan, -910]", "'densitometry.laa_hu[0]' = nan must be a finite number"},
      {"percentiles = [10, 15]", "percentiles = [nan, 15]", "'densitometry.percentiles[0]' = nan"},
      {"min_lung_ml = 100", "min_lung_ml = 1e308", "'lung.min_lung_ml' = 1e+308 is outside [1, 2000] mL"},
      {"air_max_hu = -500", "air_max_hu = nan", "'lung.air_max_hu' = nan must be a finite number"},
      {"air_max_hu = -500", "air_max_hu = inf", "'lung.air_max_hu' = inf must be a finite number"},
      {"vessel_radius_mm = 4.0", "vessel_radius_mm = -1", "'lesion.vessel_radius_mm' = -1 is outside [0, 20] mm"},
      {"vessel_radius_mm = 4.0", "vessel_scales_mm = [1, 0.25]", "'lesion.vessel_scales_mm[1]' = 0.25 is outside [0.5, 20] mm"},
      {"vessel_radius_mm = 4.0", "vessel_scales_mm = [1, 1]", "'lesion.vessel_scales_mm' lists 1 twice"},
      {"vessel_radius_mm = 4.0", "vessel_scales_mm = []", "'lesion.vessel_scales_mm' must list 1 to 10 values"},
      {"vessel_radius_mm = 4.0", "vesselness_threshold_hu = 0", "'lesion.vesselness_threshold_hu' = 0 is outside [1, 1000] HU"},
      {"lo_hu = -700", "lo_hu = -inf", "'classes.g.lo_hu' = -inf must be a finite number"},
      {"laa_hu = [-950, -910, -856]", "laa_hu = [-950.5]", "must be a whole number (it names a metric)"},
      {"laa_hu = [-950, -910, -856]", "laa_hu = [-950, -950]", "lists -950 twice"},
      {"laa_hu = [-950, -910, -856]", "laa_hu = []", "must list 1 to 10 values"},
      {"haa_hu = [-600, -250]", "haa_hu = [-600, nan]", "'densitometry.haa_hu[1]' = nan"},
      {"bone_min_hu = 250", "bone_min_hu = true", "'lung.bone_min_hu' must be a number"},
      {"closing_radius_mm = 30", "closing_radius_mm = 61", "is outside [0, 60] mm"},
  };
  for (const auto& c : cases) {
    const std::string text = replaced(kMinimal, c.from, c.to);
    const std::string msg = protocol_error(text);
    EXPECT_TRUE(has(msg, c.expect)) << c.to << " -> " << msg;
    EXPECT_TRUE(has(msg, line_of(text, c.to))) << c.to << " -> " << msg;
  }
}

TEST(ProtocolSchema, UnknownKeysAndSectionsAreRefusedWithFileLineAndKey) {
  // Was: ignored, and the default used (solid 0.68 % -> 0.92 %).
  const std::string typo = replaced(kMinimal, "vessel_radius_mm = 4.0", "vessel_radius_mm = 4.0\nvessel_radius = 2.0");
  std::string msg = protocol_error(typo);
  EXPECT_TRUE(has(msg, "unknown key 'lesion.vessel_radius'")) << msg;
  EXPECT_TRUE(has(msg, line_of(typo, "vessel_radius = 2.0"))) << msg;
  EXPECT_TRUE(has(msg, "vessel_radius_mm")) << msg;  // the keys it could have meant

  const std::string section = std::string(kMinimal) + "[lesoin]\nmin_lesion_mm3 = 5\n";
  msg = protocol_error(section);
  EXPECT_TRUE(has(msg, "unknown section [lesoin]")) << msg;
  EXPECT_TRUE(has(msg, line_of(section, "[lesoin]"))) << msg;

  msg = protocol_error("threshold = 3\n" + std::string(kMinimal));
  EXPECT_TRUE(has(msg, "line 1: unknown key 'threshold'")) << msg;
  msg = protocol_error(std::string(kMinimal) + "threshold = 3\n");  // below [lesion]: its key
  EXPECT_TRUE(has(msg, "unknown key 'lesion.threshold'")) << msg;
  msg = protocol_error(replaced(kMinimal, "hi_hu = -300", "hi_hu = -300\nhigh_hu = -250"));
  EXPECT_TRUE(has(msg, "unknown key 'classes.high_hu'")) << msg;
  msg = protocol_error(std::string(kMinimal) + "[calibration]\noutside_air = [-1005, -970]\n");
  EXPECT_TRUE(has(msg, "unknown key 'calibration.outside_air'")) << msg;
}

TEST(ProtocolSchema, OptionalCalibrationTakesItsDocumentedDefaults) {
  const Protocol p = parse_protocol(kMinimal, "inline");
  EXPECT_EQ(p.air_check.outside_air.lo_hu, -1005);
  EXPECT_EQ(p.air_check.outside_air.hi_hu, -970);
  EXPECT_EQ(p.defaulted, (std::vector<std::string>{"description", "references", "lung.fat_hu",
                                                    "lung.left_out_flag_pct",
                                                    "lesion.vessel_scales_mm",
                                                    "lesion.vesselness_threshold_hu",
                                                    "calibration.outside_air_hu",
                                                    "calibration.trachea_air_hu",
                                                    "calibration.source"}));
  EXPECT_DOUBLE_EQ(p.lesion.vessel_radius_mm, 4.0);
  EXPECT_DOUBLE_EQ(p.lesion.min_lesion_mm3, 20.0);
  // The dense-pathology settings of protocols older than them (docs/protocols.md).
  EXPECT_EQ(p.lung.fat_hu.lo_hu, -200);
  EXPECT_EQ(p.lung.fat_hu.hi_hu, -40);
  EXPECT_DOUBLE_EQ(p.lung.left_out_flag_pct, 2.0);
  // Vessel suppression by shape (protocol 1.2.0) for protocols older than it; their
  // vessel_radius_mm is read and not used.
  EXPECT_EQ(p.lesion.vessel_scales_mm, (std::vector<double>{1.0, 1.5, 2.0, 3.0}));
  EXPECT_DOUBLE_EQ(p.lesion.vesselness_threshold_hu, 25);
}

TEST(ProtocolSchema, ShowPrintsEverySettingAndReadsBackIdentically) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  for (const Protocol& p : list_builtin_protocols()) {
    // The shipped files set every key but the superseded vessel_radius_mm.
    EXPECT_EQ(p.defaulted, std::vector<std::string>{"lesion.vessel_radius_mm"}) << p.name;
    const std::string shown = describe_protocol(p);
    for (const char* key : {"air_max_hu = -500", "fill_max_hu = 200", "closing_radius_mm = 30",
                            "chest_wall_mm = 15", "bone_min_hu = 250", "min_lung_ml = 100",
                            "min_lesion_mm3 = 20", "vessel_scales_mm = [1, 1.5, 2, 3]",
                            "vesselness_threshold_hu = 25", "laa_hu = [-950, -910, -856]",
                            "haa_hu = [-600, -250]", "percentiles = [10, 15]",
                            "outside_air_hu = [-1005, -970]", "trachea_air_hu = [-1005, -970]",
                            "[[classes]]", "sha256: "}) {
      EXPECT_TRUE(has(shown, key)) << p.name << ": " << key << "\n" << shown;
    }
    // What --show prints is itself a valid protocol with the same settings.
    const Protocol back = parse_protocol(shown, "shown.toml");
    EXPECT_EQ(describe_protocol(back).substr(describe_protocol(back).find("\n[lung]")),
              shown.substr(shown.find("\n[lung]")))
        << p.name;
  }
  const Protocol minimal = parse_protocol(kMinimal, "inline");
  const std::string shown = describe_protocol(minimal);
  EXPECT_TRUE(has(shown, "outside_air_hu = [-1005, -970]")) << shown;
  EXPECT_TRUE(has(shown, "(default)")) << shown;
}

TEST(Protocol, SweepMovesThresholds) {
  const Protocol p = parse_protocol(kMinimal, "inline").with_lesion_thresholds(-650, -250);
  EXPECT_DOUBLE_EQ(p.lesion.low_hu(), -650);
  EXPECT_DOUBLE_EQ(p.lesion.split_hu(), -250);
  EXPECT_DOUBLE_EQ(p.lesion.high_hu(), 100);
  EXPECT_THROW(p.with_lesion_thresholds(-200, -300), Error);
}

TEST(Protocol, BuiltinProtocolsLoad) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  const auto all = list_builtin_protocols();
  ASSERT_GE(all.size(), 3u);
  const Protocol def = load_protocol(kDefaultProtocol);
  EXPECT_DOUBLE_EQ(def.lesion.split_hu(), -300);
  // Every built-in protocol checks air against the ACR phantom criterion, -1005..-970 HU.
  for (const Protocol& p : all) {
    EXPECT_EQ(p.air_check.outside_air.lo_hu, -1005) << p.name;
    EXPECT_EQ(p.air_check.outside_air.hi_hu, -970) << p.name;
    EXPECT_EQ(p.air_check.trachea.lo_hu, -1005) << p.name;
    EXPECT_EQ(p.air_check.trachea.hi_hu, -970) << p.name;
    EXPECT_NE(p.air_check.source.find("ACR"), std::string::npos) << p.name;
  }
  const Protocol lcta = load_protocol("slicer-lcta");
  EXPECT_DOUBLE_EQ(lcta.lesion.low_hu(), -750);
  EXPECT_DOUBLE_EQ(lcta.lesion.split_hu(), -400);
  EXPECT_DOUBLE_EQ(lcta.lesion.high_hu(), 0);
  const Protocol ards = load_protocol("ards-aeration");
  EXPECT_DOUBLE_EQ(ards.lesion.low_hu(), -500);
  EXPECT_DOUBLE_EQ(ards.lesion.split_hu(), -100);
  EXPECT_THROW(load_protocol("no-such-protocol"), Error);
}

}  // namespace
}  // namespace lungvol
