#include "batch/slurm.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "batch/exports.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "pipeline/analyze.hpp"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace lungvol::batch::slurm {
namespace {

constexpr const char* kTasksFormat = "lungvol.slurm-tasks/1";
constexpr const char* kResultFormat = "lungvol.slurm-result/1";

struct Paths {
  explicit Paths(const std::string& outdir) : dir(fs::absolute(outdir).lexically_normal()) {
    if (dir.has_filename() == false) dir = dir.parent_path();  // drop a trailing '/'
    slurm = dir / "slurm";
  }
  fs::path dir, slurm;
  fs::path tasks_json() const { return slurm / "tasks.json"; }
  fs::path submission_json() const { return slurm / "submission.json"; }
  fs::path merged_json() const { return slurm / "merged.json"; }
  fs::path task_script() const { return slurm / "task.sbatch"; }
  fs::path merge_script() const { return slurm / "merge.sbatch"; }
  fs::path logs() const { return slurm / "logs"; }
  fs::path result(std::size_t i) const {
    return slurm / "tasks" / std::to_string(i) / "result.json";
  }
};

json read_json(const fs::path& path, const char* what) {
  const std::string text = read_text_file(path.string());
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ExitCode::kInput, fmt::format("{} '{}' is not valid JSON: {}", what,
                                              path.string(), e.what()));
  }
}

json read_tasks(const Paths& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p.tasks_json(), ec)) {
    throw Error(ExitCode::kInput, fmt::format("no Slurm submission in '{}' ('{}' is missing)",
                                              p.dir.string(), p.tasks_json().string()));
  }
  json j = read_json(p.tasks_json(), "Slurm task list");
  if (j.value("format", "") != kTasksFormat) {
    throw Error(ExitCode::kInput, fmt::format("'{}' is not a {} file",
                                              p.tasks_json().string(), kTasksFormat));
  }
  return j;
}

json entry_to_json(const ManifestEntry& e) {
  return json{{"line", e.line},
              {"subject_id", e.subject_id},
              {"arm", e.arm},
              {"visit", e.visit},
              {"visit_day", e.visit_day ? json(*e.visit_day) : json(nullptr)},
              {"path", e.path},
              {"full_path", e.full_path},
              {"series_uid", e.series_uid},
              {"site", e.site},
              {"population", e.population},
              {"lungs_mask", e.lungs_mask},
              {"lesions_mask", e.lesions_mask}};
}

ManifestEntry entry_from_json(const json& j) {
  ManifestEntry e;
  e.line = j.at("line").get<std::size_t>();
  e.subject_id = j.at("subject_id").get<std::string>();
  e.arm = j.at("arm").get<std::string>();
  e.visit = j.at("visit").get<std::string>();
  if (!j.at("visit_day").is_null()) e.visit_day = j.at("visit_day").get<double>();
  e.path = j.at("path").get<std::string>();
  e.full_path = j.at("full_path").get<std::string>();
  e.series_uid = j.at("series_uid").get<std::string>();
  e.site = j.at("site").get<std::string>();
  e.population = j.at("population").get<std::string>();
  e.lungs_mask = j.at("lungs_mask").get<std::string>();
  e.lesions_mask = j.at("lesions_mask").get<std::string>();
  return e;
}

ManifestEntry task_entry(const json& tasks, std::size_t index, const Paths& p) {
  const json& list = tasks.at("tasks");
  if (index >= list.size()) {
    throw Error(ExitCode::kUsage, fmt::format("Slurm task {} does not exist: '{}' lists {} tasks",
                                              index, p.tasks_json().string(), list.size()));
  }
  return entry_from_json(list[index]);
}

// The protocol the tasks were submitted with; a changed file would mix two protocols in one
// run, so it is refused.
Protocol submitted_protocol(const json& tasks) {
  const std::string path = tasks.at("protocol_path").get<std::string>();
  Protocol p = load_protocol(path);
  const std::string expected = tasks.at("protocol_sha256").get<std::string>();
  if (p.sha256 != expected) {
    throw Error(ExitCode::kProtocol,
                fmt::format("protocol '{}' changed since the batch was submitted (sha256 {} then, "
                            "{} now); submit the batch again",
                            path, expected.substr(0, 12), p.sha256.substr(0, 12)));
  }
  p.source_path = path;
  return p;
}

