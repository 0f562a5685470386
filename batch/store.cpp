#include "batch/store.hpp"

#include <sqlite3.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
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
  patient_id TEXT, study_instance_uid TEXT, image_sha256 TEXT, input_patients TEXT, flags TEXT,
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
CREATE TABLE IF NOT EXISTS protocols(
  sha256 TEXT PRIMARY KEY, name TEXT, version TEXT, toml TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identity_flags(
  subject_id TEXT NOT NULL, visit TEXT NOT NULL, flag TEXT NOT NULL, detail TEXT,
  PRIMARY KEY(subject_id, visit, flag));
CREATE TABLE IF NOT EXISTS qc_flags(
  subject_id TEXT NOT NULL, visit TEXT NOT NULL, code TEXT NOT NULL, cause TEXT NOT NULL,
  severity TEXT NOT NULL CHECK(severity IN ('info', 'warn', 'fail')), value REAL, unit TEXT,
  message TEXT, PRIMARY KEY(subject_id, visit, code));
CREATE TABLE IF NOT EXISTS reviews(
  subject_id TEXT NOT NULL, visit TEXT NOT NULL,
  decision TEXT NOT NULL CHECK(decision IN ('accepted', 'excluded', 'corrected')),
  reason TEXT, lungs_mask TEXT, lesions_mask TEXT, reader TEXT NOT NULL, decided_at TEXT NOT NULL,
  scan_input_sha256 TEXT, scan_analyzed_at TEXT, PRIMARY KEY(subject_id, visit));
CREATE TABLE IF NOT EXISTS review_log(
  review_id INTEGER PRIMARY KEY, subject_id TEXT NOT NULL, visit TEXT NOT NULL,
  decision TEXT NOT NULL, reason TEXT, lungs_mask TEXT, lesions_mask TEXT, reader TEXT NOT NULL,
  decided_at TEXT NOT NULL, scan_input_sha256 TEXT, scan_analyzed_at TEXT);
)sql"
// Registration of follow-ups to their baseline (docs/batch.md, "Registration"). Added without a
// schema version of their own: a store of version 1 to 3 gains them when a batch opens it (IF NOT
// EXISTS, before the version check and upgrade below), and read-only readers treat absent tables
// as empty.
R"sql(
CREATE TABLE IF NOT EXISTS registrations(
  subject_id TEXT NOT NULL, visit TEXT NOT NULL, baseline_visit TEXT NOT NULL,
  registration_key TEXT, status TEXT NOT NULL CHECK(status IN ('ok', 'failed')),
  baseline_input_sha256 TEXT, followup_input_sha256 TEXT, parameters_sha256 TEXT,
  software_version TEXT, registered_at TEXT, timing_s REAL, outdir TEXT, run_id INTEGER,
  inspiration_flagged INTEGER, consistency_flagged INTEGER, error TEXT, record TEXT,
  PRIMARY KEY(subject_id, visit));
CREATE TABLE IF NOT EXISTS registration_measurements(
  subject_id TEXT NOT NULL, visit TEXT NOT NULL, region TEXT NOT NULL, metric TEXT NOT NULL,
  value REAL, unit TEXT, PRIMARY KEY(subject_id, visit, region, metric));
CREATE TABLE IF NOT EXISTS registration_subjects(
  subject_id TEXT PRIMARY KEY, subject_key TEXT, baseline_visit TEXT, best_aerated_visit TEXT,
  status TEXT, error TEXT, updated_at TEXT, run_id INTEGER);
CREATE TABLE IF NOT EXISTS lung_mask_consistency(
  subject_id TEXT NOT NULL, target_visit TEXT NOT NULL, source_visit TEXT NOT NULL,
  source_role TEXT NOT NULL, dice REAL, carried_ml REAL, own_ml REAL, disagreement_ml REAL,
  missed_dense_ml REAL, flagged INTEGER, reason TEXT,
  PRIMARY KEY(subject_id, target_visit, source_role));
)sql";

// Columns added to `scans` by schema version 2 (ALTER TABLE on a version-1 store).
const char* const kScansV2Columns[] = {"patient_id", "study_instance_uid", "image_sha256",
                                       "input_patients"};
// ... and by schema version 3.
const char* const kScansV3Columns[] = {"flags"};

// SQLite result codes that mean the store is damaged or not a database.
bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

std::string damaged_message(const std::string& path, const std::string& detail) {
  return "results store '" + path + "' is damaged (" + detail +
         "); restore it from a backup, or move it away and run the batch again (every scan is "
         "analyzed again)";
}

std::string busy_message(const std::string& path) {
  const std::string holders = processes_holding(path);
  return fmt::format(
      "results store '{}' stayed locked by another process after retrying with back-off (up to "
      "LUNGVOL_STORE_BUSY_TIMEOUT_S, default 120 s) ({}); close the program that holds it (an "
      "open sqlite3 shell or database browser with a pending write, a backup tool) and run "
      "again",
      path,
      holders.empty() ? "the holder is not visible: a process of another user or host"
                      : "held open by " + holders);
}

