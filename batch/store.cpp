#include "batch/store.hpp"

#include <sqlite3.h>

#include <cmath>
#include <map>

#include "core/error.hpp"
#include "pipeline/tables.hpp"

namespace lungvol::batch {
namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(
  run_id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
  software_version TEXT NOT NULL, protocol_name TEXT, protocol_version TEXT,
  protocol_sha256 TEXT, lesion_low_hu REAL, lesion_split_hu REAL, lesion_high_hu REAL,
  schedule_toml TEXT, manifest_path TEXT, manifest_sha256 TEXT, host TEXT, command_line TEXT,
  jobs INTEGER, threads INTEGER, n_total INTEGER, n_analyzed INTEGER, n_skipped INTEGER,
  n_failed INTEGER);
CREATE TABLE IF NOT EXISTS manifest(
  subject_id TEXT NOT NULL, arm TEXT NOT NULL, visit TEXT NOT NULL, visit_day REAL,
  path TEXT NOT NULL, full_path TEXT NOT NULL, series_uid TEXT, site TEXT, population TEXT,
  line INTEGER, PRIMARY KEY(subject_id, visit));
CREATE TABLE IF NOT EXISTS scans(
  scan_id INTEGER PRIMARY KEY, subject_id TEXT NOT NULL, arm TEXT NOT NULL,
  visit TEXT NOT NULL, visit_day REAL, site TEXT, population TEXT, path TEXT NOT NULL,
  series_uid TEXT, input_sha256 TEXT, protocol_name TEXT, protocol_version TEXT,
  protocol_sha256 TEXT, software_version TEXT,
  status TEXT NOT NULL CHECK(status IN ('ok', 'failed')), study_date TEXT,
  days_from_baseline REAL, in_window INTEGER, outdir TEXT, analyzed_at TEXT, timing_s REAL,
  voxel_ml REAL, run_id INTEGER REFERENCES runs(run_id), warnings TEXT, error TEXT,
  UNIQUE(subject_id, visit));
CREATE TABLE IF NOT EXISTS measurements(
  scan_id INTEGER NOT NULL REFERENCES scans(scan_id) ON DELETE CASCADE,
  region TEXT NOT NULL, metric TEXT NOT NULL, value REAL, unit TEXT,
  PRIMARY KEY(scan_id, region, metric));
CREATE TABLE IF NOT EXISTS histograms(
  scan_id INTEGER NOT NULL REFERENCES scans(scan_id) ON DELETE CASCADE,
  region TEXT NOT NULL, kind TEXT NOT NULL CHECK(kind IN ('lung', 'suppressed')),
  hu_min INTEGER NOT NULL, n_bins INTEGER NOT NULL, total INTEGER NOT NULL, counts BLOB,
  PRIMARY KEY(scan_id, region, kind));
CREATE TABLE IF NOT EXISTS failures(
  failure_id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(run_id),
  subject_id TEXT NOT NULL, visit TEXT NOT NULL, path TEXT, error TEXT, exit_code INTEGER,
  failed_at TEXT);
)sql";

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& where) : db_(db), where_(where) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) {
      throw Error(ExitCode::kOutput, where_ + ": " + sqlite3_errmsg(db));
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, double v) {
    if (std::isfinite(v)) {
      sqlite3_bind_double(s_, i, v);
    } else {
      sqlite3_bind_null(s_, i);
    }
    return *this;
  }
  Stmt& bind(int i, std::optional<double> v) {
    return v ? bind(i, *v) : (sqlite3_bind_null(s_, i), *this);
  }
  Stmt& bind(int i, std::optional<bool> v) {
    if (v) return bind(i, static_cast<std::int64_t>(*v ? 1 : 0));
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(ExitCode::kOutput, where_ + ": " + sqlite3_errmsg(db_));
  }
  void run() {
    step();
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string{};
  }
  std::string blob(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string{};
  }
  bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double real(int c) const { return sqlite3_column_double(s_, c); }
  std::optional<double> opt_real(int c) const {
    return null(c) ? std::nullopt : std::optional<double>(real(c));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string where_;
};

