// `lungvol batch` / `lungvol sweep` end to end on a small phantom cohort: 2 subjects x 3
// visits (96 x 96 x 40 voxels, ~0.5 s per scan), one scan path a corrupt file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "batch/store.hpp"
#include "batch/sweep.hpp"
#include "core/fs.hpp"
#include "io/image_io.hpp"
#include "phantom/phantom.hpp"
#include "report/csv.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {
namespace {

struct Cohort {
  std::string dir, manifest, schedule;
  std::map<std::string, double> truth_lung_ml;  // "S01/baseline" -> phantom truth
};

// Built once: DICOM series written by the phantom library with known study dates.
const Cohort& cohort() {
  static const Cohort c = [] {
    Cohort c;
    c.dir = test::temp_dir("batch_cohort");
    struct Visit {
      const char* name;
      double scale_s01, scale_s02;
      const char* date_s01;
      const char* date_s02;
    };
    // S01's lesions shrink, S02's barely; S02's day-28 scan is 35 days after baseline:
    // outside the +-3 day window.
    const Visit visits[] = {{"baseline", 1.5, 1.5, "20200301", "20200302"},
                            {"day10", 1.25, 1.5, "20200311", "20200312"},
                            {"day28", 1.0, 1.4, "20200329", "20200406"}};
    for (int s = 1; s <= 2; ++s) {
      const std::string subject = "S0" + std::to_string(s);
      for (const auto& v : visits) {
        if (s == 2 && std::string(v.name) == "day10") continue;  // the corrupt one
        phantom::PhantomOptions o;
        o.seed = static_cast<std::uint64_t>(s);
        // An adult's chest on a coarse grid: the phantom's anatomy scales with the field of
        // view, and a 17 cm chest is a small child's (PhantomAccuracy.SmallChestHeartBorderIsFlagged).
        o.size = {96, 96, 40};
        o.spacing = {3.6, 3.6, 8.0};
        o.lesion_scale = s == 1 ? v.scale_s01 : v.scale_s02;
        const phantom::Phantom p = phantom::make_phantom(o);
        io::CtSeriesMeta meta;
        meta.patient_id = subject;
        meta.study_date = s == 1 ? v.date_s01 : v.date_s02;
        phantom::write_phantom(p, c.dir + "/" + subject + "_" + v.name, meta);
        c.truth_lung_ml[subject + "/" + v.name] = p.truth["volumes"]["lung_ml"].get<double>();
      }
    }
    // Not an image at all, with an image file's name.
    write_text_atomic(c.dir + "/corrupt.nii.gz", "this is not a NIfTI file\n");
    c.manifest = c.dir + "/manifest.csv";
    write_text_atomic(c.manifest,
                      "subject_id,arm,visit,path,site\n"
                      "S01,A,baseline,S01_baseline/dicom,X\n"
                      "S01,A,day10,S01_day10/dicom,X\n"
                      "S01,A,day28,S01_day28/dicom,X\n"
                      "S02,B,baseline,S02_baseline/dicom,Y\n"
                      "S02,B,day10,corrupt.nii.gz,Y\n"
                      "S02,B,day28,S02_day28/dicom,Y\n");
    c.schedule = c.dir + "/schedule.toml";
    write_text_atomic(c.schedule,
                      "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
                      "[[visit]]\nname = \"day10\"\nday = 10\n"
                      "[[visit]]\nname = \"day28\"\nday = 28\nwindow_days = 3\n");
    return c;
  }();
  return c;
}

std::string batch_command(const std::string& outdir, const std::string& extra = "") {
  const Cohort& c = cohort();
  return test::lungvol_binary() + " --threads 1 batch '" + c.manifest + "' -o '" + outdir +
         "' --schedule '" + c.schedule + "' --no-qc --no-label-maps " + extra;
}

// Rows of a query as text, one string per row (cells joined by '|').
std::multiset<std::string> query(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* st = nullptr;
  std::multiset<std::string> rows;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(h) << " in " << sql;
    sqlite3_close(h);
    return rows;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const auto* t = sqlite3_column_text(st, i);
      // Doubles as %.17g text: exact comparison of values.
      if (sqlite3_column_type(st, i) == SQLITE_FLOAT) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st, i));
        row += buf;
      } else if (sqlite3_column_type(st, i) == SQLITE_BLOB) {
        row += std::to_string(std::hash<std::string>{}(std::string(
            static_cast<const char*>(sqlite3_column_blob(st, i)),
            static_cast<std::size_t>(sqlite3_column_bytes(st, i)))));
      } else {
        row += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
      row += "|";
    }
    rows.insert(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return rows;
}