// The error of a failed SQLite call, with the cause named for a locked or damaged store.
Error store_error(sqlite3* db, int rc, const std::string& where, ExitCode code) {
  const int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return Error(ExitCode::kOutput, busy_message(where) + " [" + sqlite3_errmsg(db) + "]");
  }
  if (is_corruption(rc)) return Error(code, damaged_message(where, sqlite3_errmsg(db)));
  return Error(code, where + ": " + sqlite3_errmsg(db));
}

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& where,
       ExitCode code = ExitCode::kOutput)
      : db_(db), where_(where), code_(code) {
    const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr);
    if (rc != SQLITE_OK) throw store_error(db, rc, where_, code_);
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
    throw store_error(db_, rc, where_, code_);
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

  int columns() const { return sqlite3_column_count(s_); }
  int type(int c) const { return sqlite3_column_type(s_, c); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string where_;
  ExitCode code_;
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
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) throw store_error(db_, rc, where_, ExitCode::kOutput);
  }
  sqlite3* db_;
  std::string where_;
  bool done_ = false;
};

const char* const kScanColumnNames[] = {
    "scan_id",          "subject_id",    "arm",          "visit",          "visit_day",
    "site",             "population",    "path",         "series_uid",     "input_sha256",
    "protocol_name",    "protocol_version", "protocol_sha256", "software_version", "status",
    "study_date",       "days_from_baseline", "in_window", "outdir",       "analyzed_at",
    "timing_s",         "voxel_ml",      "run_id",       "warnings",       "error",
    "patient_id",       "study_instance_uid", "image_sha256", "input_patients", "flags"};

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
  r.patient_id = s.text(25);
  r.study_uid = s.text(26);
  r.image_sha256 = s.text(27);
  r.input_patients = s.text(28);
  r.flags = s.text(29);
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

Store::Store(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  if (const char* env = std::getenv("LUNGVOL_STORE_BUSY_TIMEOUT_S")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && std::isfinite(v) && v >= 0) busy_limit_s_ = v;
  }
  try {
    if (mode_ == Mode::kReadWrite) {
      open_read_write();
    } else {
      open_read_only();
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

namespace {
int busy_callback(void* store, int attempt) { return static_cast<Store*>(store)->on_busy(attempt); }

// file: URI of a path (RFC 3986 percent-encoding of everything but unreserved characters and /).
std::string file_uri(const std::string& path) {
  std::string out = "file:";
  for (const unsigned char c : std::filesystem::absolute(path).string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}
}  // namespace

int Store::on_busy(int attempt) {
  const auto now = std::chrono::steady_clock::now();
  if (attempt == 0) {
    busy_since_ = now;
    busy_warned_ = false;
  }
  const double waited = std::chrono::duration<double>(now - busy_since_).count();
  if (waited >= busy_limit_s_) return 0;  // give up: the statement fails with SQLITE_BUSY
  if (!busy_warned_ && waited >= 2.0) {
    busy_warned_ = true;
    const std::string holders = processes_holding(path_);
    log::warn("results store '{}' is locked by another process ({}); retrying for up to {:.0f} s",
              path_, holders.empty() ? "not visible here" : holders, busy_limit_s_);
  }
  // Back-off: 5 ms doubling to 500 ms.
  const int ms = std::min(500, 5 << std::min(attempt, 7));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return 1;
}

void Store::open_read_write() {
  const int rc = sqlite3_open_v2(path_.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    throw Error(ExitCode::kOutput, "cannot open results store '" + path_ + "': " + msg);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_handler(db_, busy_callback, this);
  check_health();
  // WAL: readers (sweep, ad-hoc queries) never block the batch; FULL: a committed scan
  // survives even a power loss, not only a killed process.
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
  // The schema (and an upgrade from version 1) in one transaction: a batch killed while
  // creating the store leaves no partial schema.
  Transaction t(db_, path_);
  exec(kSchema);
  Stmt v(db_, "SELECT value FROM meta WHERE key = 'schema_version'", path_);
  std::string version = v.step() ? v.text(0) : "";
  if (version.empty()) {
    Stmt ins(db_, "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", path_);
    ins.bind(1, std::to_string(kSchemaVersion)).run();
  } else if (version == "1" || version == "2") {
    // The new tables were created above (IF NOT EXISTS); the new scans columns are added.
    std::set<std::string> have;
    {
      Stmt cols(db_, "SELECT name FROM pragma_table_info('scans')", path_);
      while (cols.step()) have.insert(cols.text(0));
    }
    std::vector<const char*> add(std::begin(kScansV3Columns), std::end(kScansV3Columns));
    if (version == "1") add.insert(add.begin(), std::begin(kScansV2Columns), std::end(kScansV2Columns));
    for (const char* c : add) {
      if (!have.count(c)) exec(std::string("ALTER TABLE scans ADD COLUMN ") + c + " TEXT");
    }
    exec("UPDATE meta SET value = '" + std::to_string(kSchemaVersion) + "' WHERE key = 'schema_version'");
    log::info("results store '{}' upgraded from schema version {} to {}", path_, version, kSchemaVersion);
  } else if (version != std::to_string(kSchemaVersion)) {
    throw Error(ExitCode::kOutput, "results store '" + path_ + "' has schema version " + version +
                                       "; this lungvol writes version " +
                                       std::to_string(kSchemaVersion));
  }
  t.commit();
  schema_version_ = kSchemaVersion;
  scan_columns_.assign(std::begin(kScanColumnNames), std::end(kScanColumnNames));
}

void Store::open_read_only() {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path_, ec)) {
    throw Error(ExitCode::kInput, "no results store '" + path_ + "'");
  }
  const auto try_open = [&](const std::string& query) {
    sqlite3_close(db_);
    db_ = nullptr;
    const int rc = sqlite3_open_v2((file_uri(path_) + query).c_str(), &db_,
                                   SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX,
                                   nullptr);
    if (rc != SQLITE_OK) return rc;
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_handler(db_, busy_callback, this);
    // Opening is lazy: the first read finds out whether the file can be used.
    return sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  };
  int rc = try_open("?mode=ro");
  if (rc != SQLITE_OK && !is_corruption(rc)) {
    // On read-only storage SQLite cannot create the write-ahead log's shared-memory file. With
    // no write-ahead log left (a batch that ended normally checkpoints and removes it) the file
    // alone holds every committed row: read it as immutable.
    const std::string wal = path_ + "-wal";
    const bool wal_has_data = std::filesystem::exists(wal, ec) &&
                              std::filesystem::file_size(wal, ec) > 0 && !ec;
    if (wal_has_data) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "cannot open";
      throw Error(ExitCode::kInput,
                  "cannot read results store '" + path_ + "' here (" + msg + "): its write-ahead "
                  "log '" + wal + "' holds rows not yet in the main file, and SQLite cannot open "
                  "it on this (read-only?) storage; copy the batch folder to writable storage, or "
                  "open it once writable (e.g. `lungvol sweep`) so the log is checkpointed");
    }
    rc = try_open("?mode=ro&immutable=1");
    if (rc == SQLITE_OK) log::debug("results store '{}' opened immutable (read-only storage)", path_);
  }
  if (rc != SQLITE_OK) {
    if (is_corruption(rc)) throw Error(ExitCode::kInput, damaged_message(path_, sqlite3_errmsg(db_)));
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    throw Error(ExitCode::kInput, "cannot open results store '" + path_ + "': " + msg);
  }
  check_health();
  if (!has_table("meta") || !has_table("scans")) {
    throw Error(ExitCode::kInput, "'" + path_ + "' is not a lungvol results store (no meta/scans table)");
  }
  Stmt v(db_, "SELECT value FROM meta WHERE key = 'schema_version'", path_, ExitCode::kInput);
  const std::string version = v.step() ? v.text(0) : "";
  if (version != "1" && version != "2" && version != "3") {
    throw Error(ExitCode::kInput, "results store '" + path_ + "' has schema version '" + version +
                                      "'; this lungvol reads versions 1 to 3");
  }
  schema_version_ = std::stoi(version);
  std::set<std::string> have;
  Stmt cols(db_, "SELECT name FROM pragma_table_info('scans')", path_, ExitCode::kInput);
  while (cols.step()) have.insert(cols.text(0));
  for (const char* c : kScanColumnNames) {
    if (have.count(c)) scan_columns_.emplace_back(c);
  }
}

// PRAGMA quick_check on every open: a damaged page is found before the store is used, not at
// the end of a batch.
void Store::check_health() {
  const ExitCode code = mode_ == Mode::kReadOnly ? ExitCode::kInput : ExitCode::kOutput;
  std::string result;
  try {
    result = quick_check();
  } catch (const Error& e) {
    const std::string what = e.what();
    // SQLite may already fail to read the schema for PRAGMA quick_check: still the open check.
    if (what.find("is damaged") != std::string::npos) {
      throw Error(code, what + " [found by PRAGMA quick_check when the store was opened]");
    }
    if (what.find("locked") != std::string::npos) throw;
    throw Error(code, damaged_message(path_, what));
  }
  if (result != "ok") {
    std::string first = result.substr(0, result.find('\n'));
    const auto n = static_cast<std::size_t>(std::count(result.begin(), result.end(), '\n'));
    if (n > 0) first += fmt::format(" and {} more problem(s)", n);
    throw Error(code, damaged_message(path_, "PRAGMA quick_check: " + first));
  }
}

bool Store::has_table(const std::string& table) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", path_);
  s.bind(1, table);
  return s.step();
}

