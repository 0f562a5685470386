#include "batch/qc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/fs.hpp"

namespace lungvol::batch {

std::vector<std::string> visit_order(const trial::VisitSchedule& schedule) {
  std::vector<std::string> out;
  for (const auto& v : schedule.visits) out.push_back(v.name);
  return out;
}

std::vector<std::string> visit_order(Store& store) {
  const auto run = store.latest_run();
  if (run && !run->schedule_toml.empty()) {
    try {
      return visit_order(trial::parse_visit_schedule(run->schedule_toml, "results.sqlite runs.schedule_toml"));
    } catch (const std::exception&) {
    }
  }
  return visit_order(trial::default_visit_schedule());
}

std::vector<pipeline::QcFlag> own_flags(const ScanRecord& scan) {
  if (!scan.flags.empty()) {
    try {
      return pipeline::flags_from_json(nlohmann::json::parse(scan.flags));
    } catch (const std::exception&) {
      return {pipeline::make_flag("input_warning", std::nullopt, "",
                                  "the stored QC flags of this scan cannot be read")};
    }
  }
  if (scan.status != "ok" || scan.outdir.empty()) return {};
  const std::filesystem::path file = std::filesystem::path(scan.outdir) / "metrics.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return {};
  try {
    const nlohmann::json j = nlohmann::json::parse(read_text_file(file.string()));
    if (j.value("analyzed_at", std::string()) != scan.analyzed_at) return {};  // another run's
    return pipeline::scan_flags(j);
  } catch (const std::exception&) {
    return {};
  }
}

std::map<QcKey, ScanQc> compute_qc(Store& store, const std::vector<std::string>& order,
                                   const QcOptions& o) {
  std::map<QcKey, ScanRecord> scans;
  for (auto& s : store.scans()) scans[{s.subject_id, s.visit}] = std::move(s);
  std::map<std::string, std::string> excluded;  // subject|visit -> reason, not "measured"
  for (const auto& r : store.reviews()) {
    if (r.decision == "excluded") excluded[r.subject_id + "\n" + r.visit] = r.reason;
  }
  const auto exit_codes = store.failure_exit_codes();
  std::map<QcKey, std::vector<std::string>> identity;
  for (const auto& f : store.identity_flags()) {
    identity[{f.subject_id, f.visit}].push_back(f.flag + ": " + f.detail);
  }
  // The registration step's lung-mask consistency (docs/batch.md, "Registration"): a visit's own
  // lung mask against the baseline's (and the best-aerated visit's) carried into it. A row counts
  // when it describes the scans stored now: each of its visits other than the baseline has an ok
  // registration whose baseline and follow-up inputs are those of the stored scans.
  std::map<QcKey, RegistrationRecord> registrations;
  for (auto& r : store.registrations()) registrations[{r.subject_id, r.visit}] = std::move(r);
  const auto registration_current = [&](const std::string& subject, const std::string& visit) {
    const auto r = registrations.find({subject, visit});
    if (r == registrations.end() || r->second.status != "ok") return false;
    const auto f = scans.find({subject, visit});
    const auto b = scans.find({subject, r->second.baseline_visit});
    return f != scans.end() && b != scans.end() && f->second.status == "ok" &&
           b->second.status == "ok" && f->second.input_sha256 == r->second.followup_input_sha256 &&
           b->second.input_sha256 == r->second.baseline_input_sha256;
  };
  std::map<std::string, std::string> baseline_of;  // subject -> its registrations' baseline
  for (const auto& r : store.registration_subjects()) baseline_of[r.subject_id] = r.baseline_visit;
  std::map<QcKey, std::vector<ConsistencyRecord>> disagreements;  // by target visit
  for (auto& c : store.lung_mask_consistency()) {
    const auto b = baseline_of.find(c.subject_id);
    if (!c.flagged || b == baseline_of.end()) continue;
    if (c.target_visit != b->second && !registration_current(c.subject_id, c.target_visit)) continue;
    if (c.source_visit != b->second && !registration_current(c.subject_id, c.source_visit)) continue;
    disagreements[{c.subject_id, c.target_visit}].push_back(std::move(c));
  }
  // Subjects in manifest order, visits in schedule order.
  std::vector<std::string> subjects;
  std::map<std::string, std::vector<std::string>> visits_of;
  for (const auto& e : store.manifest()) {
    if (!visits_of.count(e.subject_id)) subjects.push_back(e.subject_id);
    visits_of[e.subject_id].push_back(e.visit);
  }
  const auto rank = [&](const std::string& v) {
    const auto it = std::find(order.begin(), order.end(), v);
    return it == order.end() ? order.size() : static_cast<std::size_t>(it - order.begin());
  };
  std::map<QcKey, ScanQc> out;
  for (const auto& subject : subjects) {
    auto visits = visits_of[subject];
    std::stable_sort(visits.begin(), visits.end(),
                     [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
    const ScanRecord* previous = nullptr;
    std::map<std::string, double> prev_lungs;
    for (const auto& visit : visits) {
      const auto it = scans.find({subject, visit});
      if (it == scans.end()) continue;
      const ScanRecord& s = it->second;
      ScanQc& q = out[{subject, visit}];
      if (s.status != "ok") {
        const auto code = exit_codes.find({subject, visit});
        const int rc = code == exit_codes.end() ? 0 : code->second;
        q.flags.push_back(pipeline::make_flag("scan_failed", rc ? std::optional<double>(rc) : std::nullopt,
                                              "exit code",
                                              fmt::format("failed (exit {}): {}", rc, s.error)));
        q.score = pipeline::qc_score(q.flags);
        continue;
      }
      for (auto& f : own_flags(s)) pipeline::add_flag(q.flags, std::move(f));
      if (const auto id = identity.find({subject, visit}); id != identity.end()) {
        std::string msg;
        for (const auto& m : id->second) msg += (msg.empty() ? "" : "; ") + m;
        pipeline::add_flag(q.flags, pipeline::make_flag("identity", static_cast<double>(id->second.size()),
                                                        "findings", msg));
      }
      std::map<std::string, double> lungs;
      for (const auto& m : store.measurements(s.scan_id)) {
        if (m.region == "lungs" && m.value) lungs[m.metric] = *m.value;
      }
      if (!order.empty() && visit == order.front() && lungs.count("lesion_pct") &&
          lungs["lesion_pct"] < o.min_baseline_lesion_pct) {
        pipeline::add_flag(q.flags, pipeline::make_flag(
                                        "low_baseline_lesion", lungs["lesion_pct"], "%",
                                        fmt::format("baseline lesion {:.2f} % of lung is below {:g} %: "
                                                    "relative changes are unstable",
                                                    lungs["lesion_pct"], o.min_baseline_lesion_pct)));
      }
      const bool usable = !excluded.count(subject + "\n" + visit);
      if (previous && prev_lungs.count("volume_ml") && lungs.count("volume_ml")) {
        const double v0 = prev_lungs["volume_ml"], v1 = lungs["volume_ml"];
        const double dv = v0 > 0 ? 100.0 * (v1 - v0) / v0 : NAN;
        const bool has_mass = prev_lungs.count("mass_g") && lungs.count("mass_g") && prev_lungs["mass_g"] > 0;
        const double dm = has_mass ? 100.0 * (lungs["mass_g"] - prev_lungs["mass_g"]) / prev_lungs["mass_g"] : NAN;
        const bool jump = !std::isfinite(dv) || std::abs(dv) > o.lung_change_pct;
        const bool inspiration = std::isfinite(dm) && std::abs(dm) <= o.inspiration_mass_pct;
        if (jump && !inspiration) {
          pipeline::add_flag(
              q.flags,
              pipeline::make_flag(
                  "lung_volume_jump", dv, "%",
                  fmt::format("lung volume {:.0f} mL at {} -> {:.0f} mL ({:+.1f} %, limit {:g} %) "
                              "with the lung tissue mass changing {:+.1f} % (more than the {:g} % "
                              "inspiration explains)",
                              v0, previous->visit, v1, dv, o.lung_change_pct, dm,
                              o.inspiration_mass_pct)));
        }
      }
      // The next visit is compared with this one unless the reader excluded it.
      if (usable) {
        previous = &s;
        prev_lungs = lungs;
      }
      // The segmentation's agreement across visits (issue 17): raised from the registration
      // step's lung-mask consistency; value: the lowest Dice of the flagged comparisons.
      if (const auto d = disagreements.find({subject, visit}); d != disagreements.end()) {
        double dice = 1;
        std::string msg;
        for (const auto& c : d->second) {
          dice = std::min(dice, c.dice);
          msg += fmt::format("{}the lung mask of {} ({}) carried into this scan disagrees with its "
                             "own (Dice {:.3f}, {:.1f} mL of dense tissue left out){}",
                             msg.empty() ? "" : "; ", c.source_visit, c.source_role, c.dice,
                             c.missed_dense_ml, c.reason.empty() ? "" : ": " + c.reason);
        }
        pipeline::add_flag(q.flags,
                           pipeline::make_flag("segmentation_disagreement", dice, "Dice", msg));
      }
      pipeline::sort_flags(q.flags);
      q.score = pipeline::qc_score(q.flags);
    }
  }
  return out;
}

void update_qc_flags(Store& store, const std::vector<std::string>& order) {
  std::vector<StoredFlag> rows;
  for (const auto& [key, q] : compute_qc(store, order)) {
    for (const auto& f : q.flags) {
      rows.push_back(StoredFlag{key.first, key.second, f.code, f.cause, f.severity, f.value, f.unit,
                                f.message});
    }
  }
  store.replace_qc_flags(rows);
}

}  // namespace lungvol::batch
