// Running the Slurm commands (sbatch, squeue) and what they read and write: job ids, queue
// listings, batch scripts and argument lists.
#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "batch/slurm.hpp"
#include "batch/slurm_internal.hpp"
#include "core/error.hpp"
#include "core/names.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace lungvol::batch::slurm {
namespace detail {

ProgramResult run_program(const std::string& program, const std::vector<std::string>& args) {
  ProgramResult r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return r;
  }
  r.started = true;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      r.output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return r;
}

bool program_exists(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) dir = ".";
    if (::access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string this_executable() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(ExitCode::kUsage, "cannot find the lungvol executable (/proc/self/exe)");
  return p.string();
}

std::string user_name() {
  if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  const char* u = std::getenv("USER");
  return u ? u : "";
}

}  // namespace detail

using detail::Paths;
using detail::trim;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void check_script_value(const std::string& what, const std::string& value) {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      throw Error(ExitCode::kUsage,
                  fmt::format("--executor slurm: the {} '{}' holds a control character (0x{:02x}); "
                              "refused: it would break the generated job scripts. Use a name "
                              "without newlines or other control characters",
                              what, printable(value), u));
    }
  }
  if ((what == "output folder" || what == "lungvol executable") &&
      value.find('\\') != std::string::npos) {
    throw Error(ExitCode::kUsage,
                fmt::format("--executor slurm: the {} '{}' holds a backslash, which makes Slurm "
                            "ignore the %A/%a patterns of the job log names; use a path without "
                            "backslashes",
                            what, printable(value)));
  }
}

std::string slurm_pattern_escape(const std::string& path) {
  std::string out;
  for (const char c : path) {
    if (c == '%') out.push_back('%');
    out.push_back(c);
  }
  return out;
}

std::string parse_job_id(const std::string& sbatch_output) {
  // --parsable prints the id (";cluster" on multi-cluster setups) on the last line; warnings
  // may come before it.
  std::string last;
  std::stringstream ss(sbatch_output);
  for (std::string line; std::getline(ss, line);) {
    if (!trim(line).empty()) last = trim(line);
  }
  const std::string id = last.substr(0, last.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(ExitCode::kOutput,
                "could not read a job id from sbatch --parsable: '" + trim(sbatch_output) + "'");
  }
  return id;
}

std::map<std::size_t, std::string> parse_squeue(const std::string& text,
                                                const std::vector<ArrayJob>& arrays,
                                                std::map<std::string, std::string>* others) {
  std::map<std::size_t, std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    line = trim(line);
    const auto a = line.find('|');
    const auto b = a == std::string::npos ? a : line.find('|', a + 1);
    if (b == std::string::npos) continue;
    const std::string job = line.substr(0, a), index = line.substr(a + 1, b - a - 1);
    const std::string state = line.substr(b + 1);
    bool mine = false;
    for (const auto& arr : arrays) {
      if (arr.job_id != job) continue;
      mine = true;
      if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) break;
      const std::size_t k = std::stoul(index);
      if (k < arr.count) out[arr.offset + k] = state;
    }
    if (!mine && others) (*others)[job] = state;
  }
  return out;
}

std::string task_script(const std::string& lungvol_binary, const std::string& outdir) {
  check_script_value("output folder", outdir);
  check_script_value("lungvol executable", lungvol_binary);
  // Values enter the script only shell-quoted; comments show them with control characters
  // escaped (they are refused anyway), so no value can end a comment line.
  return fmt::format(
      "#!/bin/bash\n"
      "# lungvol Slurm array task: analyzes scan $1 + SLURM_ARRAY_TASK_ID of the task list\n"
      "# {0}/slurm/tasks.json and writes its slurm/tasks/<i>/result.json.\n"
      "set -eu\n"
      "offset=\"${{1:-0}}\"\n"
      "index=\"${{SLURM_ARRAY_TASK_ID:-}}\"\n"
      "case \"$offset$index\" in ''|*[!0-9]*) echo \"lungvol task: bad offset '$offset' or "
      "SLURM_ARRAY_TASK_ID '$index'\" >&2; exit 2;; esac\n"
      "# Threads: the CPUs Slurm allocated (--cpus-per-task, else the job's CPUs on the node).\n"
      "exec {1} --threads \"${{SLURM_CPUS_PER_TASK:-${{SLURM_CPUS_ON_NODE:-0}}}}\" batch --slurm-task "
      "\"$(( 10#$offset + 10#$index ))\" -o {2}\n",
      printable(outdir, 4096), shell_quote(lungvol_binary), shell_quote(outdir));
}

namespace {
// A merge job: one lungvol call that stores the results the array's tasks left in
// OUTDIR/slurm/<folder>/ (the scans' merge and the registrations' share it).
std::string store_script(const std::string& lungvol_binary, const std::string& outdir,
                         const char* job, const char* results, const char* folder,
                         const char* flag) {
  check_script_value("output folder", outdir);
  check_script_value("lungvol executable", lungvol_binary);
  return fmt::format(
      "#!/bin/bash\n"
      "# lungvol Slurm {3}: stores every {4} of {0}/slurm/{5}/ in results.sqlite.\n"
      "set -eu\n"
      "exec {1} batch {6} -o {2}\n",
      printable(outdir, 4096), shell_quote(lungvol_binary), shell_quote(outdir), job, results,
      folder, flag);
}
}  // namespace

