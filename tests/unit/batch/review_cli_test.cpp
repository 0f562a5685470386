// The core lab's loop, end to end on phantom subjects through the lungvol binary:
// analyse -> review -> correct or exclude -> re-measure -> lock -> endpoint -> export.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "batch/review.hpp"
#include "batch/store.hpp"
#include "core/fs.hpp"
#include "export/outdir.hpp"
#include "report/csv.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {
namespace {

struct Trial {
  std::string dir, manifest, out, lv;
  int run(const std::string& args, const std::string& log = "log.txt") const {
    return test::run_command(lv + " --log-level warn " + args, dir + "/" + log);
  }
  std::string log(const std::string& name = "log.txt") const { return read_text_file(dir + "/" + name); }
};

// Four subjects (two per arm) at baseline and day10, 96 x 96 x 40 phantoms; S4's day10 series is
// corrupt (one file truncated): a failed scan.
Trial make_trial(const std::string& tag) {
  Trial t;
  t.dir = test::temp_dir(tag);
  t.manifest = t.dir + "/manifest.csv";
  t.out = t.dir + "/results";
  t.lv = test::lungvol_binary();
  std::ofstream m(t.manifest);
  m << "subject_id,arm,visit,path\n";
  const char* subjects[][3] = {{"S1", "MSC", "0.7"}, {"S2", "MSC", "0.8"},
                               {"S3", "placebo", "0.95"}, {"S4", "placebo", "1.0"}};
  int seed = 0;
  for (const auto& s : subjects) {
    ++seed;
    for (const std::string visit : {"baseline", "day10"}) {
      const std::string dir = t.dir + "/scans/" + s[0] + "/" + visit;
      const std::string scale = visit == "baseline" ? "1.0" : s[2];
      EXPECT_EQ(test::run_command(t.lv + " --log-level warn phantom -o " + dir + " --seed " +
                                      std::to_string(seed) + " --lesion-scale " + scale +
                                      " --size 96,96,40 --spacing 3.6,3.6,8 --patient-id " + s[0] +
                                      " --study-date 202003" + (visit == "baseline" ? "01" : "11"),
                                  t.dir + "/phantom.log"),
                0);
      m << s[0] << "," << s[1] << "," << visit << "," << dir << "/dicom\n";
    }
  }
  m.close();
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(t.dir + "/scans/S4/day10/dicom")) files.push_back(f.path());
  std::sort(files.begin(), files.end());
  const std::string bytes = read_text_file(files[20].string());
  write_text_atomic(files[20].string(), bytes.substr(0, 100));
  return t;
}

report::CsvTable csv(const std::string& path) { return report::read_csv(path); }

std::string cell(const report::CsvTable& t, const std::string& subject, const std::string& visit,
                 const std::string& column, const std::string& endpoint = "",
                 const std::string& population = "") {
  for (const auto& r : t.rows) {
    if (r[t.column("subject_id")] != subject || r[t.column("visit")] != visit) continue;
    if (!endpoint.empty() && r[t.column("endpoint")] != endpoint) continue;
    if (!population.empty() && r[t.column("population")] != population) continue;
    return r[t.column(column)];
  }
  return "<no row>";
}

