#pragma once
// OUTDIR/results.sqlite: every run, scan, tidy measurement, histogram and failure of a batch.
// One SQLite connection (WAL journal, synchronous FULL), one transaction per scan, so a killed
// batch leaves whole scans or nothing. Calls are serialized by an internal mutex, so worker
// threads may share one Store. Schema: docs/batch.md.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "batch/manifest.hpp"
#include "core/histogram.hpp"
#include "pipeline/analyze.hpp"

struct sqlite3;

namespace lungvol::batch {

// 2: tables `protocols` (the TOML text of every protocol used) and `identity_flags`, scans
// columns patient_id, study_instance_uid, image_sha256, input_patients; meta keys
// results_state, results_generation. A version-1 store is upgraded when opened for writing and
// read as it is when opened read-only.
// 3: scans column `flags` (the scan's QC flags from its metrics.json, JSON), tables `qc_flags`
// (every QC flag of the manifest's scans, recomputed at the end of every run), `reviews` (the
// reader's current decision per scan) and `review_log` (every decision ever recorded); meta keys
// review_locked_at, review_locked_by, review_locked_state. Versions 1 and 2 are upgraded.
inline constexpr int kSchemaVersion = 3;

struct RunInfo {
  std::string started_at, software_version;
  std::string protocol_name, protocol_version, protocol_sha256;
  double lesion_low_hu = 0, lesion_split_hu = 0, lesion_high_hu = 0;
  std::string schedule_toml;  // "" = the default schedule
  std::string manifest_path, manifest_sha256, host, command_line;
  int jobs = 1, threads = 1;
};

struct RunCounts {
  std::size_t total = 0, analyzed = 0, skipped = 0, failed = 0;
};

// One row of `scans` (a scan analyzed or failed).
struct ScanRecord {
  std::int64_t scan_id = 0;
  std::string subject_id, arm, visit;
  std::optional<double> visit_day;
  std::string site, population, path, series_uid, input_sha256;
  std::string protocol_name, protocol_version, protocol_sha256, software_version;
  std::string status;  // ok | failed
  std::string study_date;
  std::optional<double> days_from_baseline;
  std::optional<bool> in_window;
  std::string outdir, analyzed_at;
  double timing_s = 0;
  double voxel_ml = 0;
  std::int64_t run_id = 0;
  std::string warnings;  // one per line
  std::string error;     // failed scans
  // Identity of the input, for the cross-visit checks (identity_flags): the DICOM PatientID and
  // StudyInstanceUID of the analyzed series, the image (series) hash without masks, and the
  // distinct PatientIDs of every CT series in the input folder (one per line).
  std::string patient_id, study_uid, image_sha256, input_patients;
  // The scan's own QC flags (metrics.json "flags", pipeline/flags.hpp) as JSON; "" when unknown
  // (a store written before schema 3).
  std::string flags;
};

// A QC flag of one subject x visit (pipeline::QcFlag fields; table `qc_flags`).
struct StoredFlag {
  std::string subject_id, visit;
  std::string code, cause, severity;
  std::optional<double> value;
  std::string unit, message;
};

// A reader's decision on one scan (docs/batch.md, "Review").
struct ReviewDecision {
  std::string subject_id, visit;
  std::string decision;  // accepted | excluded | corrected
  std::string reason;    // excluded: why (required); others: optional note
  std::string lungs_mask, lesions_mask;  // corrected: absolute paths of the given masks
  std::string reader, decided_at;        // who (--reader, else the login name), UTC ISO 8601
  std::string scan_input_sha256, scan_analyzed_at;  // the scan that was reviewed
};

// The review lock: every manifest scan had a decision when it was taken; it holds while the
// results state is still `state`.
struct ReviewLock {
  std::string locked_at, locked_by, state;
};

// A cross-visit identity finding (docs/batch.md, "Identity checks").
struct IdentityFlag {
  std::string subject_id, visit, flag, detail;
};

// Registration of a follow-up to its subject's baseline (docs/batch.md, "Registration"): one row
// of `registrations`, its measurements (`registration_measurements`), the subject's cross-visit
// row (`registration_subjects`) and its lung-mask comparisons (`lung_mask_consistency`).
struct RegistrationRecord {
  std::string subject_id, visit, baseline_visit, key, status;  // status: ok | failed
  std::string baseline_input_sha256, followup_input_sha256, parameters_sha256;
  std::string software_version, registered_at, outdir, error;
  std::string record_json;  // registration.json (ok rows)
  double timing_s = 0;
  std::int64_t run_id = 0;
  bool inspiration_flagged = false, consistency_flagged = false;
};
struct RegistrationMeasurementRow {
  std::string subject_id, visit, region, metric;
  std::optional<double> value;
  std::string unit;
};
struct RegistrationSubjectRecord {
  std::string subject_id, subject_key, baseline_visit, best_aerated_visit, status, error, updated_at;
  std::int64_t run_id = 0;
};
struct ConsistencyRecord {
  std::string subject_id, target_visit, source_visit, source_role;  // baseline | best_aerated
  double dice = 0, carried_ml = 0, own_ml = 0, disagreement_ml = 0, missed_dense_ml = 0;
  bool flagged = false;
  std::string reason;
};

struct StoredHistogram {
  std::int64_t scan_id = 0;
  std::string region, kind;  // kind: lung | suppressed
  HuHistogram histogram;
};

// Histogram BLOB: the counts of bins hu_min .. hu_min + n_bins - 1 (first to last non-zero
// bin) as unsigned LEB128 varints.
std::string encode_counts(const HuHistogram& h, int* hu_min, int* n_bins);
HuHistogram decode_counts(const std::string& blob, int hu_min, int n_bins);

class Store {
 public:
  enum class Mode {
    kReadWrite,  // batch: created if absent, upgraded, Error(kOutput) on any problem
    // report / sweep / endpoint / export: never writes, works on read-only storage (opened
    // immutable when SQLite cannot use its shared-memory file there); Error(kInput).
    kReadOnly,
  };
  // Opens or creates the database (schema created if absent, in one transaction) and runs
  // PRAGMA quick_check: a damaged store is refused before anything is done with it. While
  // another process holds SQLite's write lock, every statement retries with back-off for up to
  // LUNGVOL_STORE_BUSY_TIMEOUT_S seconds (default 120), naming the processes that hold the file
  // open; then Error(kOutput) with the same names.
  explicit Store(const std::string& path, Mode mode = Mode::kReadWrite);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return mode_ == Mode::kReadOnly; }
  int schema_version() const { return schema_version_; }

