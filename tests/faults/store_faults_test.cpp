// The results store and the outputs derived from it (issues #19 item 13, #16 "Stale or
// inconsistent results"): a locked, damaged or read-only store, Ctrl-C in a batch, re-runs that
// must not leave files of an earlier run, and derived files that must not outlive their data.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/faults/fault_support.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {
namespace {

std::string q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string one(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::string out = "<error>";
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      const auto* t = sqlite3_column_text(st, 0);
      out = t ? reinterpret_cast<const char*>(t) : "NULL";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return out;
}

// A two-subject, two-visit cohort (every row the same small phantom).
std::string cohort_manifest(const std::string& dir, const std::string& series) {
  const std::string m = dir + "/m.csv";
  write_file(m, "subject_id,arm,visit,path\nS1,A,baseline," + series + "\nS1,A,day10," + series +
                    "\nS2,B,baseline," + series + "\nS2,B,day10," + series + "\n");
  return m;
}

std::string batch_args(const std::string& manifest, const std::string& out) {
  return "batch " + q(manifest) + " -o " + q(out) + " --no-qc --no-label-maps";
}

// ---- SQLite lock held by another process (#19 item 13) --------------------------------------

TEST(StoreFaults, LockedStoreIsRetriedAndTheHolderNamed) {
  const std::string series = phantom_series("locked");
  const std::string dir = test::temp_dir("store_locked");
  const std::string m = cohort_manifest(dir, series);
  ASSERT_EQ(lungvol(batch_args(m, dir + "/out")).code, 0);
  const std::string db_path = dir + "/out/results.sqlite";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  // Released after 4 s: the batch waits (retrying with back-off), says who holds the store,
  // then finishes.
  std::thread release([db] {
    std::this_thread::sleep_for(std::chrono::seconds(4));
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  });
  const auto t0 = std::chrono::steady_clock::now();
  Result r = lungvol(batch_args(m, dir + "/out") + " --force", "LUNGVOL_STORE_BUSY_TIMEOUT_S=60");
  release.join();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_GE(waited, 3.5);
  EXPECT_TRUE(contains(r.output, "is locked by another process (pid " + std::to_string(::getpid())))
      << r.output;
  // Never released within the limit: exit 7 naming the holder.
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  r = lungvol(batch_args(m, dir + "/out") + " --force", "LUNGVOL_STORE_BUSY_TIMEOUT_S=3");
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_TRUE(contains(r.output, "stayed locked by another process")) << r.output;
  EXPECT_TRUE(contains(r.output, "pid " + std::to_string(::getpid()))) << r.output;
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

// ---- damaged store: PRAGMA quick_check on open (#19 item 13) --------------------------------

TEST(StoreFaults, DamagedStoreIsFoundWhenOpened) {
  const std::string series = phantom_series("corrupt");
  const std::string dir = test::temp_dir("store_corrupt");
  const std::string m = cohort_manifest(dir, series);
  ASSERT_EQ(lungvol(batch_args(m, dir + "/out")).code, 0);
  const std::string db_path = dir + "/out/results.sqlite";
  const std::size_t page = std::stoul(one(db_path, "PRAGMA page_size"));
  const std::size_t pages = std::stoul(one(db_path, "PRAGMA page_count"));
  ASSERT_GT(pages, 8u);
  // A b-tree page in the middle overwritten (a bad sector, a torn copy).
  std::string bytes = read_file(db_path);
  for (std::size_t i = 0; i < page; ++i) bytes[page * (pages / 2) + i] = static_cast<char>(0xA5);
  write_file(db_path, bytes);

  Result r = lungvol(batch_args(m, dir + "/out") + " --force");
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_TRUE(contains(r.output, db_path + "' is damaged")) << r.output;
  EXPECT_TRUE(contains(r.output, "quick_check")) << r.output;
  EXPECT_FALSE(contains(r.output, "batch: [1/")) << "refused before any scan";
  for (const char* cmd : {"report", "sweep", "endpoint"}) {
    r = lungvol(std::string(cmd) + " " + q(dir + "/out"));
    EXPECT_EQ(r.code, 3) << cmd << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "is damaged")) << cmd << ": " << r.output;
  }
}