// The scans columns in read_scan() order; NULL for columns a version-1 store lacks.
std::string Store::scan_select_list() {
  std::string out;
  for (const char* c : kScanColumnNames) {
    const bool have = std::find(scan_columns_.begin(), scan_columns_.end(), c) != scan_columns_.end();
    out += (out.empty() ? "" : ", ") + (have ? std::string(c) : "NULL AS " + std::string(c));
  }
  return out;
}

Store::~Store() { sqlite3_close(db_); }

void Store::exec(const std::string& sql) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    throw store_error(db_, rc, path_,
                      mode_ == Mode::kReadOnly ? ExitCode::kInput : ExitCode::kOutput);
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

std::optional<RunInfo> Store::latest_run() { return latest_run_with_protocol(""); }

std::optional<RunInfo> Store::latest_run_with_protocol(const std::string& sha) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         std::string("SELECT started_at, software_version, protocol_name, protocol_version, "
                     "protocol_sha256, lesion_low_hu, lesion_split_hu, lesion_high_hu, "
                     "schedule_toml, manifest_path, manifest_sha256, host, command_line, jobs, "
                     "threads FROM runs ") +
             (sha.empty() ? "" : "WHERE protocol_sha256 = ? ") + "ORDER BY run_id DESC LIMIT 1",
         path_);
  if (!sha.empty()) s.bind(1, sha);
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
  Stmt s(db_, "SELECT " + scan_select_list() + " FROM scans WHERE subject_id = ? AND visit = ?",
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
         "analyzed_at, timing_s, voxel_ml, run_id, warnings, error, patient_id, "
         "study_instance_uid, image_sha256, input_patients, flags) "
         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
         path_);
  s.bind(1, r.subject_id).bind(2, r.arm).bind(3, r.visit).bind(4, r.visit_day);
  s.bind(5, r.site).bind(6, r.population).bind(7, r.path).bind(8, r.series_uid);
  s.bind(9, r.input_sha256).bind(10, r.protocol_name).bind(11, r.protocol_version);
  s.bind(12, r.protocol_sha256).bind(13, r.software_version).bind(14, r.status);
  s.bind(15, r.study_date).bind(16, r.days_from_baseline).bind(17, r.in_window);
  s.bind(18, r.outdir).bind(19, r.analyzed_at).bind(20, r.timing_s).bind(21, r.voxel_ml);
  s.bind(22, r.run_id).bind(23, r.warnings).bind(24, r.error).bind(25, r.patient_id);
  s.bind(26, r.study_uid).bind(27, r.image_sha256).bind(28, r.input_patients);
  if (r.flags.empty()) {
    s.bind(29, std::optional<double>());  // NULL: not known
  } else {
    s.bind(29, r.flags);
  }
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
  Stmt s(db_, "SELECT " + scan_select_list() + " FROM scans ORDER BY scan_id", path_);
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