TEST(ReviewCli, AnalyseReviewCorrectExcludeLockReport) {
  const Trial t = make_trial("review_cli");
  ASSERT_EQ(t.run("batch " + t.manifest + " -o " + t.out), 8) << t.log();
  // The failed scan: in failures.csv with its exit code, a QC score of 100 in visits_wide.csv.
  const auto failures = csv(t.out + "/failures.csv");
  ASSERT_EQ(failures.rows.size(), 1u);
  EXPECT_EQ(cell(failures, "S4", "day10", "exit_code"), "4");
  auto wide = csv(t.out + "/visits_wide.csv");
  EXPECT_EQ(cell(wide, "S4", "day10", "qc_score"), "100");
  EXPECT_EQ(cell(wide, "S4", "day10", "qc_flags"), "scan_failed");
  EXPECT_EQ(cell(wide, "S1", "day10", "review"), "");

  // Not reviewed: the endpoint says so.
  ASSERT_EQ(t.run("endpoint " + t.out + " --endpoints lesion_pct", "e1.txt"), 0) << t.log("e1.txt");
  EXPECT_NE(t.log("e1.txt").find("review: NOT locked: 8 of 8 scans without a valid decision"),
            std::string::npos);
  auto prov = nlohmann::json::parse(read_text_file(t.out + "/endpoint/provenance.json"));
  EXPECT_FALSE(prov["review"]["locked_and_fully_reviewed"].get<bool>());
  const std::string s1_before = cell(csv(t.out + "/endpoint/changes.csv"), "S1", "day10",
                                     "change", "lesion_pct_change", "mITT");
  EXPECT_NE(s1_before, "0");

  // Decisions: refused ones first.
  EXPECT_EQ(t.run("review " + t.out + " S1 day10 --exclude ''"), 2);
  EXPECT_EQ(t.run("review " + t.out + " S9 day10 --accept"), 2);
  EXPECT_EQ(t.run("review " + t.out + " S4 day10 --accept"), 2);  // failed: exclude or correct
  EXPECT_NE(t.log().find("not accepted"), std::string::npos);
  ASSERT_EQ(t.run("review " + t.out + " S1 day10 --exclude 'motion artefacts' --reader 'Dr R'"), 0);
  ASSERT_EQ(t.run("review " + t.out + " S4 day10 --exclude 'corrupt series'"), 0);
  // Corrected: S2's day10 with the masks lungvol wrote for it, copied (a reader's edit).
  const std::string lungs = t.dir + "/S2_day10_lungs.nii.gz";
  fs::copy_file(t.out + "/scans/S2/day10/lungs.nii.gz", lungs);
  ASSERT_EQ(t.run("review " + t.out + " S2 day10 --lungs-mask " + lungs), 0) << t.log();
  wide = csv(t.out + "/visits_wide.csv");
  EXPECT_EQ(cell(wide, "S1", "day10", "status"), "excluded");
  EXPECT_EQ(cell(wide, "S1", "day10", "review"), "excluded");
  EXPECT_EQ(cell(wide, "S2", "day10", "review"), "corrected (pending)");
  {
    Store store(t.out + "/results.sqlite", Store::Mode::kReadOnly);
    const auto reviews = store.reviews();
    ASSERT_EQ(reviews.size(), 3u);
    EXPECT_EQ(reviews[0].reader, "Dr R");
    EXPECT_EQ(reviews[0].reason, "motion artefacts");
    EXPECT_FALSE(reviews[0].decided_at.empty());
    EXPECT_EQ(store.review_log().size(), 3u);
  }
  // Locking needs a valid decision on every scan.
  EXPECT_EQ(t.run("review " + t.out + " --lock", "lock1.txt"), 2);
  EXPECT_NE(t.log("lock1.txt").find("S2 day10: corrected, not yet re-measured"), std::string::npos);

  // The batch re-measures S2 day10 with the reader's mask, and only that scan.
  ASSERT_EQ(t.run("batch " + t.manifest + " -o " + t.out, "b2.txt"), 8) << t.log("b2.txt");
  const auto metrics = nlohmann::json::parse(read_text_file(t.out + "/scans/S2/day10/metrics.json"));
  EXPECT_EQ(metrics["segmentation"]["lungs"], "given");
  EXPECT_EQ(metrics["segmentation"]["lungs_mask"]["path"], lungs);
  EXPECT_EQ(metrics["flags"][0]["code"], "given_masks");
  wide = csv(t.out + "/visits_wide.csv");
  EXPECT_EQ(cell(wide, "S2", "day10", "review"), "corrected");
  EXPECT_EQ(cell(wide, "S2", "day10", "qc_flags"), "given_masks");
  EXPECT_EQ(cell(wide, "S2", "day10", "qc_score"), "5");

  // Excluded = missing: LOCF (baseline carried, change 0) in mITT, absent in PP, flagged.
  ASSERT_EQ(t.run("endpoint " + t.out + " --endpoints lesion_pct", "e2.txt"), 0) << t.log("e2.txt");
  const auto changes = csv(t.out + "/endpoint/changes.csv");
  EXPECT_EQ(cell(changes, "S1", "day10", "flags", "lesion_pct_change", "mITT"), "excluded;imputed_locf");
  EXPECT_EQ(cell(changes, "S1", "day10", "change", "lesion_pct_change", "mITT"), "0");
  EXPECT_EQ(cell(changes, "S1", "day10", "source_visit", "lesion_pct_change", "mITT"), "baseline");
  EXPECT_EQ(cell(changes, "S1", "day10", "flags", "lesion_pct_change", "PP"), "excluded;missing");
  EXPECT_EQ(cell(changes, "S1", "day10", "included", "lesion_pct_change", "PP"), "false");

  // Accept the rest, lock; then nothing may change the locked results.
  for (const char* s : {"S1 baseline", "S2 baseline", "S3 baseline", "S3 day10", "S4 baseline"}) {
    ASSERT_EQ(t.run("review " + t.out + " " + s + " --accept --reader 'Dr R'"), 0) << s << t.log();
  }
  ASSERT_EQ(t.run("review " + t.out + " --lock --reader 'Dr R'", "lock2.txt"), 0) << t.log("lock2.txt");
  EXPECT_EQ(t.run("review " + t.out + " S3 day10 --exclude late"), 2);
  EXPECT_NE(t.log().find("locked"), std::string::npos);
  EXPECT_EQ(t.run("batch " + t.manifest + " -o " + t.out, "b3.txt"), 2);
  EXPECT_NE(t.log("b3.txt").find("--unlock"), std::string::npos);

  ASSERT_EQ(t.run("endpoint " + t.out + " --endpoints lesion_pct", "e3.txt"), 0) << t.log("e3.txt");
  EXPECT_NE(t.log("e3.txt").find("review: locked and fully reviewed: 8 scans (5 accepted, 1 "
                                 "corrected, 2 excluded); locked "),
            std::string::npos)
      << t.log("e3.txt");
  prov = nlohmann::json::parse(read_text_file(t.out + "/endpoint/provenance.json"));
  EXPECT_TRUE(prov["review"]["locked_and_fully_reviewed"].get<bool>());
  EXPECT_NE(read_text_file(t.out + "/endpoint/table2.md").find("Review: locked and fully reviewed"),
            std::string::npos);

  // The workbook: Table 2 with the exclusion footnote, per-scan provenance with decisions.
  ASSERT_EQ(t.run("export " + t.out + " --xlsx " + t.dir + "/out.csv", "x1.txt"), 2);
  ASSERT_EQ(t.run("export " + t.out + " --xlsx " + t.dir + "/no/such/folder/out.xlsx", "x2.txt"), 7);
  EXPECT_NE(t.log("x2.txt").find("does not exist"), std::string::npos);
  ASSERT_EQ(t.run("export " + t.out + " --xlsx " + t.dir + "/out.xlsx", "x3.txt"), 0) << t.log("x3.txt");
  const auto sheets = xlsx::outdir_sheets(t.out);
  ASSERT_EQ(sheets.front().name, "Table 2");
  const auto& table2 = sheets.front();
  bool footnote = false, locked = false, mitt_row = false;
  for (const auto& row : table2.rows) {
    const std::string first = row[0].text;
    footnote |= first.find("Excluded by the reader (mITT, day10): S1") != std::string::npos;
    locked |= first.find("Review: locked and fully reviewed") != std::string::npos;
    if (first.find("Change in Total lesion proportion") == 0 && row[1].text == "day10" && !mitt_row) {
      mitt_row = true;
      EXPECT_EQ(row[6].text, "2 / 2");                    // S1 carried forward, S4 carried forward
      EXPECT_EQ(row[2].text.find(" ("), row[2].text.find('.') + 3);  // 2 decimals
    }
  }
  EXPECT_TRUE(footnote);
  EXPECT_TRUE(locked);
  EXPECT_TRUE(mitt_row);
  const auto scans = std::find_if(sheets.begin(), sheets.end(), [](const xlsx::Sheet& s) { return s.name == "scans"; });
  ASSERT_NE(scans, sheets.end());
  EXPECT_EQ(scans->rows.size(), 8u);
  const auto source = std::find_if(sheets.begin(), sheets.end(), [](const xlsx::Sheet& s) { return s.name == "source"; });
  ASSERT_NE(source, sheets.end());
  EXPECT_EQ(source->rows.back()[1].text, "yes");

  // Unlocked, a batch may run again.
  ASSERT_EQ(t.run("review " + t.out + " --unlock"), 0);
  EXPECT_EQ(t.run("batch " + t.manifest + " -o " + t.out, "b4.txt"), 8);
}

