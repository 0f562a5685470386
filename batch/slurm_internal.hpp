#pragma once
// Pieces shared by the Slurm executor's files (batch/slurm*.cpp), not part of lungvol::batch's
// interface: the submission folder's layout and file formats (slurm_files.cpp), and running
// the Slurm commands (slurm_commands.cpp). The controller is batch/slurm.cpp.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/manifest.hpp"
#include "batch/slurm.hpp"
#include "batch/store.hpp"
#include "core/protocol.hpp"

namespace lungvol::batch::slurm::detail {

inline constexpr const char* kTasksFormat = "lungvol.slurm-tasks/1";
inline constexpr const char* kResultFormat = "lungvol.slurm-result/1";
inline constexpr const char* kRegistrationsFormat = "lungvol.slurm-registrations/1";
inline constexpr const char* kRegistrationResultFormat = "lungvol.slurm-registration-result/1";

// OUTDIR/slurm/: the controller's and the jobs' files.
struct Paths {
  explicit Paths(const std::string& outdir)
      : dir(std::filesystem::absolute(outdir).lexically_normal()) {
    if (dir.has_filename() == false) dir = dir.parent_path();  // drop a trailing '/'
    slurm = dir / "slurm";
  }
  std::filesystem::path dir, slurm;
  std::filesystem::path tasks_json() const { return slurm / "tasks.json"; }
  std::filesystem::path submission_json() const { return slurm / "submission.json"; }
  std::filesystem::path merged_json() const { return slurm / "merged.json"; }
  std::filesystem::path task_script() const { return slurm / "task.sbatch"; }
  std::filesystem::path merge_script() const { return slurm / "merge.sbatch"; }
  std::filesystem::path logs() const { return slurm / "logs"; }
  std::filesystem::path registrations_json() const { return slurm / "registrations.json"; }
  std::filesystem::path registrations_merged_json() const {
    return slurm / "registrations-merged.json";
  }
  std::filesystem::path registration_script() const { return slurm / "register.sbatch"; }
  std::filesystem::path registration_merge_script() const {
    return slurm / "register-merge.sbatch";
  }
  std::filesystem::path registration_result(std::size_t i) const {
    return slurm / "registrations" / std::to_string(i) / "result.json";
  }
  std::filesystem::path result(std::size_t i) const {
    return slurm / "tasks" / std::to_string(i) / "result.json";
  }
};

// --- files (slurm_files.cpp) ---

// Parsed JSON of `path`; Error(kInput) naming `what` and the file when it is not JSON.
nlohmann::json read_json(const std::filesystem::path& path, const char* what);
// OUTDIR/slurm/tasks.json; Error(kInput) when missing or of another format.
nlohmann::json read_tasks(const Paths& p);
nlohmann::json entry_to_json(const ManifestEntry& e);
ManifestEntry entry_from_json(const nlohmann::json& j);
// Task `index` of the task list; Error(kUsage) when there is no such task.
ManifestEntry task_entry(const nlohmann::json& tasks, std::size_t index, const Paths& p);
// The protocol the tasks were submitted with; Error(kProtocol) when its file changed since.
Protocol submitted_protocol(const nlohmann::json& tasks);
std::vector<ArrayJob> arrays_from_json(const nlohmann::json& submission);

// --- the controller's helpers (slurm.cpp) ---

struct Queue {
  bool known = false;
  std::map<std::size_t, std::string> tasks;    // task index -> state
  std::map<std::string, std::string> others;  // job id -> state (merge jobs, other arrays)
  std::string error;
};
// This user's queued jobs (squeue lists only jobs not yet finished).
Queue query_queue(const SlurmOptions& slurm, const std::vector<ArrayJob>& arrays);
// sbatch with `args`: the job id; Error(kUsage) when it cannot run, Error(kOutput) quoting sbatch
// when it refuses.
std::string submit(const SlurmOptions& slurm, const std::vector<std::string>& args,
                   const char* what);
std::string join(const std::vector<std::string>& v, const std::string& sep);

// --- the registration step (slurm_registrations.cpp) ---

// The subjects a batch of this manifest registers: a baseline and at least one other scheduled
// visit in the manifest (whether their scans are analyzed is known only after the merge).
std::vector<std::string> registration_candidates(const BatchInputs& inputs);
// Writes OUTDIR/slurm/registrations.json and submits the registration array (after
// `after_job_id`, or at once when empty) and its merge; fills the Submission's registration
// fields. A refused submission is a warning: the next `batch` submits what is left.
void submit_registrations(const BatchOptions& options, const BatchInputs& inputs,
                          const SlurmOptions& slurm, const std::string& binary,
                          const std::vector<std::string>& subjects, const std::string& after_job_id,
                          Submission* sub);
// An earlier registration submission not merged yet: refused (Error(kOutput)) while its jobs are
// queued, else merged now. Called with OUTDIR locked.
void settle_earlier_registrations(Store& store, const Paths& p, const SlurmOptions& slurm);
// The registration fields of `status` from OUTDIR/slurm/registrations.json and the result files.
void read_registration_status(const Paths& p, Status* status);

// --- commands (slurm_commands.cpp) ---

struct ProgramResult {
  bool started = false;
  int status = -1;  // exit status, or 128 + signal
  std::string output;  // stdout and stderr
};

// Runs a program without a shell (arguments passed as they are), stdin from /dev/null.
ProgramResult run_program(const std::string& program, const std::vector<std::string>& args);
// True when `program` names an executable file, directly or on PATH.
bool program_exists(const std::string& program);
std::string trim(const std::string& s);
std::string this_executable();
std::string user_name();

}  // namespace lungvol::batch::slurm::detail