// Rolls back unless committed: an exception inside a scan's transaction leaves no trace.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& where) : db_(db), where_(where) {
    exec("BEGIN IMMEDIATE");
  }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec("COMMIT");
    done_ = true;
  }

 private:
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw Error(ExitCode::kOutput, where_ + ": " + msg);
    }
  }
  sqlite3* db_;
  std::string where_;
  bool done_ = false;
};

const char* kScanColumns =
    "scan_id, subject_id, arm, visit, visit_day, site, population, path, series_uid, "
    "input_sha256, protocol_name, protocol_version, protocol_sha256, software_version, status, "
    "study_date, days_from_baseline, in_window, outdir, analyzed_at, timing_s, voxel_ml, run_id, "
    "warnings, error";

ScanRecord read_scan(const Stmt& s) {
  ScanRecord r;
  r.scan_id = s.i64(0);
  r.subject_id = s.text(1);
  r.arm = s.text(2);
  r.visit = s.text(3);
  r.visit_day = s.opt_real(4);
  r.site = s.text(5);
  r.population = s.text(6);
  r.path = s.text(7);
  r.series_uid = s.text(8);
  r.input_sha256 = s.text(9);
  r.protocol_name = s.text(10);
  r.protocol_version = s.text(11);
  r.protocol_sha256 = s.text(12);
  r.software_version = s.text(13);
  r.status = s.text(14);
  r.study_date = s.text(15);
  r.days_from_baseline = s.opt_real(16);
  if (!s.null(17)) r.in_window = s.i64(17) != 0;
  r.outdir = s.text(18);
  r.analyzed_at = s.text(19);
  r.timing_s = s.real(20);
  r.voxel_ml = s.real(21);
  r.run_id = s.i64(22);
  r.warnings = s.text(23);
  r.error = s.text(24);
  return r;
}

}  // namespace

std::string encode_counts(const HuHistogram& h, int* hu_min, int* n_bins) {
  int first = -1, last = -1;
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    if (h.counts[b]) {
      if (first < 0) first = b;
      last = b;
    }
  }
  std::string out;
  if (first < 0) {
    *hu_min = HuHistogram::kMinHu;
    *n_bins = 0;
    return out;
  }
  *hu_min = first + HuHistogram::kMinHu;
  *n_bins = last - first + 1;
  out.reserve(static_cast<std::size_t>(*n_bins) * 2);
  for (int b = first; b <= last; ++b) {
    std::uint64_t v = h.counts[b];
    do {
      const auto byte = static_cast<unsigned char>(v & 0x7f);
      v >>= 7;
      out.push_back(static_cast<char>(v ? (byte | 0x80) : byte));
    } while (v);
  }
  return out;
}

HuHistogram decode_counts(const std::string& blob, int hu_min, int n_bins) {
  HuHistogram h;
  std::size_t pos = 0;
  for (int i = 0; i < n_bins; ++i) {
    std::uint64_t v = 0;
    int shift = 0;
    while (true) {
      if (pos >= blob.size() || shift > 63) {
        throw Error(ExitCode::kInput, "histogram BLOB is truncated or corrupt");
      }
      const auto byte = static_cast<unsigned char>(blob[pos++]);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if (!(byte & 0x80)) break;
    }
    const int b = hu_min - HuHistogram::kMinHu + i;
    if (b < 0 || b >= HuHistogram::kBins) {
      throw Error(ExitCode::kInput, "histogram BLOB outside the HU range");
    }
    h.counts[static_cast<std::size_t>(b)] = v;
  }
  return h;
}

