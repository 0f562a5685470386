#include "batch/registrations.hpp"

#include <omp.h>

#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "core/version.hpp"
#include "io/image_io.hpp"
#include "registration/transform_io.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {

registration::FollowupSettings registration_settings(const Protocol& protocol, bool write_qc_images) {
  registration::FollowupSettings s;
  s.consistency.dense_low_hu = protocol.lesion.low_hu();
  s.consistency.dense_high_hu = protocol.lesion.high_hu();
  s.write_qc_images = write_qc_images;
  return s;
}

registration::VisitScan visit_scan(Store& store, const ScanRecord& scan) {
  registration::VisitScan v;
  v.visit = scan.visit;
  v.input_path = scan.path;
  v.series_uid = scan.series_uid;
  v.input_sha256 = scan.input_sha256;
  v.protocol_sha256 = scan.protocol_sha256;
  v.software_version = scan.software_version;
  v.scan_dir = scan.outdir;
  for (const auto& m : store.measurements(scan.scan_id)) {
    if (m.region != "lungs" && m.region != "right" && m.region != "left") continue;
    auto& r = v.regions[m.region];
    const double val = m.value ? *m.value : std::nan("");
    if (m.metric == "volume_ml") r.volume_ml = val;
    if (m.metric == "mean_hu") r.mean_hu = val;
    if (m.metric == "p15_hu") r.p15_hu = val;
    if (m.region == "lungs" && m.metric == "lesion_pct") v.lesion_pct = val;
  }
  return v;
}

std::vector<SubjectPlan> plan_registrations(Store& store, const trial::VisitSchedule& schedule,
                                            const std::string& outdir,
                                            const registration::FollowupSettings& settings,
                                            bool force, bool prune) {
  const std::string baseline = schedule.baseline().name;
  std::map<std::string, std::map<std::string, ScanRecord>> by_subject;  // ok scans
  for (auto& s : store.scans()) {
    if (s.status == "ok") by_subject[s.subject_id][s.visit] = std::move(s);
  }
  std::map<std::string, std::set<std::string>> manifest;  // subject -> visits
  for (const auto& e : store.manifest()) manifest[e.subject_id].insert(e.visit);
  std::vector<SubjectPlan> plans;
  std::set<std::pair<std::string, std::string>> current;  // (subject, follow-up) planned
  std::set<std::string> planned_subjects;
  for (const auto& [subject, visits] : manifest) {
    const auto sit = by_subject.find(subject);
    if (sit == by_subject.end() || !sit->second.count(baseline) || !visits.count(baseline)) continue;
    SubjectPlan plan;
    registration::SubjectJob& job = plan.job;
    job.subject_id = subject;
    job.settings = settings;
    job.outdir = (fs::path(outdir) / "registrations" / subject).string();
    job.baseline = visit_scan(store, sit->second.at(baseline));
    for (const auto& sv : schedule.visits) {  // schedule order
      if (sv.name == baseline || !visits.count(sv.name)) continue;
      const auto vit = sit->second.find(sv.name);
      if (vit == sit->second.end()) continue;
      job.followups.push_back(visit_scan(store, vit->second));
    }
    if (job.followups.empty()) continue;
    for (const auto& f : job.followups) {
      current.insert({subject, f.visit});
      const auto prior = store.find_registration(subject, f.visit);
      const std::string key = registration::registration_key(job.baseline, f, settings);
      if (force || !prior || prior->status != "ok" || prior->key != key) {
        job.to_register.push_back(f.visit);
      }
    }
    const auto prior_subject = store.find_registration_subject(subject);
    const std::string skey = registration::subject_key(job.baseline, job.followups, settings);
    plan.needed = !job.to_register.empty() || !prior_subject || prior_subject->subject_key != skey ||
                  prior_subject->status != "ok";
    planned_subjects.insert(subject);
    plans.push_back(std::move(plan));
  }
  if (!prune) return plans;
  // Registrations that no longer describe the manifest's analyzed scans are removed (their
  // folders too): a follow-up now failed or gone, a subject without an analyzed baseline.
  for (const auto& r : store.registrations()) {
    if (!manifest.count(r.subject_id)) continue;  // not in this manifest: kept, not reported
    if (current.count({r.subject_id, r.visit})) continue;
    store.delete_registration(r.subject_id, r.visit);
    std::error_code ec;
    if (!r.outdir.empty() && fs::is_directory(r.outdir, ec)) {
      bool ours = true;
      for (const auto& entry : fs::directory_iterator(r.outdir, ec)) {
        ours = ours && registration::registration_file_is_replaceable(entry.path().filename().string());
      }
      if (ours) fs::remove_all(r.outdir, ec);
    }
  }
  for (const auto& s : store.registration_subjects()) {
    if (manifest.count(s.subject_id) && !planned_subjects.count(s.subject_id)) {
      store.delete_registration_subject(s.subject_id);
    }
  }
  return plans;
}

