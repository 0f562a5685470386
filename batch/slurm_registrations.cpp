// The Slurm executor's registration step (batch/slurm.hpp): one array task per subject, after the
// scans' merge job, registering that subject's follow-ups with the local batch's planning and
// registration code (batch/registrations.hpp), and a merge job that stores the outcomes. Tasks
// never write results.sqlite (they open it read-only): the merge does, under OUTDIR/.lock.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "batch/exports.hpp"
#include "batch/registrations.hpp"
#include "batch/slurm.hpp"
#include "batch/slurm_internal.hpp"
#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "registration/transform_io.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lungvol::batch::slurm {
using namespace detail;
namespace {

// JSON has no NaN: a value the registration could not compute is stored as null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_from(const json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

json outcome_json(const registration::SubjectOutcome& o) {
  json followups = json::array();
  for (const auto& f : o.followups) {
    json ms = json::array();
    for (const auto& m : f.measurements) {
      ms.push_back(json{{"region", m.region},
                        {"metric", m.metric},
                        {"value", number(m.value)},
                        {"unit", m.unit}});
    }
    followups.push_back(json{{"visit", f.visit},
                             {"status", f.status},
                             {"error", f.error},
                             {"exit_code", f.exit_code},
                             {"key", f.key},
                             {"registered_at", f.registered_at},
                             {"outdir", f.outdir},
                             {"seconds", f.seconds},
                             {"inspiration_flagged", f.inspiration_flagged},
                             {"consistency_flagged", f.consistency_flagged},
                             {"record", f.record},
                             {"measurements", ms}});
  }
  json consistency = json::array();
  for (const auto& c : o.consistency) {
    const auto& a = c.agreement;
    consistency.push_back(json{{"target_visit", c.target_visit},
                               {"source_visit", c.source_visit},
                               {"source_role", c.source_role},
                               {"dice", number(a.dice)},
                               {"carried_ml", number(a.carried_ml)},
                               {"own_ml", number(a.own_ml)},
                               {"disagreement_ml", number(a.disagreement_ml)},
                               {"missed_dense_ml", number(a.missed_dense_ml)},
                               {"flagged", a.flagged},
                               {"reason", a.reason}});
  }
  return json{{"subject_id", o.subject_id},
              {"subject_key", o.subject_key},
              {"best_aerated_visit", o.best_aerated_visit},
              {"status", o.status},
              {"error", o.error},
              {"followups", followups},
              {"consistency", consistency}};
}

registration::SubjectOutcome outcome_from(const json& j) {
  registration::SubjectOutcome o;
  o.subject_id = j.at("subject_id").get<std::string>();
  o.subject_key = j.at("subject_key").get<std::string>();
  o.best_aerated_visit = j.at("best_aerated_visit").get<std::string>();
  o.status = j.at("status").get<std::string>();
  o.error = j.at("error").get<std::string>();
  for (const auto& x : j.at("followups")) {
    registration::FollowupOutcome f;
    f.visit = x.at("visit").get<std::string>();
    f.status = x.at("status").get<std::string>();
    f.error = x.at("error").get<std::string>();
    f.exit_code = x.at("exit_code").get<int>();
    f.key = x.at("key").get<std::string>();
    f.registered_at = x.at("registered_at").get<std::string>();
    f.outdir = x.at("outdir").get<std::string>();
    f.seconds = x.at("seconds").get<double>();
    f.inspiration_flagged = x.at("inspiration_flagged").get<bool>();
    f.consistency_flagged = x.at("consistency_flagged").get<bool>();
    f.record = x.at("record");
    for (const auto& m : x.at("measurements")) {
      f.measurements.push_back({m.at("region").get<std::string>(),
                                m.at("metric").get<std::string>(), number_from(m.at("value")),
                                m.at("unit").get<std::string>()});
    }
    o.followups.push_back(std::move(f));
  }
  for (const auto& x : j.at("consistency")) {
    registration::ConsistencyRow c;
    c.target_visit = x.at("target_visit").get<std::string>();
    c.source_visit = x.at("source_visit").get<std::string>();
    c.source_role = x.at("source_role").get<std::string>();
    c.agreement.source_visit = c.source_visit;
    c.agreement.target_visit = c.target_visit;
    c.agreement.dice = number_from(x.at("dice"));
    c.agreement.carried_ml = number_from(x.at("carried_ml"));
    c.agreement.own_ml = number_from(x.at("own_ml"));
    c.agreement.disagreement_ml = number_from(x.at("disagreement_ml"));
    c.agreement.missed_dense_ml = number_from(x.at("missed_dense_ml"));
    c.agreement.flagged = x.at("flagged").get<bool>();
    c.agreement.reason = x.at("reason").get<std::string>();
    o.consistency.push_back(std::move(c));
  }
  return o;
}

json read_registrations(const Paths& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p.registrations_json(), ec)) {
    throw Error(ExitCode::kInput,
                fmt::format("no Slurm registration submission in '{}' ('{}' is missing)",
                            p.dir.string(), p.registrations_json().string()));
  }
  json j = read_json(p.registrations_json(), "Slurm registration list");
  if (j.value("format", "") != kRegistrationsFormat) {
    throw Error(ExitCode::kInput,
                fmt::format("'{}' is not a {} file", p.registrations_json().string(),
                            kRegistrationsFormat));
  }
  return j;
}

