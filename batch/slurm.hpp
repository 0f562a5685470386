#pragma once
// `lungvol batch --executor slurm`: the same batch as the local executor, spread over a Slurm
// cluster. The controller writes OUTDIR/slurm/ and submits one job array (one task per scan
// still to do) plus a merge job that runs after it (afterany). Each task analyzes its scan into
// OUTDIR/scans/<subject>/<visit>/ and writes OUTDIR/slurm/tasks/<i>/result.json (atomically);
// tasks never touch results.sqlite. The merge job stores every result through the same Store
// calls as a local batch (regions re-measured from the stored histograms by
// pipeline::measure_regions, which is what analyze() does), so the database is the same.
// Files and usage: docs/reliability.md, "Slurm executor".
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/runner.hpp"

namespace lungvol::batch::slurm {

struct SlurmOptions {
  std::string partition;                 // "" = the cluster's default
  int array_limit = 0;                   // at most this many tasks at once (%K); 0 = no limit
  std::vector<std::string> sbatch_args;  // --slurm-opt values, one sbatch argument each
  std::string sbatch = "sbatch";         // programs (PATH lookup); tests use stand-ins
  std::string squeue = "squeue";
  std::string lungvol_binary;            // what the jobs run; "" = this executable
  // Slurm refuses arrays longer than MaxArraySize (default 1001 indices): larger batches are
  // submitted as several arrays of at most this many tasks.
  std::size_t max_array_size = 1000;
};

struct ArrayJob {
  std::string job_id;
  std::size_t offset = 0, count = 0;  // tasks offset .. offset + count - 1
};

struct Submission {
  std::int64_t run_id = 0;
  std::size_t total = 0, skipped = 0, submitted = 0;
  std::vector<ArrayJob> arrays;
  std::string merge_job_id;
  // Nothing to submit (every scan and registration done): the run was finished and the CSVs
  // written at once.
  bool finished = false;
  // The per-subject registration step (batch/registrations.hpp): one array task per subject with
  // a baseline and a follow-up in the manifest, after the scans' merge, and its own merge job.
  // Empty when nothing is to be registered (--no-registration, --no-label-maps, all done).
  std::size_t registration_subjects = 0;
  std::string registration_job_id, registration_merge_job_id;
};

// The controller. Error(kUsage) when sbatch is not found, Error(kOutput) when a submission is
// refused (the message quotes sbatch) or a previous submission on OUTDIR still runs. An earlier
// submission that was never merged is merged first, so its finished scans are kept.
Submission submit_batch(const BatchOptions& options, const SlurmOptions& slurm);

// One array task: analyzes task `index` of OUTDIR/slurm/tasks.json and writes its result file.
// Returns the scan's exit status (0, or the failed scan's code); throws only when the result
// cannot be written or the submission folder is unusable.
int run_task(const std::string& outdir, std::size_t index);

// The merge job: stores every task's result (a task without a result file is stored as a
// failure naming its log), updates visit timing, writes the CSVs and finishes the run. Waits
// up to `lock_wait_s` for OUTDIR/.lock.
BatchSummary merge_results(const std::string& outdir, double lock_wait_s = 600);

// A registration array task: registers the follow-ups of subject `index` of
// OUTDIR/slurm/registrations.json that are not registered yet (planned from results.sqlite,
// opened read-only, as the local batch plans them) and writes
// OUTDIR/slurm/registrations/<i>/result.json. A subject already registered with the same key is
// not redone. Returns 0, or kBatchFailures when a follow-up failed to register.
int run_registration_task(const std::string& outdir, std::size_t index);

struct RegistrationMerge {
  std::size_t subjects = 0, registered = 0, failed = 0, skipped = 0;
  int exit_status() const;  // 0, or kBatchFailures when a registration failed
};
// The registration merge job: stores every registration task's outcome with the local batch's
// calls (a task without a result stores its follow-ups as failed registrations naming its log)
// and rewrites the CSVs.
RegistrationMerge merge_registrations(const std::string& outdir, double lock_wait_s = 600);

struct Status {
  bool submitted = false;  // OUTDIR/slurm/submission.json exists
  std::int64_t run_id = 0;
  std::size_t tasks = 0, skipped = 0;  // skipped: already done when submitted
  std::size_t done = 0, failed = 0, running = 0, pending = 0;
  std::size_t lost = 0;  // no result and no longer queued (crashed, cancelled, timed out)
  bool queue_known = false;  // squeue answered; else pending counts running ones too
  bool merged = false;
  std::string merge_job_id, merge_state;  // merge_state from squeue, "" when not queued
  std::vector<ArrayJob> arrays;
  // The registration array of the latest submission, if any: its subjects, the tasks that left a
  // result, and whether its merge stored them.
  std::string registration_job_id;
  std::size_t registration_tasks = 0, registration_done = 0;
  bool registrations_merged = false;
};
Status read_status(const std::string& outdir, const SlurmOptions& slurm);
std::string format_status(const Status& s, const std::string& outdir);

// --- pieces, exposed for the tests ---

// `sbatch --parsable` prints "<jobid>" or "<jobid>;<cluster>". Error(kOutput) otherwise.
std::string parse_job_id(const std::string& sbatch_output);
// Lines "<array job id>|<array task index>|<state>" (squeue -h -r -o '%A|%K|%T') of the given
// arrays as task index (offset + array index) -> state; other lines (the merge job, other
// jobs) are returned in `others` as job id -> state.
std::map<std::size_t, std::string> parse_squeue(const std::string& text,
                                                const std::vector<ArrayJob>& arrays,
                                                std::map<std::string, std::string>* others);
std::string shell_quote(const std::string& s);
// Refuses (Error(kUsage), naming `what`) a value that must not enter a generated job script or
// an sbatch argument: any control character (newline, CR, tab, ...), and for the output folder
// and executable a backslash (it disables Slurm's %A/%a file name patterns).
void check_script_value(const std::string& what, const std::string& value);
// A path as a Slurm file name pattern (--output): '%' doubled so it is not a replacement symbol.
std::string slurm_pattern_escape(const std::string& path);
// The batch scripts: the task script takes the array's offset as $1.
std::string task_script(const std::string& lungvol_binary, const std::string& outdir);
std::string merge_script(const std::string& lungvol_binary, const std::string& outdir);
std::string registration_task_script(const std::string& lungvol_binary, const std::string& outdir);
std::string registration_merge_script(const std::string& lungvol_binary, const std::string& outdir);
// The sbatch argument lists (without the program name).
std::vector<std::string> array_sbatch_args(const SlurmOptions& slurm, const std::string& outdir,
                                           const ArrayJob& array, int threads);
std::vector<std::string> merge_sbatch_args(const SlurmOptions& slurm, const std::string& outdir,
                                           const std::vector<ArrayJob>& arrays);

// The registration array (one task per subject, after `after_job_id` when not empty) and its
// merge (after the array).
std::vector<std::string> registration_sbatch_args(const SlurmOptions& slurm,
                                                  const std::string& outdir, std::size_t subjects,
                                                  int threads, const std::string& after_job_id);
std::vector<std::string> registration_merge_sbatch_args(const SlurmOptions& slurm,
                                                        const std::string& outdir,
                                                        const std::string& array_job_id);

// A task's result file <-> the scan outcome (histograms sparse, from the first to the last
// non-empty bin; doubles written with round-trip precision).
nlohmann::json outcome_to_json(const ScanOutcome& outcome, std::size_t index);
// Rebuilds the record (fields the task filled) and the regions (re-measured with `protocol`).
ScanOutcome outcome_from_json(const nlohmann::json& j, ScanRecord base, const Protocol& protocol);

}  // namespace lungvol::batch::slurm
