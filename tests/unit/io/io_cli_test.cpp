// `lungvol inspect` / `lungvol convert` on the real data: exit codes and no crash.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/image_io.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol {
namespace {

std::string bin() { return test::lungvol_binary(); }

TEST(IoCli, InspectEveryDataFolderWithoutCrash) {
  LUNGVOL_REQUIRE_DATA("popi-4dct-phase00-itkelastix/dicom");
  if (!fs::exists(bin())) GTEST_SKIP() << "lungvol not built";
  const std::string log = test::temp_dir("cli") + "/out.txt";
  for (const auto& e : fs::directory_iterator(test::shared_dir() + "/data")) {
    if (!e.is_directory()) continue;
    const int rc = test::run_command("'" + bin() + "' inspect '" + e.path().string() + "'", log);
    EXPECT_TRUE(rc == 0 || rc == 4) << e.path() << " exit " << rc;
    const int rc_json = test::run_command("'" + bin() + "' inspect --json '" + e.path().string() + "'", log);
    EXPECT_EQ(rc, rc_json) << e.path();
  }
  EXPECT_EQ(test::run_command("'" + bin() + "' inspect '" +
                              test::shared_data("popi-4dct-phase00-itkelastix/dicom") + "'", log), 0);
  // NIfTI crops only: no CT series.
  EXPECT_EQ(test::run_command("'" + bin() + "' inspect '" +
                              test::shared_data("lidc-nodule-vois-ct-slicing") + "'", log), 4);
  EXPECT_EQ(test::run_command("'" + bin() + "' inspect /nonexistent/lungvol", log), 3);
}

TEST(IoCli, ConvertCipDicomMatchesNrrd) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64Dicom");
  if (!fs::exists(bin())) GTEST_SKIP() << "lungvol not built";
  const std::string dir = test::temp_dir("cli_convert");
  const std::string out = dir + "/ct.nii.gz";
  ASSERT_EQ(test::run_command("'" + bin() + "' convert '" +
                                  test::shared_data("cip-chest-imaging-platform/ct-64Dicom") +
                                  "' -o '" + out + "'",
                              dir + "/log.txt"),
            0);
  const CtImage a = io::read_ct_image(out);
  const CtImage b = io::read_ct_image(test::shared_data("cip-chest-imaging-platform/ct-64.nrrd"));
  EXPECT_TRUE(a.geom.same_grid(b.geom, 1e-2));
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(test::run_command("'" + bin() + "' convert '" +
                                  test::shared_data("cip-chest-imaging-platform/ct-64Dicom") +
                                  "' -o '" + out + "' --series 1.2.3.4.5",
                              dir + "/log.txt"),
            4);
}

}  // namespace
}  // namespace lungvol
