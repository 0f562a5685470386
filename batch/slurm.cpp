// The Slurm executor's controller: submission, the array task, the merge and the status
// (batch/slurm.hpp). Files: slurm_files.cpp; running sbatch/squeue: slurm_commands.cpp.
#include "batch/slurm.hpp"

#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "batch/exports.hpp"
#include "batch/registrations.hpp"
#include "batch/slurm_internal.hpp"
#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "pipeline/analyze.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lungvol::batch::slurm {
namespace detail {

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

}  // namespace detail

using namespace detail;
namespace {


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
  store.save_protocol(protocol.sha256, protocol.name, protocol.version,
                      pipeline::protocol_text(protocol));
  refresh_batch_tables(store, schedule, p.dir.string());
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

}  // namespace

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
  const std::string binary = slurm.lungvol_binary.empty() ? this_executable() : slurm.lungvol_binary;
  // Every value that enters the generated job scripts or sbatch's arguments is checked here,
  // before anything is written (scripts quote them too: batch/slurm_commands.cpp).
  check_script_value("output folder", p.dir.string());
  check_script_value("lungvol executable", binary);
  check_script_value("--partition", slurm.partition);
  for (const auto& a : slurm.sbatch_args) check_script_value("--slurm-opt", a);
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
  settle_earlier_registrations(store, p, slurm);
  const std::vector<std::string> to_register = registration_candidates(inputs);

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
    store.save_protocol(inputs.protocol.sha256, inputs.protocol.name, inputs.protocol.version,
                        inputs.protocol_toml);
    refresh_batch_tables(store, inputs.schedule, p.dir.string());
    RunCounts counts;
    counts.total = sub.total;
    counts.skipped = sub.skipped;
    store.finish_run(sub.run_id, counts);
    // The scans are done, but a registration may not be (a new follow-up of a subject whose
    // scans were all done earlier, a failed one, new parameters): only those subjects go.
    if (!to_register.empty()) {
      const auto settings = registration_settings(inputs.protocol, options.write_qc_images);
      std::vector<std::string> needed;
      for (const auto& plan :
           plan_registrations(store, inputs.schedule, p.dir.string(), settings, options.force)) {
        if (plan.needed) needed.push_back(plan.job.subject_id);
      }
      if (!needed.empty()) {
        submit_registrations(o, inputs, slurm, binary, needed, "", &sub);
      }
    }
    sub.finished = sub.registration_job_id.empty();
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
  store.save_protocol(inputs.protocol.sha256, inputs.protocol.name, inputs.protocol.version,
                      inputs.protocol_toml);
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
  if (!to_register.empty()) {
    submit_registrations(o, inputs, slurm, binary, to_register, sub.merge_job_id, &sub);
  }
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
  // SIGTERM (time limit, scancel): the scan stops at its next stage and leaves no folder; the
  // task ends without a result, which the merge stores as a failure naming the log.
  InterruptHandler on_interrupt("lungvol batch task: interrupted; the scan is not stored\n");
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
  read_registration_status(p, &s);
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
  if (!s.registration_job_id.empty()) {
    out += fmt::format("  registrations: {} subject(s) as job array {}, {} finished; {}\n",
                       s.registration_tasks, s.registration_job_id, s.registration_done,
                       s.registrations_merged ? "stored in results.sqlite" : "not stored yet");
  }
  return out;
}

}  // namespace lungvol::batch::slurm