  std::int64_t begin_run(const RunInfo& info);
  void finish_run(std::int64_t run_id, const RunCounts& counts);
  // The latest run (highest run_id); nullopt when the store holds no run.
  std::optional<RunInfo> latest_run();
  // The latest run made with this protocol (by sha256); nullopt when there is none.
  std::optional<RunInfo> latest_run_with_protocol(const std::string& protocol_sha256);

  // The protocol texts (TOML) by sha256: every protocol a run or scan used.
  void save_protocol(const std::string& sha256, const std::string& name,
                     const std::string& version, const std::string& toml);
  std::optional<std::string> protocol_toml(const std::string& sha256);

  // Replaces the table `manifest` (the scans the outputs and sweeps cover).
  void set_manifest(const Manifest& m);
  std::vector<ManifestEntry> manifest();

  std::optional<ScanRecord> find_scan(const std::string& subject_id, const std::string& visit);
  // Replaces the subject x visit's scan, its measurements and histograms, in one transaction.
  // Sets rec.scan_id.
  void save_scan(ScanRecord& rec, const std::vector<pipeline::RegionResult>& regions);
  // Replaces the subject x visit's scan by a failed one and appends a `failures` row.
  void save_failure(ScanRecord& rec, int exit_code);
  // Copies arm / visit_day / site / population from the manifest and sets days_from_baseline
  // and in_window of every scan against `schedule`, in one transaction.
  void update_timing(const trial::VisitSchedule& schedule);

  std::vector<ScanRecord> scans();
  struct MeasurementRow {
    std::int64_t scan_id;
    std::string region, metric;
    std::optional<double> value;
    std::string unit;
  };
  // One scan's measurements in region_measurements() order.
  std::vector<MeasurementRow> measurements(std::int64_t scan_id);
  // Histograms of one region (both kinds) of every scan.
  std::vector<StoredHistogram> histograms(const std::string& region);

