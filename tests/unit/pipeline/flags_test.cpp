// QC flags as data (pipeline/flags.hpp): each cause once, the score, what metrics.json says.
#include <gtest/gtest.h>

#include <set>

#include "pipeline/flags.hpp"

namespace lungvol::pipeline {
namespace {

std::vector<std::string> codes(const std::vector<QcFlag>& flags) {
  std::vector<std::string> out;
  for (const auto& f : flags) out.push_back(f.code);
  return out;
}

TEST(QcFlags, OneCalibrationProblemIsOneFlag) {
  // Both references out of tolerance, and analyze's "calibration: ..." warnings in input.warnings:
  // before, this counted three times (two warnings and the calibration flag).
  const auto m = nlohmann::json::parse(R"({
    "input": {"warnings": ["calibration: outside_air_out_of_tolerance", "calibration: trachea_out_of_tolerance"]},
    "calibration": {"checked": true, "within_tolerance": false, "expected_air_hu": -1000,
                    "outside_air": {"mean_hu": -960}, "trachea": {"mean_hu": -1012},
                    "flags": ["outside_air_out_of_tolerance", "trachea_out_of_tolerance"]}})");
  const auto f = scan_flags(m);
  ASSERT_EQ(codes(f), std::vector<std::string>{"calibration"});
  EXPECT_EQ(f[0].severity, "warn");
  EXPECT_EQ(f[0].cause, "calibration");
  EXPECT_DOUBLE_EQ(*f[0].value, 40.0);  // the larger deviation: -960 is 40 HU off
  EXPECT_EQ(f[0].unit, "HU");
  EXPECT_NE(f[0].message.find("trachea_out_of_tolerance"), std::string::npos);
  EXPECT_EQ(qc_score(f), 20);
}

TEST(QcFlags, DenseTissueCoverageMasksAndWarnings) {
  auto m = nlohmann::json::parse(R"({
    "lungs": {"dense": {"left_out_ml": 42.5, "left_out_pct": 1.4}},
    "input": {"coverage": {"cut_at_first_slice": false, "cut_at_last_slice": true, "boundary_fraction": 0.031},
              "warnings": ["slice spacing varies", "slice spacing varies", "DICOM SEG/SR not written: x"]},
    "segmentation": {"lungs": "given", "lungs_mask": {"path": "/r/lungs.nii.gz"}, "lesions": "computed",
                     "end_slices": {"lung_voxels": 10, "lesion_voxels": 3, "lung_fraction": 0.001}}})");
  auto f = scan_flags(m);
  EXPECT_EQ(codes(f), (std::vector<std::string>{"dense_left_out", "coverage_cut", "lesion_at_border",
                                                "given_masks", "input_warning"}));
  EXPECT_DOUBLE_EQ(*f[0].value, 1.4);
  EXPECT_EQ(f[0].unit, "%");
  EXPECT_NE(f[1].message.find("last slice"), std::string::npos);
  EXPECT_DOUBLE_EQ(*f[1].value, 0.031);
  EXPECT_DOUBLE_EQ(*f[2].value, 3.0);
  EXPECT_NE(f[3].message.find("/r/lungs.nii.gz"), std::string::npos);
  EXPECT_DOUBLE_EQ(*f[4].value, 1.0);  // one distinct warning; the SEG/SR note is not counted
  // coverage_cut and lesion_at_border share a cause: counted once (20, not 30).
  EXPECT_EQ(qc_score(f), 30 + 20 + 5 + 5);
  EXPECT_EQ(flag_codes(f), "dense_left_out;coverage_cut;lesion_at_border;given_masks;input_warning");

  // The segmentation's own verdict (segmentation.dense, the protocol's threshold) decides when
  // present; its warnings are not counted again as input warnings.
  {
    auto d = nlohmann::json::parse(R"({
      "segmentation": {"dense": {"left_out_ml": 90.0, "left_out_pct": 2.4, "flag_threshold_pct": 2.0,
                                 "left_out_flagged": true, "blobs_flagged": false, "flagged": true}},
      "input": {"warnings": ["dense tissue left out of the lungs: 90.0 mL"]}})");
    auto fd = scan_flags(d);
    ASSERT_EQ(codes(fd), std::vector<std::string>{"dense_left_out"});
    EXPECT_DOUBLE_EQ(*fd[0].value, 2.4);
    EXPECT_NE(fd[0].message.find("90.0 mL (2.40 %) left out"), std::string::npos) << fd[0].message;
    d["segmentation"]["dense"]["flagged"] = false;  // 10 mL limit of the fallback ignored
    EXPECT_TRUE(codes(scan_flags(d)).empty());
    // A lung base that is missing its back (nothing counted as left out) is the same flag,
    // and the message says which lung.
    d["segmentation"]["dense"] = {{"left_out_ml", 0.0}, {"left_out_pct", 0.0},
                                  {"flag_threshold_pct", 2.0}, {"base_rise_right_mm", 34.0},
                                  {"base_rise_left_mm", -8.0}, {"base_rise_limit_mm", 10.0},
                                  {"base_flagged", true}, {"flagged", true}};
    fd = scan_flags(d);
    ASSERT_EQ(codes(fd), std::vector<std::string>{"dense_left_out"});
    EXPECT_NE(fd[0].message.find("by 34 mm (right) and -8 mm (left), limit 10 mm"),
              std::string::npos)
        << fd[0].message;
  }
  // Absent dense report = nothing left out; below both limits = no flag.
  m["lungs"]["dense"] = {{"left_out_ml", 3.0}, {"left_out_pct", 0.1}};
  EXPECT_EQ(codes(scan_flags(m))[0], "coverage_cut");
  m.erase("lungs");
  m["input"].erase("coverage");  // falls back to analyze's end-slice count (0.1 %: fine)
  EXPECT_EQ(codes(scan_flags(m)), (std::vector<std::string>{"lesion_at_border", "given_masks", "input_warning"}));
  m["segmentation"]["end_slices"]["lung_fraction"] = 0.05;
  EXPECT_EQ(codes(scan_flags(m))[0], "coverage_cut");
}

TEST(QcFlags, JsonRoundTripAndTable) {
  std::vector<QcFlag> f = {make_flag("calibration", 12.5, "HU", "air"),
                           make_flag("given_masks", std::nullopt, "", "given")};
  const nlohmann::json j = flags_json(f);
  EXPECT_TRUE(j[1]["value"].is_null());
  const auto back = flags_from_json(j);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].code, "calibration");
  EXPECT_EQ(*back[0].value, 12.5);
  EXPECT_FALSE(back[1].value);
  EXPECT_THROW(make_flag("no_such_flag", std::nullopt, "", ""), std::exception);
  // Every code is unique, every severity one of the three, every weight positive.
  std::set<std::string> seen;
  for (const auto& s : flag_table()) {
    EXPECT_TRUE(seen.insert(s.code).second) << s.code;
    EXPECT_TRUE(std::string(s.severity) == "info" || std::string(s.severity) == "warn" ||
                std::string(s.severity) == "fail");
    EXPECT_GT(s.weight, 0);
  }
  add_flag(f, make_flag("calibration", 1.0, "HU", "second"));
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].message, "air; second");
}

}  // namespace
}  // namespace lungvol::pipeline
