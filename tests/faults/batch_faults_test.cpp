// `lungvol batch` killed with SIGKILL at random moments, then resumed: no scan lost, none
// duplicated, every scan finished before the kill kept as it was, the database intact. And
// two batches on one folder: the second refuses.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/faults/fault_support.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {
namespace {

constexpr int kScans = 8;

struct Cohort {
  std::string manifest;
};

// 4 subjects x 2 visits, every row the same small phantom series (the batch does not care).
const Cohort& cohort() {
  static const Cohort c = [] {
    Cohort c;
    const std::string series = phantom_series("batch_cohort");
    c.manifest = fs::path(series).parent_path().string() + "/manifest.csv";
    std::string csv = "subject_id,arm,visit,path\n";
    for (int s = 1; s <= kScans / 2; ++s) {
      for (const char* v : {"baseline", "day10"}) {
        csv += "S" + std::to_string(s) + "," + (s % 2 ? "A" : "B") + "," + v + "," + series + "\n";
      }
    }
    write_file(c.manifest, csv);
    return c;
  }();
  return c;
}

std::string batch_command(const std::string& out, const std::string& log) {
  return "exec '" + test::lungvol_binary() + "' --threads 2 batch '" + cohort().manifest +
         "' -o '" + out + "' --jobs 2 --no-qc --no-label-maps > '" + log + "' 2>&1";
}

pid_t spawn(const std::string& command) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::vector<std::string>> query(const std::string& db, const std::string& sql) {
  std::vector<std::vector<std::string>> rows;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db;
    sqlite3_close(h);
    return rows;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(h) << " in " << sql;
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        if (sqlite3_column_type(st, i) == SQLITE_FLOAT) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st, i));
          row.emplace_back(buf);
        } else if (sqlite3_column_type(st, i) == SQLITE_BLOB) {
          row.emplace_back(static_cast<const char*>(sqlite3_column_blob(st, i)),
                           static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
        } else {
          const auto* t = sqlite3_column_text(st, i);
          row.emplace_back(t ? reinterpret_cast<const char*>(t) : "NULL");
        }
      }
      rows.push_back(std::move(row));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return rows;
}

std::string one(const std::string& db, const std::string& sql) {
  const auto rows = query(db, sql);
  return rows.size() == 1 && rows[0].size() == 1 ? rows[0][0] : "<" + std::to_string(rows.size()) + " rows>";
}

// Results that must not depend on how the batch got there (no times or ids).
std::multiset<std::string> content(const std::string& db) {
  std::multiset<std::string> out;
  for (const auto& sql :
       {"SELECT subject_id, visit, status, input_sha256, series_uid, voxel_ml FROM scans",
        "SELECT s.subject_id, s.visit, m.region, m.metric, m.value, m.unit FROM measurements m "
        "JOIN scans s USING (scan_id)",
        "SELECT s.subject_id, s.visit, h.region, h.kind, h.hu_min, h.n_bins, h.total, h.counts "
        "FROM histograms h JOIN scans s USING (scan_id)"}) {
    for (const auto& row : query(db, sql)) {
      std::string line;
      for (const auto& cell : row) line += cell + "|";
      out.insert(line);
    }
  }
  return out;
}

struct Reference {
  std::multiset<std::string> content;
  std::size_t measurements_per_scan = 0, histograms_per_scan = 0;
  double seconds = 0;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    const std::string out = test::temp_dir("fault_batch_ref");
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(wait_exit(spawn(batch_command(out, out + ".log"))), 0) << read_file(out + ".log");
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string db = out + "/results.sqlite";
    r.content = content(db);
    r.measurements_per_scan = std::stoul(one(db, "SELECT COUNT(*) FROM measurements")) / kScans;
    r.histograms_per_scan = std::stoul(one(db, "SELECT COUNT(*) FROM histograms")) / kScans;
    EXPECT_GT(r.measurements_per_scan, 0u);
    return r;
  }();
  return ref;
}