void Store::save_protocol(const std::string& sha256, const std::string& name,
                          const std::string& version, const std::string& toml) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_,
         "INSERT INTO protocols(sha256, name, version, toml) VALUES (?,?,?,?) "
         "ON CONFLICT(sha256) DO NOTHING",
         path_);
  s.bind(1, sha256).bind(2, name).bind(3, version).bind(4, toml).run();
}

std::optional<std::string> Store::protocol_toml(const std::string& sha256) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (!has_table("protocols")) return std::nullopt;
  Stmt s(db_, "SELECT toml FROM protocols WHERE sha256 = ?", path_);
  s.bind(1, sha256);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

void Store::update_identity_flags(const trial::VisitSchedule& schedule) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  // The manifest's analyzed scans, in schedule order per subject.
  std::map<std::pair<std::string, std::string>, ScanRecord> by_key;
  for (auto& s : scans()) by_key[{s.subject_id, s.visit}] = std::move(s);
  std::vector<const ScanRecord*> ok;
  for (const auto& e : manifest()) {
    const auto it = by_key.find({e.subject_id, e.visit});
    if (it != by_key.end() && it->second.status == "ok") ok.push_back(&it->second);
  }
  const auto day_of = [&](const ScanRecord& s) {
    const auto* v = schedule.find(s.visit);
    return v ? v->day : 0.0;
  };
  std::map<std::tuple<std::string, std::string, std::string>, std::string> flags;
  const auto add = [&](const ScanRecord& s, const std::string& flag, const std::string& detail) {
    auto& d = flags[{s.subject_id, s.visit, flag}];
    if (d.find(detail) == std::string::npos) d += (d.empty() ? "" : "; ") + detail;
  };
  // The same series (SeriesInstanceUID) or the same input (image hash) for two scans.
  for (std::size_t i = 0; i < ok.size(); ++i) {
    for (std::size_t j = i + 1; j < ok.size(); ++j) {
      const ScanRecord& a = *ok[i];
      const ScanRecord& b = *ok[j];
      std::string how;
      if (!a.series_uid.empty() && a.series_uid == b.series_uid) how = "SeriesInstanceUID " + a.series_uid;
      if (!a.image_sha256.empty() && a.image_sha256 == b.image_sha256) {
        how += (how.empty() ? "" : " and ") + std::string("input sha256 ") + a.image_sha256.substr(0, 12);
      }
      if (how.empty()) continue;
      const std::string flag = a.subject_id == b.subject_id ? "same_scan_other_visit"
                                                            : "same_scan_other_subject";
      add(a, flag, "same " + how + " as " + b.subject_id + " " + b.visit);
      add(b, flag, "same " + how + " as " + a.subject_id + " " + a.visit);
    }
  }
  // Per subject: PatientID and StudyDate order.
  std::map<std::string, std::vector<const ScanRecord*>> subjects;
  for (const ScanRecord* s : ok) subjects[s->subject_id].push_back(s);
  for (auto& [subject, list] : subjects) {
    std::stable_sort(list.begin(), list.end(),
                     [&](const ScanRecord* a, const ScanRecord* b) { return day_of(*a) < day_of(*b); });
    std::string reference_id, reference_visit;
    for (const ScanRecord* s : list) {
      if (s->patient_id.empty()) continue;
      if (reference_id.empty()) {
        reference_id = s->patient_id;
        reference_visit = s->visit;
      } else if (s->patient_id != reference_id) {
        add(*s, "patient_id_differs",
            "PatientID '" + s->patient_id + "' but '" + reference_id + "' at " + reference_visit);
      }
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      for (std::size_t j = i + 1; j < list.size(); ++j) {
        const ScanRecord& a = *list[i];
        const ScanRecord& b = *list[j];
        if (day_of(a) >= day_of(b)) continue;  // same scheduled day: no order to check
        const auto da = days_from_dicom_date(a.study_date);
        const auto db = days_from_dicom_date(b.study_date);
        if (da && db && *db <= *da) {
          add(b, "study_date_order",
              "StudyDate " + b.study_date + " is not after " + a.visit + "'s " + a.study_date);
        }
      }
    }
  }
  // An input folder whose CT series belong to several patients.
  for (const ScanRecord* s : ok) {
    const auto ids = lines_of(s->input_patients);
    if (ids.size() > 1) {
      std::string list;
      for (const auto& id : ids) list += (list.empty() ? "" : ", ") + ("'" + id + "'");
      add(*s, "several_patients_in_folder", "the input folder holds CT series of PatientIDs " + list);
    }
  }
  Transaction t(db_, path_);
  exec("DELETE FROM identity_flags");
  Stmt ins(db_, "INSERT INTO identity_flags(subject_id, visit, flag, detail) VALUES (?,?,?,?)",
           path_);
  for (const auto& [key, detail] : flags) {
    ins.bind(1, std::get<0>(key)).bind(2, std::get<1>(key)).bind(3, std::get<2>(key));
    ins.bind(4, detail).run();
  }
  t.commit();
}