// ---- read-only archive (#19 item 13) --------------------------------------------------------

TEST(StoreFaults, ReadOnlyArchiveCanBeReported) {
  const std::string prefix = unprivileged_prefix();
  if (prefix.empty()) GTEST_SKIP() << "cannot drop root's permission override here (setpriv)";
  const std::string series = phantom_series("readonly_archive");
  const std::string dir = test::temp_dir("store_ro");
  const std::string m = cohort_manifest(dir, series);
  const std::string out = dir + "/out";
  ASSERT_EQ(lungvol(batch_args(m, out)).code, 0);
  ASSERT_EQ(lungvol("endpoint " + q(out)).code, 0);
  const std::string reference = read_file(out + "/endpoint/comparison.csv");
  // The archive: every folder r-x, every file r--, for everyone.
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    fs::permissions(e.path(), e.is_directory() ? fs::perms::owner_read | fs::perms::owner_exec |
                                                     fs::perms::group_read | fs::perms::group_exec |
                                                     fs::perms::others_read | fs::perms::others_exec
                                               : fs::perms::owner_read | fs::perms::group_read |
                                                     fs::perms::others_read);
  }
  fs::permissions(out, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(dir, fs::perms::all);
  const std::string writable = dir + "/derived";
  fs::create_directories(writable);
  fs::permissions(writable, fs::perms::all);
  const auto before = list_files(out);
  Result r = lungvol("report " + q(out) + " -o " + q(writable + "/report"), prefix);
  EXPECT_EQ(r.code, 0) << r.output;
  r = lungvol("sweep " + q(out) + " -o " + q(writable + "/sweep") + " --plot-visit day10", prefix);
  EXPECT_EQ(r.code, 0) << r.output;
  r = lungvol("endpoint " + q(out) + " -o " + q(writable), prefix);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_file(writable + "/endpoint/comparison.csv"), reference)
      << "the same numbers and results state as on writable storage";
  EXPECT_TRUE(fs::is_regular_file(writable + "/report/index.html"));
  EXPECT_EQ(list_files(out), before) << "nothing in the archive changed";
  fs::permissions(out, fs::perms::all);
}

// ---- Ctrl-C in a batch (#16) ------------------------------------------------------------------

