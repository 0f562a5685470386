#include <gtest/gtest.h>

#include <filesystem>

#include "batch/manifest.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::batch {
namespace {

const trial::VisitSchedule kSchedule = trial::default_visit_schedule();

// The exit code and message of a manifest error.
std::pair<ExitCode, std::string> error_of(const std::string& text) {
  try {
    parse_manifest(text, "m.csv", "/data", kSchedule);
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {ExitCode::kOk, ""};
}

TEST(Manifest, ParsesRequiredAndOptionalColumns) {
  const Manifest m = parse_manifest(
      "subject_id,arm,visit,path,visit_day,site,population,series_uid,notes\n"
      "S01,A,baseline,s01/base,0,Wuhan,mITT,1.2.3,x\n"
      "\n"
      "S01,A,day28, /abs/s01/d28 ,29.5,,,,\n",
      "m.csv", "/data", kSchedule, ManifestOptions{{"notes"}});
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.entries[0].line, 2u);
  EXPECT_EQ(m.entries[0].full_path, "/data/s01/base");
  EXPECT_EQ(m.entries[0].site, "Wuhan");
  EXPECT_EQ(m.entries[0].series_uid, "1.2.3");
  EXPECT_EQ(*m.entries[0].visit_day, 0.0);
  EXPECT_EQ(m.entries[1].line, 4u);  // the blank line counts
  EXPECT_EQ(m.entries[1].full_path, "/abs/s01/d28");
  EXPECT_EQ(*m.entries[1].visit_day, 29.5);
  EXPECT_EQ(m.sha256.size(), 64u);
}

TEST(Manifest, ErrorsNameTheLine) {
  auto e = error_of("subject_id,arm,path\nS01,A,x\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
  EXPECT_NE(e.second.find("m.csv:1: missing required column 'visit'"), std::string::npos) << e.second;

  e = error_of("subject_id,arm,visit,path\nS01,A,baseline,x\nS01,A,day10,\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
  EXPECT_NE(e.second.find("m.csv:3: empty path"), std::string::npos) << e.second;

  e = error_of("subject_id,arm,visit,path\nS01,A,week4,x\n");
  EXPECT_NE(e.second.find("m.csv:2: visit 'week4' is not in the visit schedule"), std::string::npos)
      << e.second;

  e = error_of("subject_id,arm,visit,path\nS01,A,baseline,x\nS01,A,baseline,y\n");
  EXPECT_NE(e.second.find("m.csv:3:"), std::string::npos) << e.second;
  EXPECT_NE(e.second.find("already listed on line 2"), std::string::npos) << e.second;

  e = error_of("subject_id,arm,visit,path\nS01,A,baseline,x\nS01,B,day10,y\n");
  EXPECT_NE(e.second.find("m.csv:3: subject 'S01' is in arm 'B'"), std::string::npos) << e.second;

  e = error_of("subject_id,arm,visit,path,visit_day\nS01,A,baseline,x,ten\n");
  EXPECT_NE(e.second.find("m.csv:2: visit_day 'ten' is not a number"), std::string::npos) << e.second;

  e = error_of("subject_id,arm,visit,path\n../x,A,baseline,x\n");
  EXPECT_NE(e.second.find("m.csv:2: subject_id '../x' cannot name a folder"), std::string::npos)
      << e.second;
  e = error_of("subject_id,arm,visit,path\nS1,../../x,baseline,x\n");
  EXPECT_NE(e.second.find("m.csv:2: arm '../../x' cannot name a folder"), std::string::npos)
      << e.second;
  e = error_of("subject_id,arm,visit,path,series_uid\nS1,A,baseline,x,=HYPERLINK(1)\n");
  EXPECT_NE(e.second.find("m.csv:2: series_uid '=HYPERLINK(1)' is not a DICOM UID"),
            std::string::npos)
      << e.second;

  // A quoted field spanning lines: the error names the physical line of the bad record.
  e = error_of("subject_id,arm,visit,path,site\nS01,A,baseline,x,\"two\nlines\"\nS02,A,day99,y,z\n");
  EXPECT_NE(e.second.find("m.csv:4: visit 'day99'"), std::string::npos) << e.second;

  // Ragged row (CSV reader error) is a usage error too.
  e = error_of("subject_id,arm,visit,path\nS01,A,baseline\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
  EXPECT_NE(e.second.find("m.csv:2"), std::string::npos) << e.second;

  e = error_of("subject_id,arm,visit,path\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
}

TEST(Manifest, UnknownColumnsAreAnErrorUnlessIgnored) {
  auto e = error_of("subject_id,arm,visit,path,lung_mask\nS01,A,baseline,x,corrected.nii.gz\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
  EXPECT_NE(e.second.find("m.csv:1: unknown column 'lung_mask' (did you mean 'lungs_mask'?)"),
            std::string::npos)
      << e.second;
  EXPECT_NE(e.second.find("--ignore-column 'lung_mask'"), std::string::npos) << e.second;
  const Manifest m = parse_manifest("subject_id,arm,visit,path,comment\nS01,A,baseline,x,hi\n",
                                    "m.csv", "/data", kSchedule, ManifestOptions{{"comment"}});
  EXPECT_EQ(m.entries.size(), 1u);
  // An unnamed column is tolerated only while it is empty (a trailing separator).
  EXPECT_EQ(parse_manifest("subject_id,arm,visit,path,\nS01,A,baseline,x,\n", "m.csv", "/data",
                           kSchedule)
                .entries.size(),
            1u);
  e = error_of("subject_id,arm,visit,path,\nS01,A,baseline,x,oops\n");
  EXPECT_NE(e.second.find("m.csv:2: column 5 has no name"), std::string::npos) << e.second;
}

TEST(Manifest, MissingRequiredColumnShowsTheHeaderFound) {
  const auto e = error_of("subject,arm,visit,path\nS01,A,baseline,x\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
  EXPECT_NE(e.second.find("missing required column 'subject_id'"), std::string::npos) << e.second;
  EXPECT_NE(e.second.find("the header found is: 'subject', 'arm', 'visit', 'path'"),
            std::string::npos)
      << e.second;
}

TEST(Manifest, SemicolonSeparatedFilesAreRecognisedOrNamed) {
  const Manifest m = parse_manifest(
      "subject_id;arm;visit;path;visit_day\nS01;A;baseline;a,b;0\nS01;A;day10;c;10\n", "m.csv",
      "/data", kSchedule);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.delimiter, ';');
  EXPECT_EQ(m.entries[0].path, "a,b");
  EXPECT_EQ(*m.entries[1].visit_day, 10.0);
  const auto e = error_of("Subject;Arm;Visit;Path\nS01;A;baseline;x\n");
  EXPECT_EQ(e.first, ExitCode::kUsage);
  EXPECT_NE(e.second.find("semicolon-separated"), std::string::npos) << e.second;
}

TEST(Manifest, BlankAndExcelEmptyRowsAreSkipped) {
  const Manifest m = parse_manifest(
      "subject_id,arm,visit,path\r\nS01,A,baseline,x\r\n   \r\n,,,\r\n\t\r\nS02,B,baseline,y\r\n,,,\r\n",
      "m.csv", "/data", kSchedule);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.entries[1].line, 6u);
  const auto e = error_of("subject_id,arm,visit,path\n,,,\n   \n");
  EXPECT_NE(e.second.find("manifest has a header but no scans"), std::string::npos) << e.second;
}

TEST(Manifest, ScheduleVisitNamesMustNameFolders) {
  trial::VisitSchedule s = trial::default_visit_schedule();
  EXPECT_NO_THROW(check_schedule_names(s, "s.toml"));
  s.visits[1].name = "../../../../escaped_visit";
  try {
    check_schedule_names(s, "s.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("s.toml: visit '../../../../escaped_visit' cannot name a folder"),
              std::string::npos)
        << e.what();
  }
}

TEST(Manifest, MissingFileIsInputError) {
  try {
    read_manifest("/nonexistent/manifest.csv", kSchedule);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
  }
}

TEST(Manifest, RelativePathsAgainstManifestFolder) {
  const std::string dir = test::temp_dir("manifest");
  write_text_atomic(dir + "/m.csv", "subject_id,arm,visit,path\nS1,A,baseline,scans/s1\n");
  const Manifest m = read_manifest(dir + "/m.csv", kSchedule);
  EXPECT_EQ(m.entries[0].full_path, dir + "/scans/s1");
}

TEST(StudyDates, DaysFromDicomDate) {
  EXPECT_EQ(*days_from_dicom_date("19700101"), 0);
  EXPECT_EQ(*days_from_dicom_date("20000301") - *days_from_dicom_date("20000228"), 2);  // leap
  EXPECT_EQ(*days_from_dicom_date("21000301") - *days_from_dicom_date("21000228"), 1);  // not
  EXPECT_EQ(*days_from_dicom_date("20200329") - *days_from_dicom_date("20200301"), 28);
  EXPECT_EQ(*days_from_dicom_date("20210101") - *days_from_dicom_date("20201231"), 1);
  EXPECT_EQ(*days_from_dicom_date("20200101"), 18262);  // 50 years incl. 12 leap days
  EXPECT_FALSE(days_from_dicom_date("20210229"));
  EXPECT_FALSE(days_from_dicom_date("2021-01-01"));
  EXPECT_FALSE(days_from_dicom_date(""));
}

TEST(StudyDates, VisitTimingAndWindows) {
  trial::ScheduledVisit d28{"day28", 28, false, 3.0};
  auto t = visit_timing(d28, std::nullopt, "20200401", "20200301");  // 31 days
  EXPECT_EQ(*t.days_from_baseline, 31.0);
  EXPECT_TRUE(*t.in_window);
  t = visit_timing(d28, std::nullopt, "20200402", "20200301");  // 32 days
  EXPECT_FALSE(*t.in_window);
  t = visit_timing(d28, 25.0, "20200402", "20200301");  // visit_day wins over dates
  EXPECT_EQ(*t.days_from_baseline, 25.0);
  EXPECT_TRUE(*t.in_window);
  t = visit_timing(d28, std::nullopt, "", "20200301");  // unknown date
  EXPECT_FALSE(t.days_from_baseline);
  EXPECT_FALSE(t.in_window);
  trial::ScheduledVisit d10{"day10", 10, false, std::nullopt};  // no window: unknown
  t = visit_timing(d10, std::nullopt, "20200315", "20200301");
  EXPECT_EQ(*t.days_from_baseline, 14.0);
  EXPECT_FALSE(t.in_window);
}

}  // namespace
}  // namespace lungvol::batch