std::vector<IdentityFlag> Store::identity_flags() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<IdentityFlag> out;
  if (!has_table("identity_flags")) return out;
  Stmt s(db_, "SELECT subject_id, visit, flag, detail FROM identity_flags ORDER BY 1, 2, 3", path_);
  while (s.step()) out.push_back(IdentityFlag{s.text(0), s.text(1), s.text(2), s.text(3)});
  return out;
}

void Store::replace_qc_flags(const std::vector<StoredFlag>& flags) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  exec("DELETE FROM qc_flags");
  Stmt ins(db_,
           "INSERT OR REPLACE INTO qc_flags(subject_id, visit, code, cause, severity, value, unit, "
           "message) VALUES (?,?,?,?,?,?,?,?)",
           path_);
  for (const auto& f : flags) {
    ins.bind(1, f.subject_id).bind(2, f.visit).bind(3, f.code).bind(4, f.cause);
    ins.bind(5, f.severity).bind(6, f.value).bind(7, f.unit).bind(8, f.message).run();
  }
  t.commit();
}

std::vector<StoredFlag> Store::qc_flags() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<StoredFlag> out;
  if (!has_table("qc_flags")) return out;
  Stmt s(db_, "SELECT subject_id, visit, code, cause, severity, value, unit, message FROM qc_flags "
              "ORDER BY rowid", path_);
  while (s.step()) {
    out.push_back(StoredFlag{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.opt_real(5),
                             s.text(6), s.text(7)});
  }
  return out;
}

std::map<std::pair<std::string, std::string>, int> Store::failure_exit_codes() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::map<std::pair<std::string, std::string>, int> out;
  Stmt s(db_, "SELECT subject_id, visit, exit_code FROM failures ORDER BY failure_id", path_);
  while (s.step()) out[{s.text(0), s.text(1)}] = static_cast<int>(s.i64(2));
  return out;
}

void Store::save_review(const ReviewDecision& d) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  for (const char* sql :
       {"INSERT OR REPLACE INTO reviews(subject_id, visit, decision, reason, lungs_mask, "
        "lesions_mask, reader, decided_at, scan_input_sha256, scan_analyzed_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        "INSERT INTO review_log(subject_id, visit, decision, reason, lungs_mask, lesions_mask, "
        "reader, decided_at, scan_input_sha256, scan_analyzed_at) VALUES (?,?,?,?,?,?,?,?,?,?)"}) {
    Stmt s(db_, sql, path_);
    s.bind(1, d.subject_id).bind(2, d.visit).bind(3, d.decision).bind(4, d.reason);
    s.bind(5, d.lungs_mask).bind(6, d.lesions_mask).bind(7, d.reader).bind(8, d.decided_at);
    s.bind(9, d.scan_input_sha256).bind(10, d.scan_analyzed_at).run();
  }
  t.commit();
}

namespace {
std::vector<ReviewDecision> read_reviews(sqlite3* db, const std::string& path, const char* table) {
  std::vector<ReviewDecision> out;
  Stmt s(db, std::string("SELECT subject_id, visit, decision, reason, lungs_mask, lesions_mask, "
                         "reader, decided_at, scan_input_sha256, scan_analyzed_at FROM ") +
                 table + " ORDER BY rowid",
         path);
  while (s.step()) {
    out.push_back(ReviewDecision{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5),
                                 s.text(6), s.text(7), s.text(8), s.text(9)});
  }
  return out;
}
}  // namespace

std::vector<ReviewDecision> Store::reviews() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (!has_table("reviews")) return {};
  return read_reviews(db_, path_, "reviews");
}

std::vector<ReviewDecision> Store::review_log() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (!has_table("review_log")) return {};
  return read_reviews(db_, path_, "review_log");
}

std::optional<ReviewLock> Store::review_lock() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "SELECT key, value FROM meta WHERE key LIKE 'review_locked_%'", path_);
  ReviewLock l;
  while (s.step()) {
    const std::string k = s.text(0);
    if (k == "review_locked_at") l.locked_at = s.text(1);
    if (k == "review_locked_by") l.locked_by = s.text(1);
    if (k == "review_locked_state") l.state = s.text(1);
  }
  if (l.locked_at.empty()) return std::nullopt;
  return l;
}

void Store::set_review_lock(const std::optional<ReviewLock>& l) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  exec("DELETE FROM meta WHERE key LIKE 'review_locked_%'");
  if (l) {
    Stmt s(db_, "INSERT INTO meta(key, value) VALUES (?, ?)", path_);
    s.bind(1, "review_locked_at").bind(2, l->locked_at).run();
    s.bind(1, "review_locked_by").bind(2, l->locked_by).run();
    s.bind(1, "review_locked_state").bind(2, l->state).run();
  }
  t.commit();
}

