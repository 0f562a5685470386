// `lungvol export` end to end: the workbook appears, missing inputs exit 3 (kInput).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol {
namespace {

std::string lungvol() { return "'" + test::lungvol_binary() + "'"; }

TEST(ExportCli, WritesWorkbookAndExitsThreeOnMissingFiles) {
  const std::string dir = test::temp_dir("export_cli");
  write_text_atomic(dir + "/visits_wide.csv", "subject_id,arm,visit,lesion_pct\na,MSC,baseline,1.5\n");
  ensure_directory(dir + "/endpoint");
  const std::string log = dir + "/log.txt";
  // endpoint/ is still empty: the command names the missing file and how to make it.
  EXPECT_EQ(test::run_command(lungvol() + " export '" + dir + "' --xlsx '" + dir + "/t.xlsx'", log), 3);
  EXPECT_NE(read_text_file(log).find("changes.csv"), std::string::npos) << read_text_file(log);
  EXPECT_FALSE(std::filesystem::exists(dir + "/t.xlsx"));

  write_text_atomic(dir + "/endpoint/changes.csv",
                    "subject_id,arm,endpoint,visit,population,baseline,value\n"
                    "a,MSC,lesion_pct_change,day28,mITT,1.5,1\n");
  write_text_atomic(dir + "/endpoint/comparison.csv", "endpoint,visit,population,change\n"
                                                      "lesion_pct_change,day28,mITT,relative\n");
  write_text_atomic(dir + "/measurements.csv", "series_instance_uid,software_version\n1.2,0.1.0\n");
  ASSERT_EQ(test::run_command(lungvol() + " export '" + dir + "' --xlsx '" + dir + "/t.xlsx'", log), 0)
      << read_text_file(log);
  EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/t.xlsx"));
  // Usage error without --xlsx.
  EXPECT_EQ(test::run_command(lungvol() + " export '" + dir + "'", log), 2);
}

}  // namespace
}  // namespace lungvol
