// `lungvol deform` and `lungvol register` through the real binary (docs/outputs.md,
// "Registration"): a phantom re-rendered at a deeper breath, both scans analyzed, the deformed
// one registered to the original. The outputs exist, the inspiration change is found and
// flagged, and the registration's own record names both scans.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/fs.hpp"
#include "io/image_io.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(RegisterCli, DeformedPhantomIsRegisteredToItsOriginal) {
  const std::string dir = test::temp_dir("register_cli");
  const std::string lv = test::lungvol_binary() + " --threads 2 --log-level warn ";
  const std::string log = dir + "/log.txt";
  ASSERT_EQ(test::run_command(lv + "phantom -o '" + dir + "/ph' --size 128,128,60 --spacing "
                                   "2.6,2.6,5.2 --seed 5",
                              log),
            0)
      << slurp(log);
  ASSERT_EQ(test::run_command(lv + "deform '" + dir + "/ph/dicom' -o '" + dir +
                                  "/def' --diaphragm-mm 12 --noise 10",
                              log),
            0)
      << slurp(log);
  const auto motion = nlohmann::json::parse(slurp(dir + "/def/motion.json"));
  const double true_ratio = motion.at("true_lung_volume_ratio").get<double>();
  EXPECT_GT(true_ratio, 1.05);
  ASSERT_EQ(test::run_command(lv + "analyze '" + dir + "/ph/dicom' -o '" + dir +
                                  "/base' --no-qc --no-dicom",
                              log),
            0)
      << slurp(log);
  ASSERT_EQ(test::run_command(lv + "analyze '" + dir + "/def/ct.nii.gz' -o '" + dir +
                                  "/follow' --no-qc --no-dicom",
                              log),
            0)
      << slurp(log);
  ASSERT_EQ(test::run_command(lv + "register '" + dir + "/base' '" + dir + "/follow' -o '" + dir +
                                  "/reg'",
                              log),
            0)
      << slurp(log);
  const std::string out = slurp(log);
  EXPECT_NE(out.find("change (mL, baseline space): resolved"), std::string::npos) << out;
  for (const char* f : {"affine.tfm", "deformation.nii.gz", "inverse.nii.gz", "change_map.nii.gz",
                        "measurements.csv", "registration.json", "qc_change_axial.png",
                        "qc_checker_coronal.png"}) {
    EXPECT_TRUE(fs::is_regular_file(dir + "/reg/" + f)) << f;
  }
  const auto rec = nlohmann::json::parse(slurp(dir + "/reg/registration.json"));
  EXPECT_EQ(rec["schema"], "lungvol.registration/1");
  const auto base_metrics = nlohmann::json::parse(slurp(dir + "/base/metrics.json"));
  EXPECT_EQ(rec["baseline"]["input_sha256"], base_metrics["input"]["sha256"]);
  // The deeper breath is found by the segmented volumes and by the Jacobian, and flagged.
  const double ratio = rec["inspiration"]["volume_ratio"].get<double>();
  const double jac = rec["jacobian"]["mean"].get<double>();
  EXPECT_NEAR(ratio, true_ratio, 0.03);
  EXPECT_NEAR(jac, true_ratio, 0.04);
  EXPECT_EQ(rec["inspiration"]["flagged"].get<bool>(), true_ratio > 1.10);
  EXPECT_GT(rec["baseline_mask_consistency"]["dice"].get<double>(), 0.95);
  const LabelImage change = io::read_label_image(dir + "/reg/change_map.nii.gz");
  const LabelImage lungs = io::read_label_image(dir + "/base/lungs.nii.gz");
  EXPECT_TRUE(change.geom.same_grid(lungs.geom));
  const std::string csv = slurp(dir + "/reg/measurements.csv");
  EXPECT_NE(csv.find("lungs,change_resolved_ml,"), std::string::npos) << csv.substr(0, 300);
  EXPECT_NE(csv.find("lungs,p15_adj_hu,"), std::string::npos);
  // An analyze output is required: a folder without metrics.json is refused (exit 3).
  EXPECT_EQ(test::run_command(lv + "register '" + dir + "/def' '" + dir + "/follow' -o '" + dir +
                                  "/reg2'",
                              log),
            3)
      << slurp(log);
}

}  // namespace
}  // namespace lungvol