json histogram_to_json(const HuHistogram& h) {
  int first = -1, last = -1;
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    if (h.counts[static_cast<std::size_t>(b)]) {
      if (first < 0) first = b;
      last = b;
    }
  }
  json counts = json::array();
  for (int b = first; first >= 0 && b <= last; ++b) counts.push_back(h.counts[static_cast<std::size_t>(b)]);
  return json{{"hu_min", (first < 0 ? 0 : first) + HuHistogram::kMinHu}, {"counts", counts}};
}

HuHistogram histogram_from_json(const json& j) {
  HuHistogram h;
  const int first = j.at("hu_min").get<int>() - HuHistogram::kMinHu;
  const json& counts = j.at("counts");
  if (first < 0 || first + static_cast<int>(counts.size()) > HuHistogram::kBins) {
    throw Error(ExitCode::kInput, "histogram outside the HU range in a Slurm task result");
  }
  for (std::size_t i = 0; i < counts.size(); ++i) {
    h.counts[static_cast<std::size_t>(first) + i] = counts[i].get<std::uint64_t>();
  }
  return h;
}

struct ProgramResult {
  bool started = false;
  int status = -1;  // exit status, or 128 + signal
  std::string output;  // stdout and stderr
};

// Runs a program without a shell (arguments passed as they are), stdin from /dev/null.
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

// True when `program` names an executable file, directly or on PATH.
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

struct Queue {
  bool known = false;
  std::map<std::size_t, std::string> tasks;    // task index -> state
  std::map<std::string, std::string> others;  // job id -> state (the merge job)
  std::string error;
};

// This user's queued jobs (squeue lists only jobs not yet finished).
Queue query_queue(const SlurmOptions& slurm, const std::vector<ArrayJob>& arrays) {
  Queue q;
  if (!program_exists(slurm.squeue)) {
    q.error = "'" + slurm.squeue + "' not found";
    return q;
  }
  const ProgramResult r =
      run_program(slurm.squeue, {"-h", "-r", "-u", user_name(), "-o", "%A|%K|%T"});
  if (!r.started || r.status != 0) {
    q.error = trim(r.output);
    return q;
  }
  q.known = true;
  q.tasks = parse_squeue(r.output, arrays, &q.others);
  return q;
}

std::vector<ArrayJob> arrays_from_json(const json& submission) {
  std::vector<ArrayJob> out;
  for (const auto& a : submission.at("arrays")) {
    out.push_back(ArrayJob{a.at("job_id").get<std::string>(), a.at("offset").get<std::size_t>(),
                           a.at("count").get<std::size_t>()});
  }
  return out;
}

std::string log_of_task(const Paths& p, const std::vector<ArrayJob>& arrays, std::size_t i) {
  for (const auto& a : arrays) {
    if (i >= a.offset && i < a.offset + a.count) {
      return (p.logs() / fmt::format("task-{}_{}.log", a.job_id, i - a.offset)).string();
    }
  }
  return p.logs().string();
}