TEST(MessagesCli, SayWhatIsWrongAndWhatToDo) {
  const Trial t = make_trial("messages_cli");
  // A misspelt command names the right one.
  EXPECT_EQ(t.run("analize x", "m1.txt"), 2);
  EXPECT_NE(t.log("m1.txt").find("unknown command 'analize' (did you mean 'analyze'?)"), std::string::npos);
  // inspect: an image file is not DICOM; a folder whose only series cannot be assembled exits 4
  // and names the option that resamples a missing slice.
  write_text_atomic(t.dir + "/volume.nrrd", "NRRD0004\n");
  EXPECT_EQ(t.run("inspect " + t.dir + "/volume.nrrd", "m2.txt"), 4);
  EXPECT_NE(t.log("m2.txt").find("not DICOM"), std::string::npos);
  EXPECT_NE(t.log("m2.txt").find("analyze"), std::string::npos);
  EXPECT_EQ(t.run("inspect " + t.dir + "/scans/S4/day10/dicom", "m3.txt"), 4);
  EXPECT_NE(t.log("m3.txt").find("--resample-nonuniform"), std::string::npos);
  EXPECT_EQ(t.run("inspect " + t.dir + "/scans/S3/day10/dicom", "m4.txt"), 0);
  // A 2-slice volume is not a chest CT.
  {
    std::string nrrd = "NRRD0004\ntype: short\ndimension: 3\nsizes: 16 16 2\nspacings: 5 5 5\n"
                       "endian: little\nencoding: raw\n\n";
    nrrd += std::string(16 * 16 * 2 * 2, '\0');
    write_text_atomic(t.dir + "/two.nrrd", nrrd);
    EXPECT_EQ(t.run("analyze " + t.dir + "/two.nrrd -o " + t.dir + "/two_out", "m7.txt"), 4);
    EXPECT_NE(t.log("m7.txt").find("too few slices (2)"), std::string::npos) << t.log("m7.txt");
  }
  // batch --help lists every manifest column.
  EXPECT_EQ(test::run_command(t.lv + " batch --help", t.dir + "/m5.txt"), 0);
  const std::string help = t.log("m5.txt");
  for (const char* c : {"subject_id", "arm", "visit", "path", "visit_day", "series_uid", "site",
                        "population", "lungs_mask", "lesions_mask"}) {
    EXPECT_NE(help.find(std::string("  ") + c + " "), std::string::npos) << c;
  }
  // Parallel scans: every log line of a scan names it.
  EXPECT_EQ(test::run_command(t.lv + " batch " + t.manifest + " -o " + t.out + " --jobs 2",
                              t.dir + "/m6.txt"),
            8);
  const std::string log = t.log("m6.txt");
  EXPECT_NE(log.find("[S1 baseline] read "), std::string::npos) << log;
  EXPECT_NE(log.find("[S3 day10] read "), std::string::npos);
  EXPECT_NE(log.find("[S4 day10] batch: S4 day10 failed (exit 4)"), std::string::npos);
}

}  // namespace
}  // namespace lungvol::batch
