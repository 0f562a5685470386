#include <gtest/gtest.h>

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
