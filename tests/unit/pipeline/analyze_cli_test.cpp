// The analyze command end to end: outputs, schema, exit codes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol {
namespace {

std::string cmd(const std::string& args) { return "'" + test::lungvol_binary() + "' " + args; }

TEST(AnalyzeCli, CipDicomWritesEveryOutputWithTheDesignSchema) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64Dicom");
  const std::string out = test::temp_dir("analyze_cip");
  const std::string log = out + ".log";
  ASSERT_EQ(test::run_command(cmd("analyze '" +
                                  test::shared_data("cip-chest-imaging-platform/ct-64Dicom") +
                                  "' -o '" + out + "'"),
                              log),
            0)
      << read_text_file(log);
  for (const char* f : {"metrics.json", "measurements.csv", "histograms.csv", "lungs.nii.gz",
                        "lesions.nii.gz", "qc_axial.png", "qc_coronal.png",
                        "qc_sagittal_right.png", "qc_sagittal_left.png", "seg.dcm", "sr.dcm"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  }
  EXPECT_FALSE(fs::exists(out + "/qc_sagittal.png"));  // no midline view any more
  const auto m = nlohmann::json::parse(read_text_file(out + "/metrics.json"));
  EXPECT_EQ(m.at("schema"), "lungvol.metrics/1");
  EXPECT_EQ(m.at("input").at("n_slices"), 79);
  EXPECT_EQ(m.at("input").at("sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(m.at("protocol").at("name"), "covid-ggo-solid");
  for (const char* region : {"lungs", "right", "left"}) {
    const auto& r = m.at("regions").at(region);
    for (const char* k : {"volume_ml", "lesion_ml", "ggo_ml", "solid_ml", "lesion_pct", "ggo_pct",
                          "solid_pct"}) {
      EXPECT_TRUE(r.contains(k)) << region << "." << k;
    }
    for (const char* k : {"mean_hu", "median_hu", "sd_hu", "p15_hu", "laa950_pct", "haa_pct",
                          "mass_g"}) {
      EXPECT_TRUE(r.at("density").contains(k)) << region << ".density." << k;
    }
  }
  for (const char* k : {"read", "segment", "measure", "write", "total"}) {
    EXPECT_TRUE(m.at("timing_s").contains(k)) << k;
  }
  // CIP's reference: 4554 mL of lung (wholeLung-64.nrrd); densitometry sanity from SOURCE.md:
  // 19.7 % below -950 HU inside the reference mask.
  EXPECT_NEAR(m["regions"]["lungs"]["volume_ml"].get<double>(), 4554.2, 0.03 * 4554.2);
  EXPECT_NEAR(m["regions"]["lungs"]["density"]["laa950_pct"].get<double>(), 19.7, 2.0);
  // The air check uses the protocol's ranges (ACR air criterion) and says so; CIP's outside air
  // reads -993.5 HU (calibration_data_test), inside them.
  const auto& cal = m.at("calibration");
  EXPECT_EQ(cal.at("outside_air_range_hu"), nlohmann::json({-1005.0, -970.0}));
  EXPECT_EQ(cal.at("trachea_range_hu"), nlohmann::json({-1005.0, -970.0}));
  EXPECT_NE(cal.at("ranges_source").get<std::string>().find("ACR"), std::string::npos);
  EXPECT_NEAR(cal.at("outside_air").at("mean_hu").get<double>(), -993.5, 1.0);
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST(AnalyzeCli, ExitCodesNameTheProblem) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64.nrrd");
  const std::string out = test::temp_dir("analyze_err");
  EXPECT_EQ(test::run_command(cmd("analyze /no/such/path -o '" + out + "/a'"), out + "/1.log"), 3);
  EXPECT_NE(read_text_file(out + "/1.log").find("/no/such/path"), std::string::npos);
  EXPECT_EQ(test::run_command(cmd("analyze '" +
                                  test::shared_data("cip-chest-imaging-platform/ct-64.nrrd") +
                                  "' -o '" + out + "/b' --protocol nonesuch"),
                              out + "/2.log"),
            5);
  // A folder with no CT series.
  fs::create_directories(out + "/empty");
  std::ofstream(out + "/empty/readme.txt") << "not dicom";
  EXPECT_EQ(test::run_command(cmd("analyze '" + out + "/empty' -o '" + out + "/c'"),
                              out + "/3.log"),
            4);
  EXPECT_EQ(test::run_command(cmd("analyze"), out + "/4.log"), 2);
  EXPECT_FALSE(fs::exists(out + "/c/metrics.json"));
}

}  // namespace
}  // namespace lungvol

namespace lungvol {
namespace {

// A reviewer's mask: CIP's whole-lung reference given as a binary lungs mask must be measured
// exactly (65,624 voxels = 4554.2 mL), split into right and left like CIP's own labels
// (lm-64.nrrd: right 2419 mL, left 2135 mL), and recorded as given with its hash.
TEST(AnalyzeCli, GivenLungsMaskIsMeasuredAsGiven) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/wholeLung-64.nrrd");
  const std::string out = test::temp_dir("analyze_given");
  const std::string ct = test::shared_data("cip-chest-imaging-platform/ct-64.nrrd");
  const std::string mask = test::shared_data("cip-chest-imaging-platform/wholeLung-64.nrrd");
  ASSERT_EQ(test::run_command(cmd("analyze '" + ct + "' -o '" + out + "/a' --lungs-mask '" + mask +
                                  "' --no-qc"),
                              out + "/a.log"),
            0)
      << read_text_file(out + "/a.log");
  const auto m = nlohmann::json::parse(read_text_file(out + "/a/metrics.json"));
  const double voxel_ml = 4.1719 * 4.1719 * 3.9873 / 1000.0;
  EXPECT_NEAR(m["regions"]["lungs"]["volume_ml"].get<double>(), 65624 * voxel_ml, 1.0);
  EXPECT_NEAR(m["regions"]["right"]["volume_ml"].get<double>(), 2419, 0.02 * 2419);
  EXPECT_NEAR(m["regions"]["left"]["volume_ml"].get<double>(), 2135, 0.02 * 2135);
  EXPECT_EQ(m["segmentation"]["lungs"], "given");
  EXPECT_EQ(m["segmentation"]["lungs_mask"]["sha256"].get<std::string>().size(), 64u);
  // Densitometry sanity from CIP's SOURCE.md inside this very mask: mean -874 HU, median -919,
  // 19.7 % below -950 HU.
  EXPECT_NEAR(m["regions"]["lungs"]["density"]["mean_hu"].get<double>(), -874, 1.0);
  EXPECT_NEAR(m["regions"]["lungs"]["density"]["median_hu"].get<double>(), -919, 1.0);
  EXPECT_NEAR(m["regions"]["lungs"]["density"]["laa950_pct"].get<double>(), 19.7, 0.1);
}

// The SEG lungvol writes, given back as the reviewer's corrected masks, reproduces the
// automatic run's volumes exactly: what a core lab does after editing the SEG in a viewer.
TEST(AnalyzeCli, OwnSegGivenBackAsMasksReproducesTheVolumes) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64Dicom");
  const std::string out = test::temp_dir("analyze_seg_back");
  const std::string ct = test::shared_data("cip-chest-imaging-platform/ct-64Dicom");
  ASSERT_EQ(test::run_command(cmd("analyze '" + ct + "' -o '" + out + "/auto' --no-qc"),
                              out + "/auto.log"),
            0)
      << read_text_file(out + "/auto.log");
  const std::string seg = out + "/auto/seg.dcm";
  ASSERT_EQ(test::run_command(cmd("analyze '" + ct + "' -o '" + out + "/given' --no-qc "
                                  "--lungs-mask '" + seg + "' --lesions-mask '" + seg + "'"),
                              out + "/given.log"),
            0)
      << read_text_file(out + "/given.log");
  const auto a = nlohmann::json::parse(read_text_file(out + "/auto/metrics.json"));
  const auto g = nlohmann::json::parse(read_text_file(out + "/given/metrics.json"));
  EXPECT_EQ(g["segmentation"]["lungs"], "given");
  for (const char* region : {"lungs", "right", "left"}) {
    for (const char* k : {"volume_ml", "lesion_ml", "ggo_ml", "solid_ml"}) {
      EXPECT_DOUBLE_EQ(g["regions"][region][k].get<double>(), a["regions"][region][k].get<double>())
          << region << "." << k;
    }
  }
  EXPECT_GT(a["regions"]["lungs"]["lesion_ml"].get<double>(), 0.0);
}

TEST(AnalyzeCli, MaskOnAnotherGridIsResampledOrRefused) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/crop_ct_2slices_dcnnLungSegmentationLabelmap.nrrd");
  const std::string out = test::temp_dir("analyze_grid");
  const std::string ct = test::shared_data("cip-chest-imaging-platform/ct-64.nrrd");
  // The full-resolution mask of the same subject covers another physical box: refused, exit 3,
  // and the message says why.
  const std::string other =
      test::shared_data("cip-chest-imaging-platform/crop_ct_2slices_dcnnLungSegmentationLabelmap.nrrd");
  EXPECT_EQ(test::run_command(cmd("analyze '" + ct + "' -o '" + out + "/b' --lungs-mask '" +
                                  other + "' --no-qc"),
                            out + "/b.log"),
            3);
  const std::string log = read_text_file(out + "/b.log");
  EXPECT_TRUE(log.find("physical space") != std::string::npos ||
              log.find("label") != std::string::npos)
      << log;
  EXPECT_FALSE(fs::exists(out + "/b/metrics.json"));
}

}  // namespace
}  // namespace lungvol

namespace lungvol {
namespace {

// A fuzzer-found JPEG 2000 file that once aborted the process inside GDCM's parser.
TEST(AnalyzeCli, FuzzedJpeg2000IsAnErrorNotACrash) {
  const std::string dir = test::temp_dir("analyze_fuzzed");
  fs::create_directories(dir + "/in");
  fs::copy_file(test::source_dir() + "/fuzz/corpus/gdcm_assert_vr16_explicit.dcm",
                dir + "/in/slice.dcm");
  EXPECT_EQ(test::run_command(cmd("analyze '" + dir + "/in' -o '" + dir + "/out'"), dir + "/log"),
            4);
  EXPECT_NE(read_text_file(dir + "/log").find("slice.dcm"), std::string::npos)
      << read_text_file(dir + "/log");
}

}  // namespace
}  // namespace lungvol