std::string Store::results_state() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Sha256 h;
  h.update("lungvol.results-state/1\n");
  // Every value with its type, fields and rows separated, so no two contents hash alike.
  const auto add_query = [&](const char* title, const std::string& sql) {
    h.update(std::string("\x1e") + title + "\n");
    Stmt s(db_, sql, path_);
    while (s.step()) {
      for (int c = 0; c < s.columns(); ++c) {
        switch (s.type(c)) {
          case SQLITE_NULL: h.update("N", 1); break;
          case SQLITE_INTEGER: h.update("I" + std::to_string(s.i64(c))); break;
          case SQLITE_FLOAT: h.update(fmt::format("F{:.17g}", s.real(c))); break;
          case SQLITE_BLOB: {
            const std::string b = s.blob(c);
            h.update("B" + std::to_string(b.size()) + ":");
            h.update(b);
            break;
          }
          default: {
            const std::string t = s.text(c);
            h.update("T" + std::to_string(t.size()) + ":");
            h.update(t);
          }
        }
        h.update("\x1f", 1);
      }
      h.update("\n", 1);
    }
  };
  add_query("manifest",
            "SELECT subject_id, arm, visit, visit_day, path, full_path, series_uid, site, "
            "population FROM manifest ORDER BY subject_id, visit");
  std::string scan_cols;
  for (const char* c : kScanColumnNames) {
    const std::string name(c);
    if (name == "scan_id" || name == "run_id" || name == "timing_s") continue;
    const bool have =
        std::find(scan_columns_.begin(), scan_columns_.end(), name) != scan_columns_.end();
    scan_cols += (scan_cols.empty() ? "" : ", ") + (have ? name : "NULL");
  }
  add_query("scans", "SELECT " + scan_cols + " FROM scans ORDER BY subject_id, visit");
  add_query("measurements",
            "SELECT s.subject_id, s.visit, m.region, m.metric, m.value, m.unit FROM measurements m "
            "JOIN scans s USING (scan_id) ORDER BY 1, 2, 3, 4");
  add_query("histograms",
            "SELECT s.subject_id, s.visit, h.region, h.kind, h.hu_min, h.n_bins, h.total, h.counts "
            "FROM histograms h JOIN scans s USING (scan_id) ORDER BY 1, 2, 3, 4");
  // A version-1 store has no identity flags: the same (empty) section as a store without any.
  add_query("identity_flags",
            has_table("identity_flags")
                ? "SELECT subject_id, visit, flag, detail FROM identity_flags ORDER BY 1, 2, 3"
                : "SELECT 1 WHERE 0");
  // The reader's decisions (an exclusion changes the endpoints). Before schema 3: none, the same
  // (empty) section as a store without any.
  add_query("reviews",
            has_table("reviews")
                ? "SELECT subject_id, visit, decision, reason, lungs_mask, lesions_mask, reader, "
                  "decided_at, scan_input_sha256, scan_analyzed_at FROM reviews ORDER BY 1, 2"
                : "SELECT 1 WHERE 0");
  add_query("run",
            "SELECT protocol_sha256, lesion_low_hu, lesion_split_hu, lesion_high_hu, schedule_toml "
            "FROM runs ORDER BY run_id DESC LIMIT 1");
  // Registrations: sections only when there are any, so a store without them hashes as before.
  const auto non_empty = [&](const char* table) {
    if (!has_table(table)) return false;
    Stmt c(db_, std::string("SELECT 1 FROM ") + table + " LIMIT 1", path_);
    return c.step();
  };
  if (non_empty("registrations")) {
    add_query("registrations",
              "SELECT subject_id, visit, baseline_visit, registration_key, status, "
              "baseline_input_sha256, followup_input_sha256, parameters_sha256, software_version, "
              "registered_at, outdir, inspiration_flagged, consistency_flagged, error, record "
              "FROM registrations ORDER BY subject_id, visit");
  }
  if (non_empty("registration_measurements")) {
    add_query("registration_measurements",
              "SELECT subject_id, visit, region, metric, value, unit FROM registration_measurements "
              "ORDER BY 1, 2, 3, 4");
  }
  if (non_empty("registration_subjects")) {
    add_query("registration_subjects",
              "SELECT subject_id, subject_key, baseline_visit, best_aerated_visit, status, error "
              "FROM registration_subjects ORDER BY subject_id");
  }
  if (non_empty("lung_mask_consistency")) {
    add_query("lung_mask_consistency",
              "SELECT subject_id, target_visit, source_visit, source_role, dice, carried_ml, own_ml, "
              "disagreement_ml, missed_dense_ml, flagged, reason FROM lung_mask_consistency "
              "ORDER BY 1, 2, 4");
  }
  return h.hex_digest();
}

void Store::record_results_state() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  const std::string state = results_state();
  Transaction t(db_, path_);
  Stmt s(db_, "INSERT INTO meta(key, value) VALUES ('results_state', ?) "
              "ON CONFLICT(key) DO UPDATE SET value = excluded.value", path_);
  s.bind(1, state).run();
  exec("INSERT INTO meta(key, value) VALUES ('results_generation', '1') "
       "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1");
  t.commit();
}

std::string Store::recorded_results_state() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "SELECT value FROM meta WHERE key = 'results_state'", path_);
  return s.step() ? s.text(0) : "";
}

std::int64_t Store::results_generation() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'results_generation'", path_);
  return s.step() ? s.i64(0) : 0;
}