  // Recomputes the cross-visit identity flags of the manifest's scans (same series or input for
  // two visits or subjects, PatientID differing within a subject, StudyDate order against the
  // visit order, several patients in one input folder), in one transaction.
  void update_identity_flags(const trial::VisitSchedule& schedule);
  std::vector<IdentityFlag> identity_flags();

  // QC flags of the manifest's scans (table qc_flags), replaced as a whole.
  void replace_qc_flags(const std::vector<StoredFlag>& flags);
  std::vector<StoredFlag> qc_flags();  // empty for a store before schema 3
  // The exit code of the latest failed attempt of every subject x visit (table failures).
  std::map<std::pair<std::string, std::string>, int> failure_exit_codes();

  // The reader's decisions: save_review() replaces the scan's decision and appends it to
  // review_log, in one transaction.
  void save_review(const ReviewDecision& d);
  std::vector<ReviewDecision> reviews();     // current decisions (empty before schema 3)
  std::vector<ReviewDecision> review_log();  // every decision, oldest first
  std::optional<ReviewLock> review_lock();
  void set_review_lock(const std::optional<ReviewLock>& lock);  // nullopt: unlock

  // The state of the results: SHA-256 over everything a derived file (endpoint, sweep, report,
  // export) can depend on: the manifest, every scans row (ids and run ids aside), measurement,
  // histogram and identity flag, and the latest run's protocol and schedule. Equal states mean
  // equal results; any change (a re-analysed scan, an edit with sqlite3) changes it.
  std::string results_state();
  // meta: the state lungvol recorded when it last finished writing (a batch run or merge), and
  // how many times it did; a stored state that differs from results_state() means the store
  // changed since (an interrupted batch, or an edit outside lungvol).
  void record_results_state();
  std::string recorded_results_state();
  std::int64_t results_generation();

  // --- registrations (tables created with the store; absent from stores of older lungvol,
  // which read as holding none) ---
  std::optional<RegistrationRecord> find_registration(const std::string& subject_id,
                                                      const std::string& visit);
  std::vector<RegistrationRecord> registrations();
  // Replaces the follow-up's registration and its measurements, in one transaction.
  void save_registration(const RegistrationRecord& rec,
                         const std::vector<RegistrationMeasurementRow>& rows);
  void delete_registration(const std::string& subject_id, const std::string& visit);
  // Every registration measurement, by subject, visit, then insertion order.
  std::vector<RegistrationMeasurementRow> registration_measurements();
  std::vector<RegistrationMeasurementRow> registration_measurements(const std::string& subject_id,
                                                                    const std::string& visit);
  std::optional<RegistrationSubjectRecord> find_registration_subject(const std::string& subject_id);
  // Replaces the subject's row and its consistency rows, in one transaction.
  void save_registration_subject(const RegistrationSubjectRecord& rec,
                                 const std::vector<ConsistencyRecord>& rows);
  void delete_registration_subject(const std::string& subject_id);
  std::vector<RegistrationSubjectRecord> registration_subjects();
  std::vector<ConsistencyRecord> lung_mask_consistency();

  std::size_t count(const std::string& table);
  std::string integrity_check();  // "ok" when healthy
  std::string quick_check();      // PRAGMA quick_check: "ok" when healthy

  // Runs one statement (no result rows); for maintenance and tests.
  void exec(const std::string& sql);

  // The SQLite busy handler (retries with back-off); public for the C callback only.
  int on_busy(int attempt);

 private:
  void open_read_write();
  void open_read_only();
  void check_health();
  void insert_scan_row(ScanRecord& rec);
  bool has_table(const std::string& table);
  std::string scan_select_list();
  void bump_generation();
  std::string path_;
  Mode mode_ = Mode::kReadWrite;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;
  int schema_version_ = kSchemaVersion;
  std::vector<std::string> scan_columns_;  // columns present in `scans` (read-only v1 stores)
  double busy_limit_s_ = 120;
  std::chrono::steady_clock::time_point busy_since_{};
  bool busy_warned_ = false;
};

// The processes that hold `db_path` (or its -wal / -shm file) open, other than this one, as
// "pid 1234 (sqlite3 results.sqlite)"; "" when none can be seen (/proc of other users).
std::string processes_holding(const std::string& db_path);

}  // namespace lungvol::batch
