#pragma once
// `lungvol batch`: every manifest scan analyzed into OUTDIR/scans/<subject>/<visit>/ and stored
// in OUTDIR/results.sqlite; resumable (finished scans with the same input, protocol and software
// are skipped), one failure row per bad scan, parallel scans with --jobs.
#include <string>

#include "batch/store.hpp"

namespace lungvol::batch {

struct BatchOptions {
  std::string manifest;
  std::string outdir;
  int jobs = 1;
  int threads = 0;  // total OpenMP threads (0 = all cores), split evenly between the jobs
  std::string protocol = kDefaultProtocol;
  std::string schedule;  // visit schedule TOML; "" = default
  bool force = false;    // redo every scan
  bool write_label_maps = true;
  bool write_qc_images = true;
  std::string command_line;
  // Progress: a single updating line on a terminal, log lines otherwise; -1 = decide by isatty.
  int progress_tty = -1;
};

struct BatchSummary {
  std::int64_t run_id = 0;
  RunCounts counts;
  double seconds = 0;
  // Process exit status: 0, or kBatchFailures (8) when any scan of this run failed.
  int exit_status() const;
};

// Takes OUTDIR/.lock (flock; Error(kOutput) naming the other process when already held), runs,
// then writes OUTDIR/measurements.csv and OUTDIR/visits_wide.csv from the store. Errors in the
// manifest, protocol or schedule throw before any scan is analyzed.
BatchSummary run_batch(const BatchOptions& options);

// Holds an exclusive flock on a file for its lifetime.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& lock_path);  // Error(kOutput) if held elsewhere
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace lungvol::batch