// --- registrations ---------------------------------------------------------------------------

namespace {
const char* kRegistrationColumns =
    "subject_id, visit, baseline_visit, registration_key, status, baseline_input_sha256, "
    "followup_input_sha256, parameters_sha256, software_version, registered_at, timing_s, outdir, "
    "run_id, inspiration_flagged, consistency_flagged, error, record";

RegistrationRecord read_registration(const Stmt& s) {
  RegistrationRecord r;
  r.subject_id = s.text(0);
  r.visit = s.text(1);
  r.baseline_visit = s.text(2);
  r.key = s.text(3);
  r.status = s.text(4);
  r.baseline_input_sha256 = s.text(5);
  r.followup_input_sha256 = s.text(6);
  r.parameters_sha256 = s.text(7);
  r.software_version = s.text(8);
  r.registered_at = s.text(9);
  r.timing_s = s.real(10);
  r.outdir = s.text(11);
  r.run_id = s.i64(12);
  r.inspiration_flagged = s.i64(13) != 0;
  r.consistency_flagged = s.i64(14) != 0;
  r.error = s.text(15);
  r.record_json = s.text(16);
  return r;
}
}  // namespace

std::optional<RegistrationRecord> Store::find_registration(const std::string& subject_id,
                                                           const std::string& visit) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (!has_table("registrations")) return std::nullopt;
  Stmt s(db_, std::string("SELECT ") + kRegistrationColumns +
                  " FROM registrations WHERE subject_id = ? AND visit = ?",
         path_);
  s.bind(1, subject_id).bind(2, visit);
  if (!s.step()) return std::nullopt;
  return read_registration(s);
}

std::vector<RegistrationRecord> Store::registrations() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<RegistrationRecord> out;
  if (!has_table("registrations")) return out;
  Stmt s(db_, std::string("SELECT ") + kRegistrationColumns +
                  " FROM registrations ORDER BY subject_id, visit",
         path_);
  while (s.step()) out.push_back(read_registration(s));
  return out;
}

void Store::save_registration(const RegistrationRecord& r,
                              const std::vector<RegistrationMeasurementRow>& rows) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  {
    Stmt d(db_, "DELETE FROM registration_measurements WHERE subject_id = ? AND visit = ?", path_);
    d.bind(1, r.subject_id).bind(2, r.visit).run();
    Stmt d2(db_, "DELETE FROM registrations WHERE subject_id = ? AND visit = ?", path_);
    d2.bind(1, r.subject_id).bind(2, r.visit).run();
  }
  Stmt ins(db_, std::string("INSERT INTO registrations(") + kRegistrationColumns +
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           path_);
  ins.bind(1, r.subject_id).bind(2, r.visit).bind(3, r.baseline_visit).bind(4, r.key)
      .bind(5, r.status).bind(6, r.baseline_input_sha256).bind(7, r.followup_input_sha256)
      .bind(8, r.parameters_sha256).bind(9, r.software_version).bind(10, r.registered_at)
      .bind(11, r.timing_s).bind(12, r.outdir).bind(13, r.run_id)
      .bind(14, static_cast<std::int64_t>(r.inspiration_flagged ? 1 : 0))
      .bind(15, static_cast<std::int64_t>(r.consistency_flagged ? 1 : 0)).bind(16, r.error)
      .bind(17, r.record_json);
  ins.run();
  Stmt m(db_, "INSERT INTO registration_measurements(subject_id, visit, region, metric, value, "
              "unit) VALUES (?, ?, ?, ?, ?, ?)",
         path_);
  for (const auto& row : rows) {
    m.bind(1, r.subject_id).bind(2, r.visit).bind(3, row.region).bind(4, row.metric)
        .bind(5, row.value).bind(6, row.unit);
    m.run();
  }
  t.commit();
}

void Store::delete_registration(const std::string& subject_id, const std::string& visit) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  Stmt d(db_, "DELETE FROM registration_measurements WHERE subject_id = ? AND visit = ?", path_);
  d.bind(1, subject_id).bind(2, visit).run();
  Stmt d2(db_, "DELETE FROM registrations WHERE subject_id = ? AND visit = ?", path_);
  d2.bind(1, subject_id).bind(2, visit).run();
  t.commit();
}

std::vector<RegistrationMeasurementRow> Store::registration_measurements() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<RegistrationMeasurementRow> out;
  if (!has_table("registration_measurements")) return out;
  Stmt s(db_, "SELECT subject_id, visit, region, metric, value, unit FROM registration_measurements "
              "ORDER BY subject_id, visit, rowid",
         path_);
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.opt_real(4), s.text(5)});
  }
  return out;
}

std::vector<RegistrationMeasurementRow> Store::registration_measurements(const std::string& subject_id,
                                                                         const std::string& visit) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<RegistrationMeasurementRow> out;
  if (!has_table("registration_measurements")) return out;
  Stmt s(db_, "SELECT subject_id, visit, region, metric, value, unit FROM registration_measurements "
              "WHERE subject_id = ? AND visit = ? ORDER BY rowid",
         path_);
  s.bind(1, subject_id).bind(2, visit);
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.opt_real(4), s.text(5)});
  }
  return out;
}