BatchSummary merge_locked(Store& store, const Paths& p, const json& tasks) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t run_id = tasks.at("run_id").get<std::int64_t>();
  if (run_id <= 0) {
    throw Error(ExitCode::kInput, "'" + p.tasks_json().string() +
                                      "' was never submitted (no run id); submit the batch again");
  }
  const Protocol protocol = submitted_protocol(tasks);
  const std::string schedule_path = tasks.at("schedule").get<std::string>();
  const trial::VisitSchedule schedule = schedule_path.empty()
                                            ? trial::default_visit_schedule()
                                            : trial::load_visit_schedule(schedule_path);
  std::vector<ArrayJob> arrays;
  std::error_code ec;
  if (fs::is_regular_file(p.submission_json(), ec)) {
    arrays = arrays_from_json(read_json(p.submission_json(), "Slurm submission"));
  }
  const std::string outdir = tasks.at("outdir").get<std::string>();
  BatchSummary summary;
  summary.run_id = run_id;
  summary.counts.total = tasks.at("total").get<std::size_t>();
  summary.counts.skipped = tasks.at("skipped").get<std::size_t>();
  const json& list = tasks.at("tasks");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const ManifestEntry e = entry_from_json(list[i]);
    ScanRecord base = base_record(e, outdir, protocol, run_id);
    ScanOutcome out;
    if (fs::is_regular_file(p.result(i), ec)) {
      try {
        const json r = read_json(p.result(i), "Slurm task result");
        if (r.value("format", "") != kResultFormat || r.value("subject_id", "") != e.subject_id ||
            r.value("visit", "") != e.visit) {
          throw Error(ExitCode::kInput, "'" + p.result(i).string() + "' is not the result of " +
                                            e.subject_id + " " + e.visit);
        }
        out = outcome_from_json(r, base, protocol);
      } catch (const std::exception& err) {
        out = ScanOutcome{};
        out.record = base;
        out.record.status = "failed";
        out.record.error = std::string("unusable Slurm task result: ") + err.what();
        out.exit_code = static_cast<int>(ExitCode::kOutput);
      }
    } else {
      out.record = base;
      out.record.status = "failed";
      out.record.error = fmt::format(
          "the Slurm task ended without a result (crashed, cancelled, out of memory or time "
          "limit?); see {}",
          log_of_task(p, arrays, i));
      out.exit_code = static_cast<int>(ExitCode::kProcessing);
    }
    if (out.record.analyzed_at.empty()) out.record.analyzed_at = utc_timestamp();
    if (out.record.status == "ok") {
      store.save_scan(out.record, out.regions);
      ++summary.counts.analyzed;
    } else {
      store.save_failure(out.record, out.exit_code);
      ++summary.counts.failed;
      log::warn("batch: {} {} failed (exit {}): {}", e.subject_id, e.visit, out.exit_code,
                out.record.error);
    }
  }
  store.update_timing(schedule);
  write_cohort_measurements_csv(store, (p.dir / "measurements.csv").string());
  write_visits_wide_csv(store, (p.dir / "visits_wide.csv").string());
  store.finish_run(run_id, summary.counts);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_text_atomic(p.merged_json().string(),
                    json{{"run_id", run_id},
                         {"merged_at", utc_timestamp()},
                         {"analyzed", summary.counts.analyzed},
                         {"failed", summary.counts.failed},
                         {"skipped", summary.counts.skipped}}
                            .dump(2) +
                        "\n");
  log::info("batch: merged {} Slurm task result(s) of run {} into {}", list.size(), run_id,
            store.path());
  return summary;
}

bool already_merged(const Paths& p, std::int64_t run_id) {
  std::error_code ec;
  if (!fs::is_regular_file(p.merged_json(), ec)) return false;
  return read_json(p.merged_json(), "Slurm merge record").value("run_id", std::int64_t{0}) == run_id;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string submit(const SlurmOptions& slurm, const std::vector<std::string>& args,
                   const char* what) {
  const ProgramResult r = run_program(slurm.sbatch, args);
  if (!r.started) {
    throw Error(ExitCode::kUsage, "--executor slurm: cannot run '" + slurm.sbatch + "'");
  }
  if (r.status != 0) {
    throw Error(ExitCode::kOutput,
                fmt::format("Slurm refused the {} (sbatch exit {}): {}; command: {} {}", what,
                            r.status, trim(r.output), slurm.sbatch, join(args, " ")));
  }
  return parse_job_id(r.output);
}

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
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
  return fmt::format(
      "#!/bin/bash\n"
      "# lungvol Slurm array task: analyzes scan $1 + SLURM_ARRAY_TASK_ID of {0}/slurm/tasks.json\n"
      "# into {0}/scans/<subject>/<visit>/ and writes {0}/slurm/tasks/<i>/result.json.\n"
      "set -eu\n"
      "# Threads: the CPUs Slurm allocated (--cpus-per-task, else the job's CPUs on the node).\n"
      "exec {1} --threads \"${{SLURM_CPUS_PER_TASK:-${{SLURM_CPUS_ON_NODE:-0}}}}\" batch --slurm-task "
      "\"$(( ${{1:-0}} + SLURM_ARRAY_TASK_ID ))\" -o {2}\n",
      outdir, shell_quote(lungvol_binary), shell_quote(outdir));
}