Store::Store(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(ExitCode::kOutput, "cannot open results store '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  // WAL: readers (sweep, ad-hoc queries) never block the batch; FULL: a committed scan
  // survives even a power loss, not only a killed process.
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
  exec(kSchema);
  Stmt v(db_, "SELECT value FROM meta WHERE key = 'schema_version'", path_);
  if (v.step()) {
    if (v.text(0) != std::to_string(kSchemaVersion)) {
      throw Error(ExitCode::kOutput, "results store '" + path + "' has schema version " +
                                         v.text(0) + "; this lungvol writes version " +
                                         std::to_string(kSchemaVersion));
    }
  } else {
    Stmt ins(db_, "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", path_);
    ins.bind(1, std::to_string(kSchemaVersion)).run();
  }
}

Store::~Store() { sqlite3_close(db_); }

void Store::exec(const std::string& sql) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error(ExitCode::kOutput, "results store '" + path_ + "': " + msg);
  }
}

std::int64_t Store::begin_run(const RunInfo& i) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         "INSERT INTO runs(started_at, software_version, protocol_name, protocol_version, "
         "protocol_sha256, lesion_low_hu, lesion_split_hu, lesion_high_hu, schedule_toml, "
         "manifest_path, manifest_sha256, host, command_line, jobs, threads) "
         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
         path_);
  s.bind(1, i.started_at).bind(2, i.software_version).bind(3, i.protocol_name);
  s.bind(4, i.protocol_version).bind(5, i.protocol_sha256).bind(6, i.lesion_low_hu);
  s.bind(7, i.lesion_split_hu).bind(8, i.lesion_high_hu).bind(9, i.schedule_toml);
  s.bind(10, i.manifest_path).bind(11, i.manifest_sha256).bind(12, i.host);
  s.bind(13, i.command_line).bind(14, i.jobs).bind(15, i.threads);
  s.run();
  return sqlite3_last_insert_rowid(db_);
}

void Store::finish_run(std::int64_t run_id, const RunCounts& c) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), n_total = ?, "
         "n_analyzed = ?, n_skipped = ?, n_failed = ? WHERE run_id = ?",
         path_);
  s.bind(1, static_cast<std::int64_t>(c.total)).bind(2, static_cast<std::int64_t>(c.analyzed));
  s.bind(3, static_cast<std::int64_t>(c.skipped)).bind(4, static_cast<std::int64_t>(c.failed));
  s.bind(5, run_id).run();
}

std::optional<RunInfo> Store::latest_run() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         "SELECT started_at, software_version, protocol_name, protocol_version, protocol_sha256, "
         "lesion_low_hu, lesion_split_hu, lesion_high_hu, schedule_toml, manifest_path, "
         "manifest_sha256, host, command_line, jobs, threads FROM runs ORDER BY run_id DESC "
         "LIMIT 1",
         path_);
  if (!s.step()) return std::nullopt;
  RunInfo i;
  i.started_at = s.text(0);
  i.software_version = s.text(1);
  i.protocol_name = s.text(2);
  i.protocol_version = s.text(3);
  i.protocol_sha256 = s.text(4);
  i.lesion_low_hu = s.real(5);
  i.lesion_split_hu = s.real(6);
  i.lesion_high_hu = s.real(7);
  i.schedule_toml = s.text(8);
  i.manifest_path = s.text(9);
  i.manifest_sha256 = s.text(10);
  i.host = s.text(11);
  i.command_line = s.text(12);
  i.jobs = static_cast<int>(s.i64(13));
  i.threads = static_cast<int>(s.i64(14));
  return i;
}

void Store::set_manifest(const Manifest& m) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  exec("DELETE FROM manifest");
  Stmt s(db_,
         "INSERT INTO manifest(subject_id, arm, visit, visit_day, path, full_path, series_uid, "
         "site, population, line) VALUES (?,?,?,?,?,?,?,?,?,?)",
         path_);
  for (const auto& e : m.entries) {
    s.bind(1, e.subject_id).bind(2, e.arm).bind(3, e.visit).bind(4, e.visit_day);
    s.bind(5, e.path).bind(6, e.full_path).bind(7, e.series_uid).bind(8, e.site);
    s.bind(9, e.population).bind(10, static_cast<std::int64_t>(e.line));
    s.run();
  }
  t.commit();
}