void store_subject_outcome(Store& store, const registration::SubjectJob& job,
                           const registration::SubjectOutcome& o, std::int64_t run_id,
                           RegistrationCounts* counts) {
  const std::string params_sha = sha256_hex(job.settings.params.text());
  for (const auto& f : o.followups) {
    const registration::VisitScan* fv = nullptr;
    for (const auto& v : job.followups) {
      if (v.visit == f.visit) fv = &v;
    }
    RegistrationRecord r;
    r.subject_id = job.subject_id;
    r.visit = f.visit;
    r.baseline_visit = job.baseline.visit;
    r.key = f.key;
    r.status = f.status;
    r.baseline_input_sha256 = job.baseline.input_sha256;
    r.followup_input_sha256 = fv ? fv->input_sha256 : "";
    r.parameters_sha256 = params_sha;
    r.software_version = kSoftwareVersion;
    r.registered_at = f.registered_at.empty() ? utc_timestamp() : f.registered_at;
    r.timing_s = f.seconds;
    r.outdir = f.outdir;
    r.run_id = run_id;
    r.inspiration_flagged = f.inspiration_flagged;
    r.consistency_flagged = f.consistency_flagged;
    r.error = f.error;
    r.record_json = f.status == "ok" ? f.record.dump() : "";
    std::vector<RegistrationMeasurementRow> rows;
    for (const auto& m : f.measurements) {
      rows.push_back({job.subject_id, f.visit, m.region, m.metric,
                      std::isfinite(m.value) ? std::optional<double>(m.value) : std::nullopt, m.unit});
    }
    store.save_registration(r, rows);
    if (counts) ++(f.status == "ok" ? counts->registered : counts->failed);
  }
  RegistrationSubjectRecord s;
  s.subject_id = job.subject_id;
  s.subject_key = o.subject_key;
  s.baseline_visit = job.baseline.visit;
  s.best_aerated_visit = o.best_aerated_visit;
  s.status = o.status;
  s.error = o.error;
  for (const auto& f : o.followups) {
    if (f.status != "ok" && s.status == "ok") {
      s.status = "failed";  // the cross-visit part lacks a follow-up: redone next time
      s.error = f.visit + ": " + f.error;
    }
  }
  s.updated_at = utc_timestamp();
  s.run_id = run_id;
  std::vector<ConsistencyRecord> rows;
  for (const auto& c : o.consistency) {
    ConsistencyRecord x;
    x.subject_id = job.subject_id;
    x.target_visit = c.target_visit;
    x.source_visit = c.source_visit;
    x.source_role = c.source_role;
    x.dice = c.agreement.dice;
    x.carried_ml = c.agreement.carried_ml;
    x.own_ml = c.agreement.own_ml;
    x.disagreement_ml = c.agreement.disagreement_ml;
    x.missed_dense_ml = c.agreement.missed_dense_ml;
    x.flagged = c.agreement.flagged;
    x.reason = c.agreement.reason;
    rows.push_back(std::move(x));
  }
  store.save_registration_subject(s, rows);
}

RegistrationCounts run_registrations(Store& store, const BatchInputs& inputs,
                                     const BatchOptions& options, int jobs, int threads_per_job,
                                     std::int64_t run_id) {
  RegistrationCounts counts;
  if (!options.register_followups) return counts;
  if (!options.write_label_maps) {
    log::warn("batch: follow-ups are not registered: registration needs the label maps, and this "
              "batch runs with --no-label-maps");
    return counts;
  }
  const auto settings = registration_settings(inputs.protocol, options.write_qc_images);
  std::vector<SubjectPlan> plans =
      plan_registrations(store, inputs.schedule, options.outdir, settings, options.force);
  std::vector<const SubjectPlan*> todo;
  for (const auto& p : plans) {
    if (p.needed) {
      todo.push_back(&p);
    } else {
      counts.skipped += p.job.followups.size();
    }
  }
  counts.subjects = plans.size();
  if (todo.empty()) {
    if (!plans.empty()) log::info("batch: registrations: all {} subject(s) already done", plans.size());
    return counts;
  }
  std::size_t followups = 0;
  for (const auto* p : todo) followups += p->job.to_register.size();
  log::info("batch: registering {} follow-up(s) of {} subject(s) to their baseline", followups,
            todo.size());
  registration::register_transform_io();
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::exception_ptr fatal;
  const int workers = std::max(1, std::min<int>(jobs, static_cast<int>(todo.size())));
  auto worker = [&] {
    omp_set_num_threads(threads_per_job);
    while (true) {
      {
        std::lock_guard<std::mutex> l(mutex);
        if (fatal) return;
      }
      const std::size_t i = next++;
      if (i >= todo.size() || interrupt_requested()) return;
      try {
        const auto& job = todo[i]->job;
        const registration::SubjectOutcome o = registration::run_subject(job);
        std::lock_guard<std::mutex> l(mutex);
        store_subject_outcome(store, job, o, run_id, &counts);
      } catch (...) {
        std::lock_guard<std::mutex> l(mutex);
        if (!fatal) fatal = std::current_exception();
      }
    }
  };
  if (workers <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  if (fatal) std::rethrow_exception(fatal);
  throw_if_interrupted();
  for (const auto* p : todo) counts.skipped += p->job.followups.size() - p->job.to_register.size();
  return counts;
}

}  // namespace lungvol::batch