std::string one(const std::string& db, const std::string& sql) {
  const auto rows = query(db, sql);
  return rows.size() == 1 ? rows.begin()->substr(0, rows.begin()->size() - 1) : "<" +
                                std::to_string(rows.size()) + " rows>";
}

// Everything that must not depend on how the batch was run (no times, ids or run numbers).
std::map<std::string, std::multiset<std::string>> content(const std::string& db) {
  return {
      {"scans", query(db, "SELECT subject_id, arm, visit, visit_day, site, population, path, "
                          "series_uid, input_sha256, protocol_name, protocol_version, "
                          "protocol_sha256, software_version, status, study_date, "
                          "days_from_baseline, in_window, outdir IS NOT NULL, voxel_ml, warnings, "
                          "error FROM scans")},
      {"measurements", query(db, "SELECT s.subject_id, s.visit, m.region, m.metric, m.value, "
                                 "m.unit FROM measurements m JOIN scans s USING (scan_id)")},
      {"histograms", query(db, "SELECT s.subject_id, s.visit, h.region, h.kind, h.hu_min, "
                               "h.n_bins, h.total, h.counts FROM histograms h JOIN scans s USING "
                               "(scan_id)")},
  };
}

TEST(BatchCli, CohortFailureRerunEndpointSweepAndProtocolChange) {
  const Cohort& c = cohort();
  const std::string out = test::temp_dir("batch_out");
  const std::string logs = test::temp_dir("batch_logs");
  const std::string db = out + "/results.sqlite";
  ASSERT_EQ(test::run_command(batch_command(out), logs + "/batch1.log"), 8);

  EXPECT_EQ(one(db, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(one(db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM failures"), "1");
  const std::string failure = one(db, "SELECT subject_id, visit, exit_code FROM failures");
  EXPECT_TRUE(failure == "S02|day10|3" || failure == "S02|day10|4") << failure;
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans WHERE status = 'ok'"), "5");
  EXPECT_EQ(one(db, "SELECT status FROM scans WHERE subject_id = 'S02' AND visit = 'day10'"),
            "failed");
  // Days from the DICOM StudyDates; S02's day 28 is 35 days out, beyond the 3-day window.
  EXPECT_EQ(one(db, "SELECT days_from_baseline, in_window FROM scans WHERE subject_id = 'S01' "
                    "AND visit = 'day28'"),
            "28|1");
  EXPECT_EQ(one(db, "SELECT days_from_baseline, in_window FROM scans WHERE subject_id = 'S02' "
                    "AND visit = 'day28'"),
            "35|0");
  EXPECT_EQ(one(db, "SELECT n_total, n_analyzed, n_skipped, n_failed FROM runs"), "6|5|0|1");
  EXPECT_EQ(one(db, "SELECT study_date FROM scans WHERE subject_id = 'S02' AND visit = 'day28'"),
            "20200406");

  // visits_wide.csv: one row per manifest row, lung volume close to the phantom's truth.
  const report::CsvTable wide = report::read_csv(out + "/visits_wide.csv");
  ASSERT_EQ(wide.rows.size(), 6u);
  const auto subj = wide.column("subject_id"), vis = wide.column("visit"),
             status = wide.column("status"), lung = wide.column("lung_ml"),
             win = wide.column("in_window");
  for (const auto& r : wide.rows) {
    const std::string key = r[subj] + "/" + r[vis];
    if (key == "S02/day10") {
      EXPECT_EQ(r[status], "failed");
      EXPECT_EQ(r[lung], "");
      continue;
    }
    EXPECT_EQ(r[status], "ok");
    EXPECT_NEAR(std::stod(r[lung]), c.truth_lung_ml.at(key), 0.03 * c.truth_lung_ml.at(key)) << key;
    if (key == "S02/day28") {
      EXPECT_EQ(r[win], "0");
    }
  }
  // measurements.csv: tidy, every ok scan, provenance columns filled.
  const report::CsvTable tidy = report::read_csv(out + "/measurements.csv");
  std::set<std::string> scans_in_tidy;
  for (const auto& r : tidy.rows) {
    scans_in_tidy.insert(r[tidy.column("subject_id")] + "/" + r[tidy.column("visit")]);
    ASSERT_EQ(r[tidy.column("input_sha256")].size(), 64u);
    ASSERT_EQ(r[tidy.column("protocol")], "covid-ggo-solid");
  }
  EXPECT_EQ(scans_in_tidy.size(), 5u);
  EXPECT_EQ(std::to_string(tidy.rows.size()),
            one(db, "SELECT COUNT(*) FROM measurements"));

  // Rerun: nothing analyzed again, the failed scan retried.
  ASSERT_EQ(test::run_command(batch_command(out), logs + "/batch2.log"), 8);
  EXPECT_EQ(one(db, "SELECT n_analyzed, n_skipped, n_failed FROM runs WHERE run_id = 2"), "0|5|1");
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM failures"), "2");

  // visits_wide.csv feeds the endpoint command.
  ASSERT_EQ(test::run_command(test::lungvol_binary() + " endpoint '" + out + "' --schedule '" +
                                  c.schedule + "'",
                              logs + "/endpoint.log"),
            0);
  const report::CsvTable comparison = report::read_csv(out + "/endpoint/comparison.csv");
  std::string endpoint_hl;
  for (const auto& r : comparison.rows) {
    if (r[comparison.column("endpoint")] == "lesion_pct_change" &&
        r[comparison.column("visit")] == "day28" && r[comparison.column("population")] == "mITT") {
      endpoint_hl = r[comparison.column("hl_estimate")];
    }
  }
  ASSERT_FALSE(endpoint_hl.empty());

  // Sweep at the protocol's own thresholds reproduces the batch's numbers exactly.
  ASSERT_EQ(test::run_command(test::lungvol_binary() + " sweep '" + out + "'", logs + "/sweep.log"),
            0);
  const report::CsvTable sweep = report::read_csv(out + "/sweep/sweep.csv");
  std::string sweep_hl;
  for (const auto& r : sweep.rows) {
    if (r[sweep.column("endpoint")] == "lesion_pct_change" && r[sweep.column("visit")] == "day28" &&
        r[sweep.column("population")] == "mITT") {
      EXPECT_EQ(r[sweep.column("split_hu")], "-300");
      EXPECT_EQ(r[sweep.column("low_hu")], "-700");
      sweep_hl = r[sweep.column("hl_estimate")];
    }
  }
  EXPECT_EQ(sweep_hl, endpoint_hl);
  {
    Store store(db);
    std::map<std::string, double> stored;
    for (const auto& row : query(db, "SELECT s.subject_id || '/' || s.visit, m.metric, m.value "
                                     "FROM measurements m JOIN scans s USING (scan_id) WHERE "
                                     "m.region = 'lungs' AND m.metric IN ('lesion_pct', 'ggo_pct', "
                                     "'solid_pct')")) {
      const auto a = row.find('|'), b = row.find('|', a + 1);
      stored[row.substr(0, a) + ":" + row.substr(a + 1, b - a - 1)] =
          std::stod(row.substr(b + 1, row.size() - b - 2));
    }
    int compared = 0;
    for (const SweepScan& s : load_sweep_scans(store)) {
      if (s.failed) continue;
      const Proportions p = proportions_at(s, -700, -300, 100);
      const std::string key = s.subject_id + "/" + s.visit;
      EXPECT_EQ(p.lesion_pct, stored.at(key + ":lesion_pct")) << key;
      EXPECT_EQ(p.ggo_pct, stored.at(key + ":ggo_pct")) << key;
      EXPECT_EQ(p.solid_pct, stored.at(key + ":solid_pct")) << key;
      compared += 3;
    }
    EXPECT_EQ(compared, 15);
    EXPECT_GT(stored.at("S01/baseline:lesion_pct"), stored.at("S01/day28:lesion_pct"));
  }
  // A threshold sweep: 9 splits x 3 lows from the protocol's own -700 HU upwards.
  ASSERT_EQ(test::run_command(test::lungvol_binary() + " sweep '" + out +
                                  "' --split -400:-200:25 --lesion-low -700:-600:50",
                              logs + "/sweep2.log"),
            0);
  EXPECT_EQ(report::read_csv(out + "/sweep/sweep.csv").rows.size(), 27u * 3u * 2u * 2u);
  // Below the protocol's low the histograms cannot answer (no vessel suppression there), and
  // a visit outside the schedule has nothing to plot: both refused, exit 2, with the reason.
  EXPECT_EQ(test::run_command(test::lungvol_binary() + " sweep '" + out +
                                  "' --lesion-low -1200:-700:100",
                              logs + "/sweep3.log"),
            2);
  EXPECT_NE(read_text_file(logs + "/sweep3.log").find("below the protocol's lower lesion threshold"),
            std::string::npos)
      << read_text_file(logs + "/sweep3.log");
  EXPECT_EQ(test::run_command(test::lungvol_binary() + " sweep '" + out + "' --plot-visit day99",
                              logs + "/sweep4.log"),
            2);
  EXPECT_NE(read_text_file(logs + "/sweep4.log").find("not a follow-up visit"), std::string::npos);
  EXPECT_NE(read_text_file(out + "/sweep/sweep.svg").find("</svg>"), std::string::npos);

  // Another protocol (different file hash): every scan is analyzed again.
  std::string toml = read_text_file(test::source_dir() + "/protocols/covid-ggo-solid.toml");
  toml = "# copy with a different hash\n" + toml;
  write_text_atomic(logs + "/changed.toml", toml);
  ASSERT_EQ(test::run_command(batch_command(out, "--protocol '" + logs + "/changed.toml'"),
                              logs + "/batch3.log"),
            8);
  EXPECT_EQ(one(db, "SELECT n_analyzed, n_skipped, n_failed FROM runs WHERE run_id = 3"), "5|0|1");
  EXPECT_EQ(one(db, "SELECT COUNT(DISTINCT protocol_sha256) FROM scans WHERE status = 'ok'"), "1");
  EXPECT_EQ(one(db, "PRAGMA integrity_check"), "ok");
}

TEST(BatchCli, ManifestErrorsExitCodes) {
  const std::string dir = test::temp_dir("batch_manifest");
  EXPECT_EQ(test::run_command(test::lungvol_binary() + " batch '" + dir + "/missing.csv' -o '" +
                                  dir + "/out'",
                              dir + "/1.log"),
            3);
  write_text_atomic(dir + "/bad.csv", "subject_id,arm,visit,path\nS1,A,baseline,x\nS1,A,week3,y\n");
  EXPECT_EQ(test::run_command(test::lungvol_binary() + " batch '" + dir + "/bad.csv' -o '" + dir +
                                  "/out'",
                              dir + "/2.log"),
            2);
  EXPECT_NE(read_text_file(dir + "/2.log").find("bad.csv:3: visit 'week3'"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/out/results.sqlite"));  // nothing written for a bad manifest
}

pid_t spawn(const std::string& command, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    const std::string cmd = "exec " + command + " > '" + log + "' 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST(BatchCli, KilledBatchResumesToTheSameDatabase) {
  const std::string logs = test::temp_dir("batch_logs");
  const std::string ref = test::temp_dir("batch_ref");
  // The reference runs two jobs in parallel: parallel and sequential runs must agree too.
  ASSERT_EQ(test::run_command(batch_command(ref, "--jobs 2"), logs + "/ref.log"), 8);
  EXPECT_EQ(one(ref + "/results.sqlite", "SELECT jobs FROM runs"), "2");

  const std::string out = test::temp_dir("batch_killed");
  const std::string db = out + "/results.sqlite";
  const pid_t pid = spawn(batch_command(out), logs + "/killed.log");
  ASSERT_GT(pid, 0);
  // Wait until the first scan is committed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool first_done = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(db) &&
        one(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'scans'") == "1" &&
        one(db, "SELECT COUNT(*) FROM scans") != "0") {
      first_done = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(first_done);
  // A second batch on the same folder refuses while the first holds the lock.
  EXPECT_EQ(test::run_command(batch_command(out), logs + "/second.log"), 7);
  EXPECT_NE(read_text_file(logs + "/second.log").find("another lungvol batch"),
            std::string::npos);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the batch finished before it could be killed";
  EXPECT_EQ(one(db, "PRAGMA integrity_check"), "ok");
  const int done_before = std::stoi(one(db, "SELECT COUNT(*) FROM scans"));
  EXPECT_GE(done_before, 1);
  EXPECT_LT(done_before, 6);
  const std::string ok_before = one(db, "SELECT COUNT(*) FROM scans WHERE status = 'ok'");
  EXPECT_EQ(one(db, "SELECT finished_at IS NULL FROM runs"), "1");  // the killed run
  // Every stored scan is whole: ok scans have all their measurements and histograms.
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans s WHERE status = 'ok' AND (SELECT COUNT(*) FROM "
                    "histograms h WHERE h.scan_id = s.scan_id) = 0"),
            "0");

  ASSERT_EQ(test::run_command(batch_command(out), logs + "/resumed.log"), 8);
  EXPECT_EQ(one(db, "SELECT n_skipped FROM runs WHERE run_id = 2"), ok_before);
  EXPECT_EQ(content(db), content(ref + "/results.sqlite"));
  EXPECT_EQ(read_text_file(out + "/visits_wide.csv"), read_text_file(ref + "/visits_wide.csv"));
}

}  // namespace
}  // namespace lungvol::batch

namespace lungvol::batch {
namespace {

// Core-lab review: the reviewer corrects one scan's lung mask; re-running the same manifest with
// a lungs_mask column re-analyzes that scan only, and only its numbers change.
TEST(BatchCli, CorrectedMaskRerunChangesOnlyThatScan) {
  const std::string dir = test::temp_dir("batch_review");
  phantom::PhantomOptions o;
  o.size = {96, 96, 40};
  for (int s = 1; s <= 2; ++s) {
    o.seed = static_cast<std::uint64_t>(s);
    io::CtSeriesMeta meta;
    meta.patient_id = "R0" + std::to_string(s);
    phantom::write_phantom(phantom::make_phantom(o), dir + "/R0" + std::to_string(s), meta);
  }
  const std::string header = "subject_id,arm,visit,path";
  write_text_atomic(dir + "/m1.csv", header + "\nR01,A,baseline,R01/dicom\nR02,B,baseline,R02/dicom\n");
  const std::string lv = test::lungvol_binary() + " --threads 1 batch ";
  const std::string out = dir + "/out";
  ASSERT_EQ(test::run_command(lv + "'" + dir + "/m1.csv' -o '" + out + "' --no-qc", dir + "/1.log"), 0)
      << read_text_file(dir + "/1.log");
  const std::string db = out + "/results.sqlite";
  const std::string sql =
      "SELECT s.subject_id, m.value FROM measurements m JOIN scans s USING (scan_id) "
      "WHERE m.region = 'lungs' AND m.metric = 'volume_ml' ORDER BY s.subject_id";
  const auto before = query(db, sql);
  ASSERT_EQ(before.size(), 2u);

  // The "corrected" mask: R02's truth lung map with its lowest third removed.
  const phantom::Phantom p2 = [&] {
    phantom::PhantomOptions q = o;
    q.seed = 2;
    return phantom::make_phantom(q);
  }();
  LabelImage corrected = p2.lungs;
  for (std::size_t k = 0; k < corrected.geom.size[2] / 3; ++k)
    for (std::size_t j = 0; j < corrected.geom.size[1]; ++j)
      for (std::size_t i = 0; i < corrected.geom.size[0]; ++i) corrected.at(i, j, k) = 0;
  std::uint64_t lung_voxels = 0;
  for (auto v : corrected.data) lung_voxels += v == 1 || v == 2;
  io::write_label_image(corrected, dir + "/R02_lungs_corrected.nii.gz");
  write_text_atomic(dir + "/m2.csv", header + ",lungs_mask\nR01,A,baseline,R01/dicom,\n"
                                                "R02,B,baseline,R02/dicom,R02_lungs_corrected.nii.gz\n");
  ASSERT_EQ(test::run_command(lv + "'" + dir + "/m2.csv' -o '" + out + "' --no-qc", dir + "/2.log"), 0)
      << read_text_file(dir + "/2.log");
  const std::string log = read_text_file(dir + "/2.log");
  EXPECT_NE(log.find("1 analyzed"), std::string::npos) << log;
  EXPECT_NE(log.find("1 skipped"), std::string::npos) << log;
  const auto after = query(db, sql);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(*before.begin(), *after.begin());  // R01 unchanged, to the last bit
  const std::string r02 = *after.rbegin();
  const double measured = std::stod(r02.substr(r02.find('|') + 1));
  EXPECT_NEAR(measured, double(lung_voxels) * corrected.geom.voxel_volume_ml(), 1e-6);
  EXPECT_NE(*before.rbegin(), r02);
}

}  // namespace
}  // namespace lungvol::batch

namespace lungvol::batch {
namespace {

// A scan whose HU scale is off (air reads -950 instead of -1000) is flagged in visits_wide.csv,
// the table statisticians take densitometry from; a correct one is "ok".
TEST(BatchCli, CalibrationFlagReachesVisitsWide) {
  const std::string dir = test::temp_dir("batch_calib");
  phantom::PhantomOptions o;
  o.size = {96, 96, 40};
  phantom::Phantom p = phantom::make_phantom(o);
  io::write_ct_image(p.ct, dir + "/good.nii.gz");
  for (auto& v : p.ct.data) v = static_cast<std::int16_t>(v + 50);
  io::write_ct_image(p.ct, dir + "/shifted.nii.gz");
  write_text_atomic(dir + "/m.csv", "subject_id,arm,visit,path\nG1,A,baseline,good.nii.gz\n"
                                    "S1,B,baseline,shifted.nii.gz\n");
  const std::string out = dir + "/out";
  ASSERT_EQ(test::run_command(test::lungvol_binary() + " --threads 1 batch '" + dir +
                                  "/m.csv' -o '" + out + "' --no-qc --no-label-maps",
                              dir + "/log"),
            0)
      << read_text_file(dir + "/log");
  const report::CsvTable t = report::read_csv(out + "/visits_wide.csv");
  const auto col = t.find_column("calibration");
  const auto subject = t.find_column("subject_id");
  ASSERT_TRUE(col.has_value());
  ASSERT_TRUE(subject.has_value());
  std::map<std::string, std::string> flag;
  for (const auto& r : t.rows) flag[r[*subject]] = r[*col];
  EXPECT_EQ(flag["G1"], "ok");
  EXPECT_EQ(flag["S1"], "flagged");
}

}  // namespace
}  // namespace lungvol::batch