std::string merge_script(const std::string& lungvol_binary, const std::string& outdir) {
  return fmt::format(
      "#!/bin/bash\n"
      "# lungvol Slurm merge: stores every task result of {0}/slurm/tasks/ in "
      "{0}/results.sqlite.\n"
      "set -eu\n"
      "exec {1} batch --slurm-merge -o {2}\n",
      outdir, shell_quote(lungvol_binary), shell_quote(outdir));
}

std::vector<std::string> array_sbatch_args(const SlurmOptions& slurm, const std::string& outdir,
                                           const ArrayJob& array, int threads) {
  const Paths p(outdir);
  std::string range = fmt::format("--array=0-{}", array.count - 1);
  if (slurm.array_limit > 0) range += fmt::format("%{}", slurm.array_limit);
  std::vector<std::string> args{"--parsable", range, "--job-name=lungvol-batch",
                                "--output=" + (p.logs() / "task-%A_%a.log").string()};
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
                                "--output=" + (p.logs() / "merge-%j.log").string()};
  if (!slurm.partition.empty()) args.push_back("--partition=" + slurm.partition);
  args.insert(args.end(), slurm.sbatch_args.begin(), slurm.sbatch_args.end());
  args.push_back(p.merge_script().string());
  return args;
}

json outcome_to_json(const ScanOutcome& o, std::size_t index) {
  const ScanRecord& r = o.record;
  json regions = json::array();
  for (const auto& reg : o.regions) {
    const auto& h = reg.histograms;
    regions.push_back(json{{"name", reg.name},
                           {"lesion_labels_given", h.lesion_labels_given},
                           {"lung", histogram_to_json(h.lung)},
                           {"suppressed", histogram_to_json(h.suppressed)},
                           {"given_ggo", histogram_to_json(h.given_ggo)},
                           {"given_solid", histogram_to_json(h.given_solid)}});
  }
  return json{{"format", kResultFormat},
              {"index", index},
              {"subject_id", r.subject_id},
              {"visit", r.visit},
              {"status", r.status},
              {"exit_code", o.exit_code},
              {"error", r.error},
              {"series_uid", r.series_uid},
              {"input_sha256", r.input_sha256},
              {"study_date", r.study_date},
              {"analyzed_at", r.analyzed_at},
              {"timing_s", r.timing_s},
              {"voxel_ml", r.voxel_ml},
              {"warnings", r.warnings},
              {"regions", regions}};
}

ScanOutcome outcome_from_json(const json& j, ScanRecord base, const Protocol& protocol) {
  ScanOutcome o;
  o.record = std::move(base);
  ScanRecord& r = o.record;
  r.status = j.at("status").get<std::string>();
  if (r.status != "ok" && r.status != "failed") {
    throw Error(ExitCode::kInput, "Slurm task result with status '" + r.status + "'");
  }
  o.exit_code = j.at("exit_code").get<int>();
  r.error = j.at("error").get<std::string>();
  r.series_uid = j.at("series_uid").get<std::string>();
  r.input_sha256 = j.at("input_sha256").get<std::string>();
  r.study_date = j.at("study_date").get<std::string>();
  r.analyzed_at = j.at("analyzed_at").get<std::string>();
  r.timing_s = j.at("timing_s").get<double>();
  r.voxel_ml = j.at("voxel_ml").get<double>();
  r.warnings = j.at("warnings").get<std::string>();
  if (r.status == "ok") {
    std::vector<vol::RegionHistograms> hists;
    for (const auto& reg : j.at("regions")) {
      vol::RegionHistograms h;
      h.name = reg.at("name").get<std::string>();
      h.lesion_labels_given = reg.at("lesion_labels_given").get<bool>();
      h.lung = histogram_from_json(reg.at("lung"));
      h.suppressed = histogram_from_json(reg.at("suppressed"));
      h.given_ggo = histogram_from_json(reg.at("given_ggo"));
      h.given_solid = histogram_from_json(reg.at("given_solid"));
      hists.push_back(std::move(h));
    }
    // What analyze() does after building the histograms: the same numbers.
    o.regions = pipeline::measure_regions(std::move(hists), protocol, r.voxel_ml);
  }
  return o;
}