trial::VisitSchedule schedule_of(const json& j) {
  const std::string path = j.at("schedule").get<std::string>();
  return path.empty() ? trial::default_visit_schedule() : trial::load_visit_schedule(path);
}

std::string registration_log(const Paths& p, const json& regs, std::size_t i) {
  const std::string id = regs.value("array_job_id", "");
  if (id.empty()) return p.logs().string();
  return (p.logs() / fmt::format("register-{}_{}.log", id, i)).string();
}

bool registrations_merged(const Paths& p, const json& regs) {
  std::error_code ec;
  if (!fs::is_regular_file(p.registrations_merged_json(), ec)) return false;
  const json m = read_json(p.registrations_merged_json(), "Slurm registration merge record");
  return m.value("array_job_id", "") == regs.value("array_job_id", "") &&
         m.value("run_id", std::int64_t{0}) == regs.value("run_id", std::int64_t{0});
}

RegistrationMerge merge_registrations_locked(Store& store, const Paths& p, const json& regs) {
  RegistrationMerge m;
  const Protocol protocol = submitted_protocol(regs);
  const trial::VisitSchedule schedule = schedule_of(regs);
  const std::int64_t run_id = regs.at("run_id").get<std::int64_t>();
  const auto settings = registration_settings(protocol, regs.at("write_qc_images").get<bool>());
  // Planned without --force: the follow-ups still not registered are those a missing result
  // leaves undone. Pruning here keeps the store as the local batch leaves it.
  std::map<std::string, SubjectPlan> plans;
  for (auto& plan : plan_registrations(store, schedule, p.dir.string(), settings, false)) {
    plans.emplace(plan.job.subject_id, std::move(plan));
  }
  const json& subjects = regs.at("subjects");
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const std::string subject = subjects[i].get<std::string>();
    const auto pit = plans.find(subject);
    if (pit == plans.end()) continue;  // no analyzed baseline or follow-up: nothing registered
    const SubjectPlan& plan = pit->second;
    ++m.subjects;
    std::error_code ec;
    std::string problem;
    if (fs::is_regular_file(p.registration_result(i), ec)) {
      try {
        const json r = read_json(p.registration_result(i), "Slurm registration result");
        if (r.value("format", "") != kRegistrationResultFormat ||
            r.value("subject_id", "") != subject) {
          throw Error(ExitCode::kInput, "'" + p.registration_result(i).string() +
                                            "' is not the registration result of " + subject);
        }
        const std::string status = r.at("status").get<std::string>();
        if (status == "registered") {
          const registration::SubjectOutcome o = outcome_from(r.at("outcome"));
          RegistrationCounts counts;
          store_subject_outcome(store, plan.job, o, run_id, &counts);
          m.registered += counts.registered;
          m.failed += counts.failed;
          m.skipped += plan.job.followups.size() - o.followups.size();
          continue;
        }
        if (status == "skipped" && !plan.needed) {
          m.skipped += plan.job.followups.size();
          continue;
        }
        problem = fmt::format(
            "the Slurm registration task found nothing to do ('{}'), but the "
            "store says {} still needs registering; submit the batch again",
            status, subject);
      } catch (const std::exception& err) {
        problem = std::string("unusable Slurm registration result: ") + err.what();
      }
    } else if (!plan.needed) {
      m.skipped += plan.job.followups.size();
      continue;
    } else {
      problem = fmt::format(
          "the Slurm registration task ended without a result (crashed, cancelled, out of memory "
          "or time limit?); see {}",
          registration_log(p, regs, i));
    }
    // Stored as failed registrations, so the next submission registers them again.
    registration::SubjectOutcome o;
    o.subject_id = subject;
    o.status = "failed";
    o.error = problem;
    for (const auto& visit : plan.job.to_register) {
      registration::FollowupOutcome f;
      f.visit = visit;
      f.status = "failed";
      f.error = problem;
      f.exit_code = static_cast<int>(ExitCode::kProcessing);
      o.followups.push_back(std::move(f));
    }
    RegistrationCounts counts;
    store_subject_outcome(store, plan.job, o, run_id, &counts);
    m.failed += counts.failed;
    log::warn("batch: registration of {} failed: {}", subject, problem);
  }
  refresh_batch_tables(store, schedule, p.dir.string());
  write_text_atomic(p.registrations_merged_json().string(),
                    json{{"run_id", run_id},
                         {"array_job_id", regs.value("array_job_id", "")},
                         {"merged_at", utc_timestamp()},
                         {"subjects", m.subjects},
                         {"registered", m.registered},
                         {"failed", m.failed},
                         {"skipped", m.skipped}}
                            .dump(2) +
                        "\n");
  log::info("batch: merged the registrations of {} subject(s) into {}", m.subjects, store.path());
  return m;
}

}  // namespace