// What a killed batch must have left: an intact store in which every scan is whole.
// `moved_from` -> `moved_to`: the output folder was copied elsewhere after the run.
void expect_consistent_after_kill(const std::string& db, std::map<std::string, std::string>& kept,
                                  const std::string& moved_from = "",
                                  const std::string& moved_to = "") {
  ASSERT_EQ(one(db, "PRAGMA integrity_check"), "ok");
  // Killed while the store was being created: tables are created one by one (CREATE TABLE IF
  // NOT EXISTS, completed by the next run); no result can be in it yet.
  if (one(db, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('scans', 'measurements', "
              "'histograms')") != "3") {
    return;
  }
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM measurements WHERE scan_id NOT IN (SELECT scan_id FROM scans)"), "0");
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM histograms WHERE scan_id NOT IN (SELECT scan_id FROM scans)"), "0");
  const Reference& ref = reference();
  for (const auto& row : query(db, "SELECT s.subject_id || '/' || s.visit, s.analyzed_at, s.outdir, "
                                   "(SELECT COUNT(*) FROM measurements m WHERE m.scan_id = s.scan_id), "
                                   "(SELECT COUNT(*) FROM histograms h WHERE h.scan_id = s.scan_id) "
                                   "FROM scans s WHERE s.status = 'ok'")) {
    SCOPED_TRACE(row[0]);
    EXPECT_EQ(std::stoul(row[3]), ref.measurements_per_scan) << "partial scan in the store";
    EXPECT_EQ(std::stoul(row[4]), ref.histograms_per_scan) << "partial scan in the store";
    // The scan's own files are whole too.
    std::string dir = row[2];
    if (!moved_from.empty() && dir.rfind(moved_from, 0) == 0) dir = moved_to + dir.substr(moved_from.size());
    const auto j = nlohmann::json::parse(read_file(dir + "/metrics.json"), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "metrics.json of a finished scan is not whole";
    kept[row[0]] = row[1];
  }
}

TEST(BatchFaults, KilledAtRandomMomentsResumesWithNothingLost) {
  const Reference& ref = reference();
  ASSERT_EQ(ref.content.size() > 0, true);
  int kills_mid_run = 0, total_kept = 0;
  for (unsigned seed : {1u, 2u, 3u, 4u, 5u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const std::string out = test::temp_dir("fault_batch_kill");
    const std::string db = out + "/results.sqlite";
    std::map<std::string, std::string> kept;  // finished before a kill: scan -> analyzed_at
    // Two kills in a row for odd seeds: a resumed batch may be killed again.
    const int kills = seed % 2 ? 2 : 1;
    for (int k = 0; k < kills; ++k) {
      // A random moment inside the run: after a random number of finished scans (the log
      // has one line per scan), plus a random part of one scan's time.
      const int after = std::uniform_int_distribution<int>(0, kScans - 1)(rng);
      const double extra =
          std::uniform_real_distribution<double>(0.0, 1.0)(rng) * ref.seconds * 2 / kScans;
      const std::string log = out + "_kill" + std::to_string(k) + ".log";
      const pid_t pid = spawn(batch_command(out, log));
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (std::chrono::steady_clock::now() < deadline) {
        const std::string text = read_file(log);
        int done = 0;
        for (std::size_t p = text.find("batch: ["); p != std::string::npos; p = text.find("batch: [", p + 1)) ++done;
        if (done >= after) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(extra));
      ::kill(pid, SIGKILL);
      const int code = wait_exit(pid);
      if (code == 128 + SIGKILL) ++kills_mid_run;
      if (!fs::exists(db)) continue;  // killed before the store was created
      std::map<std::string, std::string> now;
      expect_consistent_after_kill(db, now);
      for (const auto& [scan, at_time] : kept) {
        EXPECT_EQ(now.count(scan) ? now.at(scan) : "<lost>", at_time) << scan << " was lost or redone";
      }
      kept = now;
    }
    total_kept += static_cast<int>(kept.size());
    const std::string log = out + "_resume.log";
    ASSERT_EQ(wait_exit(spawn(batch_command(out, log))), 0) << read_file(log);
    EXPECT_EQ(one(db, "PRAGMA integrity_check"), "ok");
    EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans"), std::to_string(kScans));
    EXPECT_EQ(one(db, "SELECT COUNT(DISTINCT subject_id || '/' || visit) FROM scans WHERE status = 'ok'"),
              std::to_string(kScans));
    // The resumed run skipped exactly the scans finished before the kill, and kept them as
    // they were (same analysis time: not redone).
    EXPECT_EQ(one(db, "SELECT n_skipped FROM runs ORDER BY run_id DESC LIMIT 1"), std::to_string(kept.size()));
    for (const auto& [scan, at_time] : kept) {
      EXPECT_EQ(one(db, "SELECT analyzed_at FROM scans WHERE subject_id || '/' || visit = '" + scan + "'"),
                at_time) << scan;
    }
    // Same numbers, bit for bit, as the uninterrupted batch.
    EXPECT_TRUE(content(db) == ref.content) << "resumed store differs from an uninterrupted run";
    // visits_wide.csv: header + one line per scan.
    const std::string wide = read_file(out + "/visits_wide.csv");
    EXPECT_EQ(std::count(wide.begin(), wide.end(), '\n'), kScans + 1);
  }
  std::printf("[ figures ] 5 seeds, %d SIGKILLs during a run, %d finished scans kept across kills, "
              "uninterrupted batch %.2f s\n", kills_mid_run, total_kept, ref.seconds);
  EXPECT_GT(kills_mid_run, 0);
}

TEST(BatchFaults, SecondBatchOnTheSameFolderRefuses) {
  const std::string out = test::temp_dir("fault_batch_lock");
  const pid_t first = spawn(batch_command(out, out + "_first.log"));
  // Wait until the first batch holds the lock (its pid is written into .lock).
  const std::string lock = out + "/.lock";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         read_file(lock).find(std::to_string(first)) == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_NE(read_file(lock).find(std::to_string(first)), std::string::npos) << "first batch never locked";
  // The first batch is paused while the second starts: a live batch holding the folder, however
  // fast its scans are (the 8 scans used to outlast the second's start-up; they no longer do).
  ASSERT_EQ(kill(first, SIGSTOP), 0);
  const Result second = lungvol("batch '" + cohort().manifest + "' -o '" + out + "' --no-qc --no-label-maps");
  ASSERT_EQ(kill(first, SIGCONT), 0);
  const int first_code = wait_exit(first);
  EXPECT_EQ(second.code, 7) << second.output;
  EXPECT_TRUE(contains(second.output, "another lungvol batch (pid " + std::to_string(first) + ")"))
      << second.output;
  EXPECT_TRUE(contains(second.output, out)) << second.output;
  // The refused batch left no trace; the first one finished normally.
  ASSERT_EQ(first_code, 0) << read_file(out + "_first.log");
  const std::string db = out + "/results.sqlite";
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM runs"), "1");
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans WHERE status = 'ok'"), std::to_string(kScans));
  EXPECT_TRUE(content(db) == reference().content);
  // Once the first is done, the folder is free again (nothing to do: all skipped).
  const Result third = lungvol("batch '" + cohort().manifest + "' -o '" + out + "' --no-qc --no-label-maps");
  EXPECT_EQ(third.code, 0) << third.output;
  EXPECT_EQ(one(db, "SELECT n_skipped FROM runs WHERE run_id = 2"), std::to_string(kScans));
}

TEST(BatchFaults, DiskFullDuringABatchThenResumeLosesNothing) {
  const Reference& ref = reference();
  const std::string base = test::temp_dir("fault_batch_full");
  const std::string mnt = base + "/mnt", keep1 = base + "/after_full", keep2 = base + "/after_resume";
  fs::create_directories(mnt);
  if (test::run_command("unshare -m sh -c \"mount -t tmpfs -o size=4k tmpfs '" + mnt + "'\"",
                        base + "/probe.log") != 0) {
    GTEST_SKIP() << "cannot mount a private tmpfs here (needs unshare + mount privileges)";
  }
  // 8 scans need about 2 MB of per-scan files plus the store: 1000 KiB fills up mid-batch. The
  // file system is then grown (remount) and the same command resumes.
  const std::string out = mnt + "/out";
  const std::string script = base + "/run.sh";
  write_file(script, "mount -t tmpfs -o size=1000k tmpfs '" + mnt + "' || exit 99\n" +
                         batch_command(out, base + "/full.log").substr(5) +
                         "\necho $? > '" + base + "/rc1'\nmkdir -p '" + keep1 + "'\ncp -a '" + out +
                         "/.' '" + keep1 + "/'\nmount -o remount,size=64m '" + mnt + "'\n" +
                         batch_command(out, base + "/resume.log").substr(5) + "\necho $? > '" +
                         base + "/rc2'\nmkdir -p '" + keep2 + "'\ncp -a '" + out + "/.' '" + keep2 +
                         "/'\n");
  ASSERT_EQ(test::run_command("unshare -m sh '" + script + "'", base + "/script.log"), 0)
      << read_file(base + "/script.log");
  const std::string full_log = read_file(base + "/full.log");
  const int rc1 = std::stoi(read_file(base + "/rc1"));
  // Scans whose files did not fit fail (exit 8); a store that cannot grow stops the batch (7).
  EXPECT_TRUE(rc1 == 7 || rc1 == 8) << rc1 << ": " << full_log;
  EXPECT_TRUE(contains(full_log, "No space left on device") || contains(full_log, "disk full") ||
              contains(full_log, "database or disk is full"))
      << full_log;
  std::map<std::string, std::string> kept;
  if (fs::exists(keep1 + "/results.sqlite")) {
    expect_consistent_after_kill(keep1 + "/results.sqlite", kept, out, keep1);
  }
  EXPECT_LT(kept.size(), static_cast<std::size_t>(kScans)) << "1000 KiB was not too small";
  EXPECT_EQ(read_file(base + "/rc2"), "0\n") << read_file(base + "/resume.log");
  const std::string db = keep2 + "/results.sqlite";
  EXPECT_EQ(one(db, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(one(db, "SELECT COUNT(*) FROM scans WHERE status = 'ok'"), std::to_string(kScans));
  for (const auto& [scan, at_time] : kept) {
    EXPECT_EQ(one(db, "SELECT analyzed_at FROM scans WHERE subject_id || '/' || visit = '" + scan + "'"),
              at_time) << scan << " was redone";
  }
  EXPECT_TRUE(content(db) == ref.content) << "resumed store differs from an uninterrupted run";
  std::printf("[ figures ] disk full mid-batch: exit %d, %zu of %d scans complete before the "
              "disk filled, all %d after the resume\n", rc1, kept.size(), kScans, kScans);
}

}  // namespace
}  // namespace lungvol::faults