std::optional<RegistrationSubjectRecord> Store::find_registration_subject(const std::string& subject_id) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (!has_table("registration_subjects")) return std::nullopt;
  Stmt s(db_, "SELECT subject_id, subject_key, baseline_visit, best_aerated_visit, status, error, "
              "updated_at, run_id FROM registration_subjects WHERE subject_id = ?",
         path_);
  s.bind(1, subject_id);
  if (!s.step()) return std::nullopt;
  return RegistrationSubjectRecord{s.text(0), s.text(1), s.text(2), s.text(3),
                                   s.text(4), s.text(5), s.text(6), s.i64(7)};
}

std::vector<RegistrationSubjectRecord> Store::registration_subjects() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<RegistrationSubjectRecord> out;
  if (!has_table("registration_subjects")) return out;
  Stmt s(db_, "SELECT subject_id, subject_key, baseline_visit, best_aerated_visit, status, error, "
              "updated_at, run_id FROM registration_subjects ORDER BY subject_id",
         path_);
  while (s.step()) {
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.i64(7)});
  }
  return out;
}

void Store::save_registration_subject(const RegistrationSubjectRecord& r,
                                      const std::vector<ConsistencyRecord>& rows) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  Stmt d(db_, "DELETE FROM lung_mask_consistency WHERE subject_id = ?", path_);
  d.bind(1, r.subject_id).run();
  Stmt d2(db_, "DELETE FROM registration_subjects WHERE subject_id = ?", path_);
  d2.bind(1, r.subject_id).run();
  Stmt ins(db_, "INSERT INTO registration_subjects(subject_id, subject_key, baseline_visit, "
                "best_aerated_visit, status, error, updated_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
           path_);
  ins.bind(1, r.subject_id).bind(2, r.subject_key).bind(3, r.baseline_visit)
      .bind(4, r.best_aerated_visit).bind(5, r.status).bind(6, r.error).bind(7, r.updated_at)
      .bind(8, r.run_id);
  ins.run();
  Stmt c(db_, "INSERT INTO lung_mask_consistency(subject_id, target_visit, source_visit, source_role, "
              "dice, carried_ml, own_ml, disagreement_ml, missed_dense_ml, flagged, reason) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
         path_);
  for (const auto& x : rows) {
    c.bind(1, r.subject_id).bind(2, x.target_visit).bind(3, x.source_visit).bind(4, x.source_role)
        .bind(5, x.dice).bind(6, x.carried_ml).bind(7, x.own_ml).bind(8, x.disagreement_ml)
        .bind(9, x.missed_dense_ml).bind(10, static_cast<std::int64_t>(x.flagged ? 1 : 0))
        .bind(11, x.reason);
    c.run();
  }
  t.commit();
}

void Store::delete_registration_subject(const std::string& subject_id) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Transaction t(db_, path_);
  Stmt d(db_, "DELETE FROM lung_mask_consistency WHERE subject_id = ?", path_);
  d.bind(1, subject_id).run();
  Stmt d2(db_, "DELETE FROM registration_subjects WHERE subject_id = ?", path_);
  d2.bind(1, subject_id).run();
  t.commit();
}

std::vector<ConsistencyRecord> Store::lung_mask_consistency() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::vector<ConsistencyRecord> out;
  if (!has_table("lung_mask_consistency")) return out;
  Stmt s(db_, "SELECT subject_id, target_visit, source_visit, source_role, dice, carried_ml, own_ml, "
              "disagreement_ml, missed_dense_ml, flagged, reason FROM lung_mask_consistency "
              "ORDER BY subject_id, target_visit, source_role",
         path_);
  while (s.step()) {
    ConsistencyRecord r;
    r.subject_id = s.text(0);
    r.target_visit = s.text(1);
    r.source_visit = s.text(2);
    r.source_role = s.text(3);
    r.dice = s.real(4);
    r.carried_ml = s.real(5);
    r.own_ml = s.real(6);
    r.disagreement_ml = s.real(7);
    r.missed_dense_ml = s.real(8);
    r.flagged = s.i64(9) != 0;
    r.reason = s.text(10);
    out.push_back(std::move(r));
  }
  return out;
}

std::string Store::quick_check() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "PRAGMA quick_check", path_);
  std::string out;
  while (s.step()) out += (out.empty() ? "" : "\n") + s.text(0);
  return out;
}

std::string processes_holding(const std::string& db_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path db = fs::weakly_canonical(db_path, ec);
  const std::string base = db.string();
  const std::string self = std::to_string(::getpid());
  std::vector<std::string> found;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || pid == self) {
      continue;
    }
    std::error_code fd_ec;
    bool holds = false;
    for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      const std::string target = fs::read_symlink(fd.path(), link_ec).string();
      if (!link_ec && (target == base || target == base + "-wal" || target == base + "-shm" ||
                       target == base + "-journal")) {
        holds = true;
        break;
      }
    }
    if (!holds) continue;
    std::string cmd;
    try {
      cmd = read_text_file((proc.path() / "cmdline").string());
    } catch (const std::exception&) {
    }
    for (char& c : cmd) c = c == '\0' ? ' ' : c;
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    if (cmd.size() > 80) cmd = cmd.substr(0, 77) + "...";
    found.push_back("pid " + pid + (cmd.empty() ? "" : " (" + cmd + ")"));
  }
  std::string out;
  for (const auto& f : found) out += (out.empty() ? "" : ", ") + f;
  return out;
}

std::string Store::integrity_check() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(db_, "PRAGMA integrity_check", path_);
  std::string out;
  while (s.step()) out += (out.empty() ? "" : "\n") + s.text(0);
  return out;
}

}  // namespace lungvol::batch