namespace detail {

std::vector<std::string> registration_candidates(const BatchInputs& inputs) {
  const std::string baseline = inputs.schedule.baseline().name;
  std::map<std::string, std::set<std::string>> visits;
  for (const auto& e : inputs.manifest.entries) visits[e.subject_id].insert(e.visit);
  std::vector<std::string> out;
  for (const auto& [subject, vs] : visits) {
    if (vs.count(baseline) && vs.size() > 1) out.push_back(subject);
  }
  return out;
}

void submit_registrations(const BatchOptions& options, const BatchInputs& inputs,
                          const SlurmOptions& slurm, const std::string& binary,
                          const std::vector<std::string>& subjects, const std::string& after_job_id,
                          Submission* sub) {
  if (!options.register_followups || subjects.empty()) return;
  if (!options.write_label_maps) {
    log::warn(
        "batch: follow-ups are not registered: registration needs the label maps, and this "
        "batch runs with --no-label-maps");
    return;
  }
  const Paths p(options.outdir);
  std::error_code ec;
  fs::remove_all(p.slurm / "registrations", ec);
  fs::remove(p.registrations_merged_json(), ec);
  ensure_directory(p.logs().string());
  json regs{{"format", kRegistrationsFormat},
            {"run_id", sub->run_id},
            {"outdir", p.dir.string()},
            {"protocol_path", inputs.protocol.source_path},
            {"protocol_sha256", inputs.protocol.sha256},
            {"schedule", options.schedule.empty() ? "" : fs::absolute(options.schedule).string()},
            {"write_qc_images", options.write_qc_images},
            {"force", options.force},
            {"after_job_id", after_job_id},
            {"array_job_id", ""},
            {"merge_job_id", ""},
            {"subjects", subjects}};
  write_text_atomic(p.registrations_json().string(), regs.dump(1) + "\n");
  write_text_atomic(p.registration_script().string(),
                    registration_task_script(binary, p.dir.string()));
  write_text_atomic(p.registration_merge_script().string(),
                    registration_merge_script(binary, p.dir.string()));
  try {
    const std::string array_id =
        submit(slurm,
               registration_sbatch_args(slurm, p.dir.string(), subjects.size(), options.threads,
                                        after_job_id),
               "registration job array");
    regs["array_job_id"] = array_id;
    write_text_atomic(p.registrations_json().string(), regs.dump(1) + "\n");
    sub->registration_job_id = array_id;
    sub->registration_subjects = subjects.size();
    const std::string merge_id =
        submit(slurm, registration_merge_sbatch_args(slurm, p.dir.string(), array_id),
               "registration merge job");
    regs["merge_job_id"] = merge_id;
    write_text_atomic(p.registrations_json().string(), regs.dump(1) + "\n");
    sub->registration_merge_job_id = merge_id;
  } catch (const Error& e) {
    if (sub->registration_job_id.empty()) {
      fs::remove(p.registrations_json(), ec);  // nothing was submitted
      log::warn(
          "batch: the registrations were not submitted ({}); once the scans are merged, "
          "run the same batch command again to register the follow-ups",
          e.what());
    } else {
      log::warn(
          "batch: the registration merge was not submitted ({}); when the registration "
          "tasks (job {}) have finished, run the same batch command again to store them",
          e.what(), sub->registration_job_id);
    }
  }
}

void settle_earlier_registrations(Store& store, const Paths& p, const SlurmOptions& slurm) {
  std::error_code ec;
  if (!fs::is_regular_file(p.registrations_json(), ec)) return;
  const json regs = read_registrations(p);
  const std::string array_id = regs.value("array_job_id", "");
  if (array_id.empty() || registrations_merged(p, regs)) return;
  const std::vector<ArrayJob> arrays{ArrayJob{array_id, 0, regs.at("subjects").size()}};
  const Queue q = query_queue(slurm, arrays);
  const std::string merge_id = regs.value("merge_job_id", "");
  if (!q.known) {
    throw Error(ExitCode::kOutput,
                fmt::format("cannot ask Slurm whether the earlier registration jobs on '{}' still "
                            "run ({}); when they have finished, run `lungvol batch "
                            "--slurm-register-merge -o {}` and submit again",
                            p.dir.string(), q.error, p.dir.string()));
  }
  const std::string after = regs.value("after_job_id", "");
  if (!q.tasks.empty() || q.others.count(array_id) ||
      (!merge_id.empty() && q.others.count(merge_id)) ||
      (!after.empty() && q.others.count(after))) {
    throw Error(ExitCode::kOutput,
                fmt::format("earlier Slurm registration jobs on '{}' are still queued or running "
                            "(jobs {}{}); wait for them, or scancel them before submitting again",
                            p.dir.string(), array_id, merge_id.empty() ? "" : ", " + merge_id));
  }
  log::info("batch: storing the results of the earlier Slurm registration jobs first");
  merge_registrations_locked(store, p, regs);
}

void read_registration_status(const Paths& p, Status* status) {
  std::error_code ec;
  if (!fs::is_regular_file(p.registrations_json(), ec)) return;
  const json regs = read_registrations(p);
  status->registration_job_id = regs.value("array_job_id", "");
  if (status->registration_job_id.empty()) return;
  status->registration_tasks = regs.at("subjects").size();
  for (std::size_t i = 0; i < status->registration_tasks; ++i) {
    if (fs::is_regular_file(p.registration_result(i), ec)) ++status->registration_done;
  }
  status->registrations_merged = registrations_merged(p, regs);
}

}  // namespace detail