std::vector<ManifestEntry> Store::manifest() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         "SELECT subject_id, arm, visit, visit_day, path, full_path, series_uid, site, "
         "population, line FROM manifest ORDER BY line",
         path_);
  std::vector<ManifestEntry> out;
  while (s.step()) {
    ManifestEntry e;
    e.subject_id = s.text(0);
    e.arm = s.text(1);
    e.visit = s.text(2);
    e.visit_day = s.opt_real(3);
    e.path = s.text(4);
    e.full_path = s.text(5);
    e.series_uid = s.text(6);
    e.site = s.text(7);
    e.population = s.text(8);
    e.line = static_cast<std::size_t>(s.i64(9));
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<ScanRecord> Store::find_scan(const std::string& subject_id,
                                           const std::string& visit) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, std::string("SELECT ") + kScanColumns + " FROM scans WHERE subject_id = ? AND visit = ?",
         path_);
  s.bind(1, subject_id).bind(2, visit);
  if (!s.step()) return std::nullopt;
  return read_scan(s);
}

void Store::insert_scan_row(ScanRecord& r) {
  Stmt del(db_, "DELETE FROM scans WHERE subject_id = ? AND visit = ?", path_);
  del.bind(1, r.subject_id).bind(2, r.visit).run();
  Stmt s(db_,
         "INSERT INTO scans(subject_id, arm, visit, visit_day, site, population, path, "
         "series_uid, input_sha256, protocol_name, protocol_version, protocol_sha256, "
         "software_version, status, study_date, days_from_baseline, in_window, outdir, "
         "analyzed_at, timing_s, voxel_ml, run_id, warnings, error) "
         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
         path_);
  s.bind(1, r.subject_id).bind(2, r.arm).bind(3, r.visit).bind(4, r.visit_day);
  s.bind(5, r.site).bind(6, r.population).bind(7, r.path).bind(8, r.series_uid);
  s.bind(9, r.input_sha256).bind(10, r.protocol_name).bind(11, r.protocol_version);
  s.bind(12, r.protocol_sha256).bind(13, r.software_version).bind(14, r.status);
  s.bind(15, r.study_date).bind(16, r.days_from_baseline).bind(17, r.in_window);
  s.bind(18, r.outdir).bind(19, r.analyzed_at).bind(20, r.timing_s).bind(21, r.voxel_ml);
  s.bind(22, r.run_id).bind(23, r.warnings).bind(24, r.error);
  s.run();
  r.scan_id = sqlite3_last_insert_rowid(db_);
}

void Store::save_scan(ScanRecord& rec, const std::vector<pipeline::RegionResult>& regions) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  insert_scan_row(rec);
  Stmt m(db_, "INSERT INTO measurements(scan_id, region, metric, value, unit) VALUES (?,?,?,?,?)",
         path_);
  Stmt h(db_,
         "INSERT INTO histograms(scan_id, region, kind, hu_min, n_bins, total, counts) "
         "VALUES (?,?,?,?,?,?,?)",
         path_);
  for (const auto& r : regions) {
    for (const auto& x : pipeline::region_measurements(r)) {
      m.bind(1, rec.scan_id).bind(2, r.name).bind(3, x.metric).bind(4, x.value).bind(5, x.unit);
      m.run();
    }
    for (const auto* kind : {"lung", "suppressed"}) {
      const HuHistogram& hist =
          std::string(kind) == "lung" ? r.histograms.lung : r.histograms.suppressed;
      int hu_min = 0, n_bins = 0;
      const std::string blob = encode_counts(hist, &hu_min, &n_bins);
      h.bind(1, rec.scan_id).bind(2, r.name).bind(3, kind).bind(4, hu_min).bind(5, n_bins);
      h.bind(6, static_cast<std::int64_t>(hist.total())).bind_blob(7, blob);
      h.run();
    }
  }
  t.commit();
}

