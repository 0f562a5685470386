// `lungvol analyze --meshes` end to end on the repository's phantom series (sample_dicom/,
// truth in sample_dicom/truth.json), with and without an X display.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "report/png.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol {
namespace {

nlohmann::json analyze_with_meshes(const std::string& out, const std::string& env_prefix) {
  const std::string log = out + ".log";
  const std::string cmd = env_prefix + "'" + test::lungvol_binary() + "' analyze '" +
                          test::source_dir() + "/sample_dicom/dicom' -o '" + out +
                          "' --meshes --no-dicom --no-label-maps";
  EXPECT_EQ(test::run_command(cmd, log), 0) << read_text_file(log);
  return nlohmann::json::parse(read_text_file(out + "/metrics.json"));
}

TEST(MeshCli, MeshVolumesMatchThePhantomTruth) {
  const std::string out = test::temp_dir("mesh_cli");
  const auto m = analyze_with_meshes(out, "");
  const auto truth = nlohmann::json::parse(
      read_text_file(test::source_dir() + "/sample_dicom/truth.json"))["volumes"];
  const auto& s = m.at("meshes").at("surfaces");
  EXPECT_EQ(m["meshes"]["coordinate_system"], "LPS");
  // Smoothed surfaces of 1.8 x 1.8 x 4 mm voxels: lungs within 2 %, the smaller (and, for
  // solid, irregular) lesion classes within 5 and 8 %.
  const struct {
    const char* mesh;
    const char* truth;
    double tol;
  } cases[] = {{"right_lung", "right_lung_ml", 0.02},
               {"left_lung", "left_lung_ml", 0.02},
               {"ground_glass", "ggo_ml", 0.05},
               {"solid", "solid_ml", 0.08}};
  for (const auto& c : cases) {
    const auto& surface = s.at(c.mesh);
    EXPECT_NEAR(surface.at("volume_ml").get<double>() / truth.at(c.truth).get<double>(), 1.0,
                c.tol)
        << c.mesh;
    EXPECT_GT(surface.at("area_mm2").get<double>(), 0) << c.mesh;
    for (const char* ext : {"vtp", "stl"}) {
      EXPECT_EQ(surface.at(ext), std::string("meshes/") + c.mesh + "." + ext);
      EXPECT_TRUE(fs::is_regular_file(out + "/" + surface.at(ext).get<std::string>()));
    }
  }
  // measurements.csv carries the same areas as tidy rows (unit mm2).
  const std::string csv = read_text_file(out + "/measurements.csv");
  const struct {
    const char* mesh;
    const char* row;
  } rows[] = {{"right_lung", ",right,surface_area_mm2,"},
              {"left_lung", ",left,surface_area_mm2,"},
              {"ground_glass", ",lungs,ggo_surface_area_mm2,"},
              {"solid", ",lungs,solid_surface_area_mm2,"}};
  for (const auto& r : rows) {
    const auto at = csv.find(r.row);
    ASSERT_NE(at, std::string::npos) << r.row;
    const std::size_t v = at + std::string(r.row).size();
    const std::string line = csv.substr(v, csv.find('\n', v) - v);
    EXPECT_NEAR(std::stod(line.substr(0, line.find(','))),
                s.at(r.mesh).at("area_mm2").get<double>(),
                1e-6 * s.at(r.mesh).at("area_mm2").get<double>())
        << r.mesh;
    EXPECT_EQ(line.substr(line.find(',') + 1), "mm2") << r.mesh;
  }
  // The render, when this run has a display (scripts/test.sh runs ctest under xvfb-run).
  if (m["meshes"]["render"]["file"].is_null()) {
    EXPECT_FALSE(m["meshes"]["render"]["skipped"].get<std::string>().empty());
    GTEST_SKIP() << "no display: " << m["meshes"]["render"]["skipped"];
  }
  const report::Raster png = report::read_png(out + "/qc_3d.png");
  std::size_t yellow = 0, red = 0;
  for (std::size_t y = 0; y < png.height; ++y)
    for (std::size_t x = 0; x < png.width; ++x) {
      const std::uint8_t* p = png.at(x, y);
      yellow += p[0] > 120 && p[1] > 120 && p[2] < 0.45 * p[0];
      red += p[0] > 120 && p[1] < 0.35 * p[0] && p[2] < 0.35 * p[0];
    }
  EXPECT_GT(yellow, 500u);  // the phantom has 4 ground-glass and 3 solid lesions
  EXPECT_GT(red, 300u);
}

TEST(MeshCli, WithoutADisplayTheRenderIsSkippedAndRecorded) {
  const std::string out = test::temp_dir("mesh_cli_nodisplay");
  const auto m = analyze_with_meshes(out, "env -u DISPLAY ");
  EXPECT_TRUE(m["meshes"]["render"]["file"].is_null());
  EXPECT_NE(m["meshes"]["render"]["skipped"].get<std::string>().find("DISPLAY"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out + "/qc_3d.png"));
  EXPECT_TRUE(fs::is_regular_file(out + "/meshes/right_lung.vtp"));
  EXPECT_TRUE(fs::is_regular_file(out + "/qc_axial.png"));  // the 2D QC is unaffected
}

TEST(MeshCli, WithoutTheFlagNoMeshesAreWritten) {
  const std::string out = test::temp_dir("mesh_cli_off");
  const std::string log = out + ".log";
  ASSERT_EQ(test::run_command("'" + test::lungvol_binary() + "' analyze '" + test::source_dir() +
                                  "/sample_dicom/dicom' -o '" + out +
                                  "' --no-dicom --no-label-maps --no-qc",
                              log),
            0);
  const auto m = nlohmann::json::parse(read_text_file(out + "/metrics.json"));
  EXPECT_FALSE(m.contains("meshes"));
  EXPECT_FALSE(fs::exists(out + "/meshes"));
}

}  // namespace
}  // namespace lungvol