Submission submit_batch(const BatchOptions& options, const SlurmOptions& slurm) {
  if (!program_exists(slurm.sbatch)) {
    throw Error(ExitCode::kUsage,
                "--executor slurm: '" + slurm.sbatch +
                    "' was not found on PATH; run on a Slurm login node (or install the Slurm "
                    "client), or use the local executor");
  }
  if (slurm.array_limit < 0) throw Error(ExitCode::kUsage, "--array-limit must be at least 0");
  const BatchInputs inputs = load_batch_inputs(options);
  const Paths p(options.outdir);
  ensure_directory(p.dir.string());
  ensure_directory(p.slurm.string());
  DirectoryLock lock((p.dir / ".lock").string());
  Store store((p.dir / "results.sqlite").string());

  // An earlier submission whose merge never ran (or failed): keep what its tasks finished.
  std::error_code ec;
  if (fs::is_regular_file(p.submission_json(), ec)) {
    const json sub = read_json(p.submission_json(), "Slurm submission");
    const std::int64_t prev_run = sub.at("run_id").get<std::int64_t>();
    // Merged means its merge job ran, and that job ran after every task (afterany).
    if (!already_merged(p, prev_run)) {
      const std::vector<ArrayJob> prev_arrays = arrays_from_json(sub);
      const std::string merge_id = sub.value("merge_job_id", "");
      const Queue q = query_queue(slurm, prev_arrays);
      if (!q.known) {
        throw Error(ExitCode::kOutput,
                    fmt::format("cannot ask Slurm whether the earlier submission on '{}' still "
                                "runs ({}); when it has finished, run `lungvol batch "
                                "--slurm-merge -o {}` and submit again",
                                p.dir.string(), q.error, p.dir.string()));
      }
      if (!q.tasks.empty() || (!merge_id.empty() && q.others.count(merge_id))) {
        std::vector<std::string> ids;
        for (const auto& a : prev_arrays) ids.push_back(a.job_id);
        if (!merge_id.empty()) ids.push_back(merge_id);
        throw Error(ExitCode::kOutput,
                    fmt::format("an earlier Slurm submission on '{}' is still queued or running "
                                "(jobs {}); follow it with `lungvol batch --executor slurm "
                                "--status {}`, or scancel it before submitting again",
                                p.dir.string(), join(ids, ", "), p.dir.string()));
      }
      log::info("batch: merging the results of the earlier Slurm submission (run {}) first",
                prev_run);
      merge_locked(store, p, read_tasks(p));
    }
  }

  BatchOptions o = options;
  o.outdir = p.dir.string();
  Submission sub;
  sub.total = inputs.manifest.entries.size();
  std::vector<ManifestEntry> pending;
  for (const auto& e : inputs.manifest.entries) {
    if (!options.force && scan_is_done(store, e, inputs.protocol)) {
      ++sub.skipped;
    } else {
      pending.push_back(e);
    }
  }
  sub.submitted = pending.size();
  if (pending.empty()) {
    sub.run_id = store.begin_run(make_run_info(o, inputs, 0, options.threads));
    store.set_manifest(inputs.manifest);
    store.update_timing(inputs.schedule);
    write_cohort_measurements_csv(store, (p.dir / "measurements.csv").string());
    write_visits_wide_csv(store, (p.dir / "visits_wide.csv").string());
    RunCounts counts;
    counts.total = sub.total;
    counts.skipped = sub.skipped;
    store.finish_run(sub.run_id, counts);
    sub.finished = true;
    return sub;
  }

  // A fresh submission folder: results of the previous one are merged (above) and its files
  // would be mistaken for this one's.
  fs::remove_all(p.slurm / "tasks", ec);
  fs::remove(p.submission_json(), ec);
  fs::remove(p.merged_json(), ec);
  ensure_directory(p.logs().string());
  json list = json::array();
  for (const auto& e : pending) list.push_back(entry_to_json(e));
  json tasks{{"format", kTasksFormat},
             {"run_id", 0},  // set once submitted
             {"outdir", p.dir.string()},
             {"protocol_path", inputs.protocol.source_path},
             {"protocol_sha256", inputs.protocol.sha256},
             {"schedule", options.schedule.empty() ? "" : fs::absolute(options.schedule).string()},
             {"write_label_maps", options.write_label_maps},
             {"write_qc_images", options.write_qc_images},
             {"write_meshes", options.write_meshes},
             {"total", sub.total},
             {"skipped", sub.skipped},
             {"tasks", list}};
  write_text_atomic(p.tasks_json().string(), tasks.dump(1) + "\n");
  const std::string binary = slurm.lungvol_binary.empty() ? this_executable() : slurm.lungvol_binary;
  write_text_atomic(p.task_script().string(), task_script(binary, p.dir.string()));
  write_text_atomic(p.merge_script().string(), merge_script(binary, p.dir.string()));

  // The run is recorded once Slurm has accepted the tasks, so a refused submission leaves
  // the store as it was.
  std::vector<std::string> commands;
  auto record = [&](const std::string& merge_id) {
    json arrays = json::array();
    for (const auto& a : sub.arrays) {
      arrays.push_back(json{{"job_id", a.job_id}, {"offset", a.offset}, {"count", a.count}});
    }
    write_text_atomic(p.submission_json().string(),
                      json{{"run_id", sub.run_id},
                           {"submitted_at", utc_timestamp()},
                           {"arrays", arrays},
                           {"merge_job_id", merge_id},
                           {"sbatch", commands}}
                              .dump(2) +
                          "\n");
  };
  for (std::size_t offset = 0; offset < pending.size(); offset += slurm.max_array_size) {
    ArrayJob a;
    a.offset = offset;
    a.count = std::min(slurm.max_array_size, pending.size() - offset);
    const auto args = array_sbatch_args(slurm, p.dir.string(), a, options.threads);
    try {
      a.job_id = submit(slurm, args, "job array");
    } catch (const Error&) {
      if (sub.arrays.empty()) {
        fs::remove(p.tasks_json(), ec);  // nothing was submitted
        throw;
      }
      break;  // what was accepted runs and is merged; the rest is left for a re-submission
    }
    commands.push_back(slurm.sbatch + " " + join(args, " "));
    sub.arrays.push_back(a);
  }
  const std::size_t accepted = sub.arrays.back().offset + sub.arrays.back().count;
  if (accepted < pending.size()) {
    log::warn("batch: Slurm accepted only {} of {} scans; submit again later for the rest",
              accepted, pending.size());
    tasks["tasks"].erase(tasks["tasks"].begin() + static_cast<std::ptrdiff_t>(accepted),
                         tasks["tasks"].end());
    sub.submitted = accepted;
  }
  sub.run_id = store.begin_run(make_run_info(o, inputs, static_cast<int>(sub.submitted),
                                             options.threads));
  store.set_manifest(inputs.manifest);
  tasks["run_id"] = sub.run_id;
  write_text_atomic(p.tasks_json().string(), tasks.dump(1) + "\n");
  record("");
  const auto margs = merge_sbatch_args(slurm, p.dir.string(), sub.arrays);
  try {
    sub.merge_job_id = submit(slurm, margs, "merge job");
  } catch (const Error& e) {
    throw Error(e.code(),
                std::string(e.what()) + fmt::format(
                    ". The scans were submitted (job {}); when they have finished, run `lungvol "
                    "batch --slurm-merge -o {}`",
                    sub.arrays.front().job_id, p.dir.string()));
  }
  commands.push_back(slurm.sbatch + " " + join(margs, " "));
  record(sub.merge_job_id);
  return sub;
}