void Store::save_failure(ScanRecord& rec, int exit_code) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  insert_scan_row(rec);
  Stmt f(db_,
         "INSERT INTO failures(run_id, subject_id, visit, path, error, exit_code, failed_at) "
         "VALUES (?,?,?,?,?,?,?)",
         path_);
  f.bind(1, rec.run_id).bind(2, rec.subject_id).bind(3, rec.visit).bind(4, rec.path);
  f.bind(5, rec.error).bind(6, exit_code).bind(7, rec.analyzed_at);
  f.run();
  t.commit();
}

void Store::update_timing(const trial::VisitSchedule& schedule) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  const std::vector<ManifestEntry> entries = manifest();
  std::map<std::string, std::string> baseline_date;
  for (const auto& s : scans()) {
    const auto* v = schedule.find(s.visit);
    if (v && v->baseline && s.status == "ok") baseline_date[s.subject_id] = s.study_date;
  }
  Transaction t(db_, path_);
  Stmt up(db_,
          "UPDATE scans SET arm = ?, visit_day = ?, site = ?, population = ?, "
          "days_from_baseline = ?, in_window = ? WHERE subject_id = ? AND visit = ?",
          path_);
  for (const auto& e : entries) {
    const auto scan = find_scan(e.subject_id, e.visit);
    const auto* v = schedule.find(e.visit);
    if (!scan || !v) continue;
    const auto it = baseline_date.find(e.subject_id);
    const VisitTiming timing = visit_timing(*v, e.visit_day, scan->study_date,
                                            it == baseline_date.end() ? "" : it->second);
    up.bind(1, e.arm).bind(2, e.visit_day).bind(3, e.site).bind(4, e.population);
    up.bind(5, timing.days_from_baseline).bind(6, timing.in_window);
    up.bind(7, e.subject_id).bind(8, e.visit);
    up.run();
  }
  t.commit();
}

std::vector<ScanRecord> Store::scans() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, std::string("SELECT ") + kScanColumns + " FROM scans ORDER BY scan_id", path_);
  std::vector<ScanRecord> out;
  while (s.step()) out.push_back(read_scan(s));
  return out;
}

std::vector<Store::MeasurementRow> Store::measurements(std::int64_t scan_id) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  // rowid order = insertion order = region_measurements() order within a scan.
  Stmt s(db_, "SELECT scan_id, region, metric, value, unit FROM measurements WHERE scan_id = ? "
              "ORDER BY rowid",
         path_);
  s.bind(1, scan_id);
  std::vector<MeasurementRow> out;
  while (s.step()) out.push_back(MeasurementRow{s.i64(0), s.text(1), s.text(2), s.opt_real(3), s.text(4)});
  return out;
}

std::vector<StoredHistogram> Store::histograms(const std::string& region) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         "SELECT scan_id, region, kind, hu_min, n_bins, counts FROM histograms WHERE region = ? "
         "ORDER BY scan_id, kind",
         path_);
  s.bind(1, region);
  std::vector<StoredHistogram> out;
  while (s.step()) {
    StoredHistogram h;
    h.scan_id = s.i64(0);
    h.region = s.text(1);
    h.kind = s.text(2);
    h.histogram = decode_counts(s.blob(5), static_cast<int>(s.i64(3)), static_cast<int>(s.i64(4)));
    out.push_back(std::move(h));
  }
  return out;
}

std::size_t Store::count(const std::string& table) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "SELECT COUNT(*) FROM " + table, path_);
  s.step();
  return static_cast<std::size_t>(s.i64(0));
}

std::string Store::integrity_check() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "PRAGMA integrity_check", path_);
  std::string out;
  while (s.step()) out += (out.empty() ? "" : "\n") + s.text(0);
  return out;
}

}  // namespace lungvol::batch
