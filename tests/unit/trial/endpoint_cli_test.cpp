// `lungvol endpoint` end to end: files written, table printed, exit codes of the contract.
#include <filesystem>

#include <gtest/gtest.h>

#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol {
namespace {

const char* kTable =
    "subject_id,arm,visit,status,lesion_pct,ggo_pct,solid_pct\n"
    "a1,MSC,baseline,ok,10,6,4\na1,MSC,day28,ok,5,3,2\n"
    "a2,MSC,baseline,ok,20,10,10\na2,MSC,day28,failed,,,\n"
    "b1,Placebo,baseline,ok,10,5,5\nb1,Placebo,day28,ok,9,5,4\n";

std::string lungvol() { return "'" + test::lungvol_binary() + "'"; }

TEST(EndpointCli, BatchFolderWritesOutputs) {
  const std::string dir = test::temp_dir("endpoint_cli");
  write_text_atomic(dir + "/visits_wide.csv", kTable);
  const std::string log = dir + "/log.txt";
  // A folder is read as a batch only with its results store (what the batch stored, never a
  // CSV that may be older than it); a table alone is read with --table.
  ASSERT_EQ(test::run_command(lungvol() + " endpoint '" + dir + "'", log), 3) << read_text_file(log);
  EXPECT_NE(read_text_file(log).find("results.sqlite"), std::string::npos) << read_text_file(log);
  EXPECT_NE(read_text_file(log).find("--table"), std::string::npos) << read_text_file(log);
  ASSERT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/visits_wide.csv' -o '" +
                                  dir + "'",
                              log),
            0)
      << read_text_file(log);
  for (const char* f : {"changes.csv", "comparison.csv", "table2.md"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/endpoint/" + f)) << f;
  }
  const std::string out = read_text_file(log);
  EXPECT_NE(out.find("comparing arms MSC minus Placebo"), std::string::npos) << out;
  EXPECT_NE(out.find("| Change in the total lesion proportion"), std::string::npos) << out;
  // a2's failed day28 scan: LOCF from baseline (change 0) in mITT.
  const std::string changes = read_text_file(dir + "/endpoint/changes.csv");
  EXPECT_NE(changes.find("a2,MSC,lesion_pct_change,day28,mITT,20,20,baseline,0,0,0,true,imputed_locf"),
            std::string::npos)
      << changes;
}

TEST(EndpointCli, TableOptionAndArmsOrder) {
  const std::string dir = test::temp_dir("endpoint_cli_table");
  write_text_atomic(dir + "/v.csv", kTable);
  ASSERT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/v.csv' -o '" + dir +
                                  "/out' --arms Placebo,MSC --normal",
                              dir + "/log.txt"),
            0)
      << read_text_file(dir + "/log.txt");
  const std::string cmp = read_text_file(dir + "/out/endpoint/comparison.csv");
  EXPECT_NE(cmp.find("lesion_pct_change,day28,mITT,Placebo,1,"), std::string::npos) << cmp;
  EXPECT_NE(cmp.find(",normal_cc,"), std::string::npos);
  EXPECT_EQ(cmp.find(",exact,"), std::string::npos);
}

TEST(EndpointCli, ExitCodes) {
  const std::string dir = test::temp_dir("endpoint_cli_errors");
  const std::string log = dir + "/log.txt";
  EXPECT_EQ(test::run_command(lungvol() + " endpoint '" + dir + "/nothing'", log), 3);
  write_text_atomic(dir + "/bad.csv", "subject_id,arm,visit,lesion_pct\na,x,baseline,1\na,x,day28,oops\n");
  EXPECT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/bad.csv' -o '" + dir + "'", log), 2);
  EXPECT_NE(read_text_file(log).find("line 3"), std::string::npos) << read_text_file(log);
  write_text_atomic(dir + "/three.csv",
                    "subject_id,arm,visit,lesion_pct\na,x,baseline,1\nb,y,baseline,1\nc,z,baseline,1\n");
  EXPECT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/three.csv' -o '" + dir + "'", log), 2);
  EXPECT_EQ(test::run_command(lungvol() + " endpoint", log), 2);  // neither OUTDIR nor --table
  write_text_atomic(dir + "/good.csv", kTable);
  EXPECT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/good.csv' -o '" + dir +
                                  "' --schedule '" + dir + "/missing.toml'", log),
            3);
}

// A subject whose change is not finite (a "1e-310" baseline) is flagged and named on stderr;
// the run finishes (exit 0) with every other subject compared.
TEST(EndpointCli, NonFiniteChangeIsFlaggedNotFatal) {
  const std::string dir = test::temp_dir("endpoint_cli_nonfinite");
  write_text_atomic(dir + "/v.csv",
                    "subject_id,arm,visit,lesion_pct\n"
                    "a1,MSC,baseline,1e-310\na1,MSC,day28,5\n"
                    "a2,MSC,baseline,10\na2,MSC,day28,5\na3,MSC,baseline,8\na3,MSC,day28,6\n"
                    "b1,Placebo,baseline,10\nb1,Placebo,day28,9\nb2,Placebo,baseline,4\nb2,Placebo,day28,5\n");
  const std::string log = dir + "/log.txt";
  ASSERT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/v.csv' -o '" + dir + "'", log), 0)
      << read_text_file(log);
  EXPECT_NE(read_text_file(log).find("subject 'a1'"), std::string::npos) << read_text_file(log);
  const std::string changes = read_text_file(dir + "/endpoint/changes.csv");
  // The subnormal baseline written with 17 significant digits (it has fewer): 9.99...e-311.
  EXPECT_NE(changes.find("a1,MSC,lesion_pct_change,day28,mITT,9.9999999999999694e-311,5,day28,5,,,"
                         "false,rel_change_not_finite"),
            std::string::npos)
      << changes;
  // a2 (-50 %) and a3 (-25 %) against b1 (-10 %) and b2 (+25 %).
  const std::string cmp = read_text_file(dir + "/endpoint/comparison.csv");
  EXPECT_NE(cmp.find("lesion_pct_change,day28,mITT,MSC,2,-37.5,"), std::string::npos) << cmp;
}

TEST(EndpointCli, DigitsRankOptionAndHelp) {
  const std::string dir = test::temp_dir("endpoint_cli_digits");
  write_text_atomic(dir + "/v.csv", kTable);
  const std::string log = dir + "/log.txt";
  ASSERT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/v.csv' -o '" + dir +
                                  "' --digits-rank inf",
                              log),
            0)
      << read_text_file(log);
  const std::string cmp = read_text_file(dir + "/endpoint/comparison.csv");
  EXPECT_NE(cmp.find(",hl_conf_level,digits_rank,test_flags\n"), std::string::npos) << cmp;
  EXPECT_NE(cmp.find(",Inf,"), std::string::npos) << cmp;
  EXPECT_NE(read_text_file(dir + "/endpoint/table2.md").find("digits.rank = Inf"), std::string::npos);
  EXPECT_EQ(test::run_command(lungvol() + " endpoint --table '" + dir + "/v.csv' -o '" + dir +
                                  "' --digits-rank 0",
                              log),
            2);
  ASSERT_EQ(test::run_command(lungvol() + " endpoint --help", log), 0);
  const std::string help = read_text_file(log);
  EXPECT_NE(help.find("digits.rank = 10"), std::string::npos) << help;
  EXPECT_NE(help.find("--digits-rank"), std::string::npos) << help;
}

}  // namespace
}  // namespace lungvol