int run_task(const std::string& outdir, std::size_t index) {
  const Paths p(outdir);
  const json tasks = read_tasks(p);
  const ManifestEntry e = task_entry(tasks, index, p);
  BatchOptions o;
  o.outdir = tasks.at("outdir").get<std::string>();
  o.write_label_maps = tasks.at("write_label_maps").get<bool>();
  o.write_qc_images = tasks.at("write_qc_images").get<bool>();
  o.write_meshes = tasks.value("write_meshes", false);
  const Protocol protocol = submitted_protocol(tasks);
  log::info("batch task {}: {} {} ({})", index, e.subject_id, e.visit, e.full_path);
  warm_up_libraries();
  // The run id may not be in tasks.json yet (a task can start before sbatch has returned to
  // the controller); the merge sets it.
  const ScanOutcome out = analyze_scan(e, o, protocol, 0);
  json result = outcome_to_json(out, index);
  const char* job = std::getenv("SLURM_JOB_ID");
  result["slurm_job_id"] = job ? job : "";
  result["host"] = host_name();
  ensure_directory(p.result(index).parent_path().string());
  write_text_atomic(p.result(index).string(), result.dump() + "\n");
  if (out.record.status == "ok") {
    log::info("batch task {}: {} {} ok ({:.1f} s)", index, e.subject_id, e.visit,
              out.record.timing_s);
  } else {
    log::warn("batch task {}: {} {} failed (exit {}): {}", index, e.subject_id, e.visit,
              out.exit_code, out.record.error);
  }
  return out.exit_code;
}

