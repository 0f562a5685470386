#pragma once
// Pieces shared by the Slurm executor's files (batch/slurm*.cpp), not part of lungvol::batch's
// interface: the submission folder's layout and file formats (slurm_files.cpp), and running
// the Slurm commands (slurm_commands.cpp). The controller is batch/slurm.cpp.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/manifest.hpp"
#include "batch/slurm.hpp"
#include "core/protocol.hpp"

namespace lungvol::batch::slurm::detail {

inline constexpr const char* kTasksFormat = "lungvol.slurm-tasks/1";
inline constexpr const char* kResultFormat = "lungvol.slurm-result/1";

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