std::string merge_script(const std::string& lungvol_binary, const std::string& outdir) {
  return store_script(lungvol_binary, outdir, "merge", "task result", "tasks", "--slurm-merge");
}

std::string registration_task_script(const std::string& lungvol_binary, const std::string& outdir) {
  check_script_value("output folder", outdir);
  check_script_value("lungvol executable", lungvol_binary);
  return fmt::format(
      "#!/bin/bash\n"
      "# lungvol Slurm registration task: registers the follow-ups of subject SLURM_ARRAY_TASK_ID\n"
      "# of {0}/slurm/registrations.json to its baseline.\n"
      "set -eu\n"
      "index=\"${{SLURM_ARRAY_TASK_ID:-}}\"\n"
      "case \"$index\" in ''|*[!0-9]*) echo \"lungvol registration task: bad "
      "SLURM_ARRAY_TASK_ID '$index'\" >&2; exit 2;; esac\n"
      "exec {1} --threads \"${{SLURM_CPUS_PER_TASK:-${{SLURM_CPUS_ON_NODE:-0}}}}\" batch "
      "--slurm-register-task \"$(( 10#$index ))\" -o {2}\n",
      printable(outdir, 4096), shell_quote(lungvol_binary), shell_quote(outdir));
}

std::string registration_merge_script(const std::string& lungvol_binary, const std::string& outdir) {
  return store_script(lungvol_binary, outdir, "registration merge", "registration result",
                      "registrations", "--slurm-register-merge");
}

std::vector<std::string> registration_sbatch_args(const SlurmOptions& slurm,
                                                  const std::string& outdir, std::size_t subjects,
                                                  int threads, const std::string& after_job_id) {
  const Paths p(outdir);
  std::string range = fmt::format("--array=0-{}", subjects - 1);
  if (slurm.array_limit > 0) range += fmt::format("%{}", slurm.array_limit);
  std::vector<std::string> args{"--parsable", range};
  // afterany: a subject whose scan failed is still planned (and skipped) by its task, and the
  // merge job's own failure must not leave the registrations pending for ever.
  if (!after_job_id.empty()) args.push_back("--dependency=afterany:" + after_job_id);
  args.push_back("--job-name=lungvol-register");
  args.push_back("--output=" + slurm_pattern_escape(p.logs().string()) + "/register-%A_%a.log");
  if (threads > 0) args.push_back(fmt::format("--cpus-per-task={}", threads));
  if (!slurm.partition.empty()) args.push_back("--partition=" + slurm.partition);
  args.insert(args.end(), slurm.sbatch_args.begin(), slurm.sbatch_args.end());
  args.push_back(p.registration_script().string());
  return args;
}

std::vector<std::string> registration_merge_sbatch_args(const SlurmOptions& slurm,
                                                        const std::string& outdir,
                                                        const std::string& array_job_id) {
  const Paths p(outdir);
  std::vector<std::string> args{"--parsable", "--dependency=afterany:" + array_job_id,
                                "--job-name=lungvol-register-merge",
                                "--output=" + slurm_pattern_escape(p.logs().string()) +
                                    "/register-merge-%j.log"};
  if (!slurm.partition.empty()) args.push_back("--partition=" + slurm.partition);
  args.insert(args.end(), slurm.sbatch_args.begin(), slurm.sbatch_args.end());
  args.push_back(p.registration_merge_script().string());
  return args;
}

std::vector<std::string> array_sbatch_args(const SlurmOptions& slurm, const std::string& outdir,
                                           const ArrayJob& array, int threads) {
  const Paths p(outdir);
  std::string range = fmt::format("--array=0-{}", array.count - 1);
  if (slurm.array_limit > 0) range += fmt::format("%{}", slurm.array_limit);
  std::vector<std::string> args{"--parsable", range, "--job-name=lungvol-batch",
                                "--output=" + slurm_pattern_escape(p.logs().string()) +
                                    "/task-%A_%a.log"};
  if (threads > 0) args.push_back(fmt::format("--cpus-per-task={}", threads));
  if (!slurm.partition.empty()) args.push_back("--partition=" + slurm.partition);
  args.insert(args.end(), slurm.sbatch_args.begin(), slurm.sbatch_args.end());
  args.push_back(p.task_script().string());
  args.push_back(std::to_string(array.offset));
  return args;
}

std::vector<std::string> merge_sbatch_args(const SlurmOptions& slurm, const std::string& outdir,
                                           const std::vector<ArrayJob>& arrays) {
  const Paths p(outdir);
  std::string dep = "--dependency=afterany";
  for (const auto& a : arrays) dep += ":" + a.job_id;
  std::vector<std::string> args{"--parsable", dep, "--job-name=lungvol-merge",
                                "--output=" + slurm_pattern_escape(p.logs().string()) +
                                    "/merge-%j.log"};
  if (!slurm.partition.empty()) args.push_back("--partition=" + slurm.partition);
  args.insert(args.end(), slurm.sbatch_args.begin(), slurm.sbatch_args.end());
  args.push_back(p.merge_script().string());
  return args;
}

}  // namespace lungvol::batch::slurm
