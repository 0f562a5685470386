#pragma once
// `lungvol batch`: every manifest scan analyzed into OUTDIR/scans/<subject>/<visit>/ and stored
// in OUTDIR/results.sqlite; resumable (finished scans with the same input, protocol and software
// are skipped), one failure row per bad scan, parallel scans with --jobs.
#include <string>
#include <vector>

#include "batch/store.hpp"
#include "core/protocol.hpp"

namespace lungvol::batch {

struct BatchOptions {
  std::string manifest;
  std::string outdir;
  int jobs = 1;
  int threads = 0;  // total OpenMP threads (0 = all cores), split evenly between the jobs
  std::string protocol = kDefaultProtocol;
  std::string schedule;  // visit schedule TOML; "" = default
  std::vector<std::string> ignore_columns;  // manifest columns lungvol may ignore (--ignore-column)
  bool force = false;    // redo every scan
  bool write_label_maps = true;
  bool write_qc_images = true;
  bool write_meshes = false;  // surface meshes + 3D QC render per scan (analyze --meshes)
  // Register every follow-up to its subject's baseline after the scans (batch/registrations.hpp;
  // needs the label maps). --no-registration turns it off.
  bool register_followups = true;
  std::string command_line;
  // Progress: a single updating line on a terminal, log lines otherwise; -1 = decide by isatty.
  int progress_tty = -1;
};

struct BatchSummary {
  std::int64_t run_id = 0;
  RunCounts counts;
  // Follow-ups registered to their baseline in this run (batch/registrations.hpp).
  std::size_t registered = 0, registrations_skipped = 0, registrations_failed = 0;
  double seconds = 0;
  // Process exit status: 0, or kBatchFailures (8) when any scan or registration of this run
  // failed.
  int exit_status() const;
};

// Takes OUTDIR/.lock (flock; Error(kOutput) naming the other process when already held), runs,
// then writes OUTDIR/measurements.csv and OUTDIR/visits_wide.csv from the store. Errors in the
// manifest, protocol or schedule throw before any scan is analyzed. --jobs above the number of
// cores is capped to it (with a message). Ctrl-C / SIGTERM stops the running scans at their
// next stage, keeps every finished one, writes the CSVs and throws Error(kInterrupted)
// "interrupted, re-run to resume".
BatchSummary run_batch(const BatchOptions& options);

// The number of scans run at once: `requested`, at most the cores (omp_get_num_procs) and the
// scans; `note` gets the reason when it was lowered.
int effective_jobs(int requested, std::size_t scans, std::string* note);

// The steps of one batch that the local and the Slurm executor share, so that both store the
// same rows from the same code.
struct BatchInputs {
  trial::VisitSchedule schedule;
  std::string schedule_toml;  // the schedule file's text; "" = the default schedule
  Manifest manifest;
  Protocol protocol;  // source_path made absolute (tasks may run in another folder)
  std::string protocol_toml;  // the protocol file's text (stored with the results)
};
// Errors in the manifest, protocol or schedule throw here, before anything is written.
BatchInputs load_batch_inputs(const BatchOptions& options);
RunInfo make_run_info(const BatchOptions& options, const BatchInputs& inputs, int jobs,
                      int threads);
// True when the store holds this scan finished ("ok") with the same input (and masks), the same
// protocol and this software version: a rerun skips it.
bool scan_is_done(Store& store, const ManifestEntry& e, const Protocol& protocol);
// The scans row of `e` before analysis (manifest fields, protocol, software, run, folder
// OUTDIR/scans/<subject>/<visit>). Error(kUsage) when subject or visit cannot name a folder
// (a manifest that bypassed parse_manifest, e.g. an edited Slurm task list).
ScanRecord base_record(const ManifestEntry& e, const std::string& outdir,
                       const Protocol& protocol, std::int64_t run_id);

// One scan analyzed into its folder, every error caught: status "ok" with the regions, or
// "failed" with record.error and exit_code (its folder of an earlier run is then removed: the
// store no longer holds those numbers). Touches no store. An interruption is not a failure:
// Error(kInterrupted) propagates and the scan's folder is left as it was.
struct ScanOutcome {
  ScanRecord record;
  std::vector<pipeline::RegionResult> regions;
  int exit_code = 0;
};
ScanOutcome analyze_scan(const ManifestEntry& e, const BatchOptions& options,
                         const Protocol& protocol, std::int64_t run_id);

// Builds, in the calling thread, the global tables that DCMTK's content mapping resource (the
// SR code lists) and ITK 5.2 (singletons, factory lists) otherwise create lazily and without
// locks on first use: two threads doing that at once crashed `batch --jobs 2` (SIGSEGV). Call
// before scans run in parallel (worker threads, or write_outputs' parallel sections).
void warm_up_libraries();

// Holds an exclusive flock on a file for its lifetime.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& lock_path);  // Error(kOutput) if held elsewhere
  // Waits up to `wait_seconds` for the lock before failing like the constructor above.
  DirectoryLock(const std::string& lock_path, double wait_seconds);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace lungvol::batch