BatchSummary merge_results(const std::string& outdir, double lock_wait_s) {
  const Paths p(outdir);
  const json tasks = read_tasks(p);
  DirectoryLock lock((p.dir / ".lock").string(), lock_wait_s);
  Store store((p.dir / "results.sqlite").string());
  return merge_locked(store, p, tasks);
}

Status read_status(const std::string& outdir, const SlurmOptions& slurm) {
  const Paths p(outdir);
  Status s;
  std::error_code ec;
  if (!fs::is_regular_file(p.submission_json(), ec)) {
    throw Error(ExitCode::kInput, fmt::format("no Slurm submission in '{}' ('{}' is missing)",
                                              p.dir.string(), p.submission_json().string()));
  }
  const json sub = read_json(p.submission_json(), "Slurm submission");
  const json tasks = read_tasks(p);
  s.submitted = true;
  s.run_id = sub.at("run_id").get<std::int64_t>();
  s.arrays = arrays_from_json(sub);
  s.merge_job_id = sub.value("merge_job_id", "");
  s.tasks = tasks.at("tasks").size();
  s.skipped = tasks.at("skipped").get<std::size_t>();
  s.merged = already_merged(p, s.run_id);
  Queue q;
  if (!s.merged) q = query_queue(slurm, s.arrays);
  s.queue_known = q.known || s.merged;
  if (q.others.count(s.merge_job_id)) s.merge_state = q.others.at(s.merge_job_id);
  for (std::size_t i = 0; i < s.tasks; ++i) {
    if (fs::is_regular_file(p.result(i), ec)) {
      std::string status;
      try {
        status = read_json(p.result(i), "Slurm task result").value("status", "");
      } catch (const Error&) {
        status = "unreadable";
      }
      ++(status == "ok" ? s.done : s.failed);
      continue;
    }
    if (!s.queue_known) {
      ++s.pending;
      continue;
    }
    const auto it = q.tasks.find(i);
    if (it == q.tasks.end()) {
      ++s.lost;
    } else if (it->second == "RUNNING" || it->second == "COMPLETING" ||
               it->second == "CONFIGURING") {
      ++s.running;
    } else {
      ++s.pending;
    }
  }
  return s;
}

std::string format_status(const Status& s, const std::string& outdir) {
  std::vector<std::string> ids;
  for (const auto& a : s.arrays) ids.push_back(a.job_id);
  std::string out = fmt::format(
      "{}: Slurm run {}, {} scan(s) submitted as job array {} ({} already done before)\n"
      "  done {}, failed {}, running {}, pending {}, ended without a result {}\n",
      outdir, s.run_id, s.tasks, join(ids, ", "), s.skipped, s.done, s.failed, s.running,
      s.pending, s.lost);
  if (!s.queue_known) out += "  (squeue not available: 'pending' includes running tasks)\n";
  if (s.merged) {
    out += "  merged into results.sqlite\n";
  } else if (!s.merge_state.empty()) {
    out += fmt::format("  merge job {}: {}\n", s.merge_job_id, s.merge_state);
  } else if (s.queue_known) {
    out += fmt::format("  not merged, and merge job {} is no longer queued: run `lungvol batch "
                       "--slurm-merge -o {}`\n",
                       s.merge_job_id.empty() ? "(none)" : s.merge_job_id, outdir);
  } else {
    out += "  not merged yet\n";
  }
  return out;
}

}  // namespace lungvol::batch::slurm