TEST(StoreFaults, CtrlCInABatchLeavesNoEmptyFolderAndSaysHowToResume) {
  // Scans of about half a second each, so that the interruption lands inside one.
  const std::string dir = test::temp_dir("store_sigint");
  ASSERT_EQ(test::run_command("'" + test::lungvol_binary() + "' phantom -o " + q(dir + "/ph") +
                                  " --size 160,160,60 --spacing 2,2,5 --seed 3",
                              dir + "/ph.log"),
            0);
  std::string csv = "subject_id,arm,visit,path\n";
  for (int s = 1; s <= 4; ++s) {
    for (const char* v : {"baseline", "day10"}) {
      csv += "S" + std::to_string(s) + "," + (s % 2 ? "A" : "B") + "," + v + "," + dir + "/ph/dicom\n";
    }
  }
  write_file(dir + "/m.csv", csv);
  const std::string out = dir + "/out";
  const std::string log = dir + "/batch.log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string cmd = "exec '" + test::lungvol_binary() + "' --threads 1 " +
                            batch_args(dir + "/m.csv", out) + " > '" + log + "' 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for the first finished scan, then a little into the next one.
  for (int i = 0; i < 600 && !contains(read_file(log), "[1/8]"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string output = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal instead of stopping: " << output;
  EXPECT_EQ(WEXITSTATUS(status), 130) << output;
  EXPECT_TRUE(contains(output, "interrupted, re-run to resume")) << output;
  // Every scan folder is a whole scan; nothing temporary, nothing empty.
  std::size_t folders = 0;
  for (const auto& subject : fs::directory_iterator(out + "/scans")) {
    EXPECT_FALSE(fs::is_empty(subject.path())) << subject.path();
    for (const auto& visit : fs::directory_iterator(subject.path())) {
      const std::string name = visit.path().filename().string();
      EXPECT_NE(name[0], '.') << "temporary folder left: " << visit.path();
      EXPECT_TRUE(fs::is_regular_file(visit.path() / "metrics.json")) << visit.path();
      ++folders;
    }
  }
  const std::string db = out + "/results.sqlite";
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans WHERE status = 'ok'"), std::to_string(folders));
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM failures"), "0") << "an interruption is no failure";
  EXPECT_LT(folders, 8u) << "the batch was not interrupted (too fast?)";
  // visits_wide.csv describes the store as it was left.
  std::size_t ok_rows = 0, lines = 0;
  const std::string wide = read_file(out + "/visits_wide.csv");
  for (std::size_t at = 0; at < wide.size(); ++lines) {
    const std::size_t end = wide.find('\n', at);
    std::string line = wide.substr(at, end - at);
    for (int field = 0; field < 5; ++field) line = line.substr(line.find(',') + 1);
    ok_rows += line.rfind("ok,", 0) == 0;  // the status column
    at = end + 1;
  }
  EXPECT_EQ(lines, 9u);
  EXPECT_EQ(ok_rows, folders);
  // Re-running resumes.
  const Result r = lungvol(batch_args(dir + "/m.csv", out));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans WHERE status = 'ok'"), "8");
  EXPECT_EQ(one(db, "SELECT n_skipped FROM runs ORDER BY run_id DESC LIMIT 1"), std::to_string(folders));
}

// ---- per-scan outputs swapped in whole (#16) ------------------------------------------------

TEST(StoreFaults, RerunNeverLeavesFilesOfAnEarlierRun) {
  const std::string dir = test::temp_dir("store_rerun");
  const std::string L = "'" + test::lungvol_binary() + "'";
  // 3.6 mm voxels: coarse enough to be quick, fine enough for the lesions to be found.
  ASSERT_EQ(test::run_command(L + " phantom -o " + q(dir + "/with") + " --size 96,96,40 --spacing 3.6,3.6,8 --seed 1",
                              dir + "/p1.log"), 0);
  ASSERT_EQ(test::run_command(L + " phantom -o " + q(dir + "/without") + " --size 96,96,40 --spacing 3.6,3.6,8 --seed 1 --no-lesions",
                              dir + "/p2.log"), 0);
  const std::string out = dir + "/out";
  Result r = lungvol("analyze " + q(dir + "/with/dicom") + " -o " + q(out));
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_TRUE(fs::is_regular_file(out + "/qc_axial_max_lesion.png"));
  const std::string old_seg = read_file(out + "/seg.dcm");
  // The same folder for a scan without lesions, as NIfTI (no DICOM SEG/SR): nothing of the
  // first run survives.
  ASSERT_EQ(test::run_command(L + " convert " + q(dir + "/without/dicom") + " -o " + q(dir + "/without.nii.gz"),
                              dir + "/c.log"), 0);
  r = lungvol("analyze " + q(dir + "/without.nii.gz") + " -o " + q(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(out + "/qc_axial_max_lesion.png")) << "a lesion image of the earlier run";
  EXPECT_FALSE(fs::exists(out + "/seg.dcm")) << "a DICOM SEG of the earlier run";
  EXPECT_FALSE(fs::exists(out + "/sr.dcm"));
  EXPECT_TRUE(fs::is_regular_file(out + "/protocol.toml"));
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".out.lungvol-tmp"), std::string::npos) << e.path();
  }
  // A folder holding files lungvol did not write is never replaced.
  write_file(out + "/notes.txt", "mine\n");
  r = lungvol("analyze " + q(dir + "/with/dicom") + " -o " + q(out));
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_TRUE(contains(r.output, "'notes.txt'")) << r.output;
  EXPECT_EQ(read_file(out + "/notes.txt"), "mine\n");
  EXPECT_TRUE(fs::is_regular_file(out + "/metrics.json")) << "left as it was";
  // A failed analysis leaves no folder behind (and an existing one as it was).
  r = lungvol("analyze " + q(dir + "/no-such-scan") + " -o " + q(dir + "/new/deeper/out"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/new")) << "a failed analyze leaves no empty folder";
  fs::remove(out + "/notes.txt");
  const std::string before = read_file(out + "/metrics.json");
  r = lungvol("analyze " + q(dir + "/no-such-scan") + " -o " + q(out));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_EQ(read_file(out + "/metrics.json"), before);
  (void)old_seg;
}

// A scan that fails on a re-run loses its earlier outputs (the store no longer has them).
TEST(StoreFaults, FailedRerunRemovesTheScansEarlierFolder) {
  const std::string series = phantom_series("fail_rerun");
  const std::string dir = test::temp_dir("store_failrerun");
  const std::string m = cohort_manifest(dir, series);
  ASSERT_EQ(lungvol(batch_args(m, dir + "/out")).code, 0);
  ASSERT_TRUE(fs::is_regular_file(dir + "/out/scans/S2/day10/metrics.json"));
  write_file(m, "subject_id,arm,visit,path\nS1,A,baseline," + series + "\nS1,A,day10," + series +
                    "\nS2,B,baseline," + series + "\nS2,B,day10," + dir + "/missing\n");
  const Result r = lungvol(batch_args(m, dir + "/out"));
  EXPECT_EQ(r.code, 8) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/out/scans/S2/day10")) << "outputs of a scan the store holds as failed";
  EXPECT_TRUE(fs::is_regular_file(dir + "/out/scans/S2/baseline/metrics.json"));
}

// ---- manifest blank rows (#19 item 13, docs/batch.md) ----------------------------------------

TEST(StoreFaults, BlankManifestRowsAreSkippedAsDocumented) {
  const std::string series = phantom_series("blank_rows");
  const std::string dir = test::temp_dir("store_blank");
  write_file(dir + "/m.csv", "subject_id,arm,visit,path\r\nS1,A,baseline," + series +
                                 "\r\n   \r\n,,,\r\n \t \r\n , , ,\r\nS2,B,baseline," + series + "\r\n,,,\r\n");
  const Result r = lungvol(batch_args(dir + "/m.csv", dir + "/out"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(one(dir + "/out/results.sqlite", "SELECT COUNT(*) FROM manifest"), "2");
  EXPECT_EQ(one(dir + "/out/results.sqlite", "SELECT line FROM manifest WHERE subject_id = 'S2'"), "7");
}

// ---- derived files use what the batch stored, and know their results state (#16) ------------

TEST(StoreFaults, EndpointUsesTheBatchSchedule) {
  const std::string series = phantom_series("stored_schedule");
  const std::string dir = test::temp_dir("store_schedule");
  write_file(dir + "/weeks.toml", "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
                                  "[[visit]]\nname = \"week1\"\nday = 7\n"
                                  "[[visit]]\nname = \"week4\"\nday = 28\n");
  std::string csv = "subject_id,arm,visit,path\n";
  for (const char* s : {"S1", "S2", "S3", "S4"}) {
    for (const char* v : {"baseline", "week1", "week4"}) {
      csv += std::string(s) + "," + (s[1] % 2 ? "A" : "B") + "," + v + "," + series + "\n";
    }
  }
  write_file(dir + "/m.csv", csv);
  Result r = lungvol(batch_args(dir + "/m.csv", dir + "/out") + " --schedule " + q(dir + "/weeks.toml"));
  ASSERT_EQ(r.code, 0) << r.output;
  fs::remove(dir + "/weeks.toml");  // what the batch stored is enough
  r = lungvol("endpoint " + q(dir + "/out"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string cmp = read_file(dir + "/out/endpoint/comparison.csv");
  // (The phantom's lesion % is 0: relative changes are undefined; mean HU changes are not.)
  EXPECT_TRUE(contains(cmp, "mean_hu_abs_change,week4,mITT,A,2,")) << cmp;
  EXPECT_TRUE(contains(cmp, "mean_hu_abs_change,week1,PP,A,2,")) << cmp;
  EXPECT_FALSE(contains(cmp, "day28")) << cmp.substr(0, 800);
  // A schedule that contradicts the batch's visits is refused, naming them.
  write_file(dir + "/days.toml", "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
                                 "[[visit]]\nname = \"day28\"\nday = 28\n");
  r = lungvol("endpoint " + q(dir + "/out") + " --schedule " + q(dir + "/days.toml"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "week1, week4")) << r.output;
  r = lungvol("sweep " + q(dir + "/out") + " --plot-visit week4");
  EXPECT_EQ(r.code, 0) << r.output;
}

nlohmann::json json_of(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

TEST(StoreFaults, StaleDerivedFilesAreRecognised) {
  const std::string dir = test::temp_dir("store_stale");
  const std::string L = "'" + test::lungvol_binary() + "'";
  for (int seed : {1, 2}) {
    ASSERT_EQ(test::run_command(L + " phantom -o " + q(dir + "/p" + std::to_string(seed)) +
                                    " --size 64,64,24 --spacing 2.7,2.7,6.5 --seed " + std::to_string(seed) +
                                    (seed == 2 ? " --lesion-scale 1.4" : ""),
                                dir + "/p.log"),
              0);
  }
  const std::string p1 = dir + "/p1/dicom", p2 = dir + "/p2/dicom";
  const std::string m = dir + "/m.csv";
  write_file(m, "subject_id,arm,visit,path\nS1,A,baseline," + p1 + "\nS1,A,day10," + p1 +
                    "\nS2,B,baseline," + p1 + "\nS2,B,day10," + p1 + "\n");
  const std::string out = dir + "/out";
  ASSERT_EQ(lungvol(batch_args(m, out)).code, 0);
  ASSERT_EQ(lungvol("endpoint " + q(out)).code, 0);
  ASSERT_EQ(lungvol("export " + q(out) + " --xlsx " + q(dir + "/a.xlsx")).code, 0);
  const std::string state1 = one(out + "/results.sqlite", "SELECT value FROM meta WHERE key = 'results_state'");
  EXPECT_EQ(state1.size(), 64u);
  EXPECT_EQ(json_of(out + "/endpoint/provenance.json").value("results_state", ""), state1);
  EXPECT_TRUE(contains(read_file(out + "/endpoint/comparison.csv"), "," + state1 + "\n"));
  EXPECT_TRUE(contains(read_file(out + "/endpoint/table2.md"), "results state " + state1.substr(0, 16)));

  // One scan re-analysed with another input: endpoint/ is now stale.
  write_file(m, "subject_id,arm,visit,path\nS1,A,baseline," + p1 + "\nS1,A,day10," + p2 +
                    "\nS2,B,baseline," + p1 + "\nS2,B,day10," + p1 + "\n");
  ASSERT_EQ(lungvol(batch_args(m, out)).code, 0);
  const std::string state2 = one(out + "/results.sqlite", "SELECT value FROM meta WHERE key = 'results_state'");
  EXPECT_NE(state2, state1);
  Result r = lungvol("export " + q(out) + " --xlsx " + q(dir + "/b.xlsx"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_TRUE(contains(r.output, "stale")) << r.output;
  EXPECT_TRUE(contains(r.output, "lungvol endpoint")) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/b.xlsx"));
  // The report recomputes the changes and says so; it records the state it shows.
  r = lungvol("report " + q(out));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(read_file(out + "/report/index.html"), "recomputed")) << "the page says so";
  EXPECT_EQ(json_of(out + "/report/provenance.json").value("results_state", ""), state2);
  // After the endpoint is recomputed the export goes through and names the state.
  ASSERT_EQ(lungvol("endpoint " + q(out)).code, 0);
  r = lungvol("export " + q(out) + " --xlsx " + q(dir + "/b.xlsx"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "source")) << r.output;
  r = lungvol("sweep " + q(out) + " --plot-visit day10");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(json_of(out + "/sweep/provenance.json").value("results_state", ""), state2);
  // An edit outside lungvol changes the state too.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((out + "/results.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE measurements SET value = value + 1 WHERE metric = 'lesion_pct' AND region = 'lungs'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  r = lungvol("export " + q(out) + " --xlsx " + q(dir + "/c.xlsx"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_TRUE(contains(r.output, "changed after lungvol last finished writing it")) << r.output;
}

}  // namespace
}  // namespace lungvol::faults
