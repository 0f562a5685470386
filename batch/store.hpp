#pragma once
// OUTDIR/results.sqlite: every run, scan, tidy measurement, histogram and failure of a batch.
// One SQLite connection (WAL journal, synchronous FULL), one transaction per scan, so a killed
// batch leaves whole scans or nothing. Calls are serialized by an internal mutex, so worker
// threads may share one Store. Schema: docs/batch.md.
#include <cstdint>
#include <functional>
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

inline constexpr int kSchemaVersion = 1;

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
  // Opens or creates the database (schema created if absent). Error(kOutput) on failure.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  std::int64_t begin_run(const RunInfo& info);
  void finish_run(std::int64_t run_id, const RunCounts& counts);
  // The latest run (highest run_id); nullopt when the store holds no run.
  std::optional<RunInfo> latest_run();

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

  std::size_t count(const std::string& table);
  std::string integrity_check();  // "ok" when healthy

  // Runs one statement (no result rows); for maintenance and tests.
  void exec(const std::string& sql);

 private:
  void insert_scan_row(ScanRecord& rec);
  std::string path_;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;
};

}  // namespace lungvol::batch