int RegistrationMerge::exit_status() const {
  return failed > 0 ? static_cast<int>(ExitCode::kBatchFailures) : 0;
}

int run_registration_task(const std::string& outdir, std::size_t index) {
  const Paths p(outdir);
  const json regs = read_registrations(p);
  const json& subjects = regs.at("subjects");
  if (index >= subjects.size()) {
    throw Error(ExitCode::kUsage,
                fmt::format("registration task {} does not exist: '{}' lists {} subject(s)", index,
                            p.registrations_json().string(), subjects.size()));
  }
  const std::string subject = subjects[index].get<std::string>();
  const Protocol protocol = submitted_protocol(regs);
  const auto settings = registration_settings(protocol, regs.at("write_qc_images").get<bool>());
  json result{{"format", kRegistrationResultFormat}, {"index", index}, {"subject_id", subject}};
  const char* job = std::getenv("SLURM_JOB_ID");
  result["slurm_job_id"] = job ? job : "";
  result["host"] = host_name();
  int status = 0;
  {
    Store store((p.dir / "results.sqlite").string(), Store::Mode::kReadOnly);
    const auto plans = plan_registrations(store, schedule_of(regs), p.dir.string(), settings,
                                          regs.at("force").get<bool>(), /*prune=*/false);
    const SubjectPlan* plan = nullptr;
    for (const auto& x : plans) {
      if (x.job.subject_id == subject) plan = &x;
    }
    if (!plan) {
      log::info("batch registration task {}: {} has no analyzed baseline and follow-up", index,
                subject);
      result["status"] = "nothing";
    } else if (!plan->needed) {
      log::info("batch registration task {}: {} already registered", index, subject);
      result["status"] = "skipped";
    } else {
      log::info("batch registration task {}: registering {} follow-up(s) of {}", index,
                plan->job.to_register.size(), subject);
      warm_up_libraries();
      registration::register_transform_io();
      // SIGTERM: run_subject stops between follow-ups; the task ends without a result, which
      // the merge stores as failed registrations naming the log.
      InterruptHandler on_interrupt("lungvol registration task: interrupted; nothing is stored\n");
      const registration::SubjectOutcome o = registration::run_subject(plan->job);
      for (const auto& f : o.followups) {
        if (f.status != "ok") status = static_cast<int>(ExitCode::kBatchFailures);
      }
      result["status"] = "registered";
      result["outcome"] = outcome_json(o);
    }
  }
  ensure_directory(p.registration_result(index).parent_path().string());
  write_text_atomic(p.registration_result(index).string(), result.dump() + "\n");
  return status;
}

RegistrationMerge merge_registrations(const std::string& outdir, double lock_wait_s) {
  const Paths p(outdir);
  const json regs = read_registrations(p);
  DirectoryLock lock((p.dir / ".lock").string(), lock_wait_s);
  Store store((p.dir / "results.sqlite").string());
  return merge_registrations_locked(store, p, regs);
}

}  // namespace lungvol::batch::slurm
