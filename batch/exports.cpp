#include "batch/exports.hpp"

#include <filesystem>
#include <map>

#include "batch/qc.hpp"
#include "batch/review.hpp"
#include "core/fs.hpp"
#include "report/csv.hpp"

namespace lungvol::batch {
namespace {

std::map<std::pair<std::string, std::string>, ScanRecord> scans_by_key(Store& store) {
  std::map<std::pair<std::string, std::string>, ScanRecord> out;
  for (auto& s : store.scans()) out[{s.subject_id, s.visit}] = std::move(s);
  return out;
}

report::CsvField optional_field(const std::optional<double>& v) { return report::CsvField(v); }

// The stored registrations that describe the current scans: status ok, and both the follow-up's
// and the baseline's input identical to the scans stored now. Keyed by (subject, follow-up).
std::map<std::pair<std::string, std::string>, RegistrationRecord> current_registrations(
    Store& store, const std::map<std::pair<std::string, std::string>, ScanRecord>& scans) {
  std::map<std::pair<std::string, std::string>, RegistrationRecord> out;
  for (auto& r : store.registrations()) {
    if (r.status != "ok") continue;
    const auto f = scans.find({r.subject_id, r.visit});
    const auto b = scans.find({r.subject_id, r.baseline_visit});
    if (f == scans.end() || b == scans.end() || f->second.status != "ok" ||
        b->second.status != "ok" || f->second.input_sha256 != r.followup_input_sha256 ||
        b->second.input_sha256 != r.baseline_input_sha256) {
      continue;
    }
    out[{r.subject_id, r.visit}] = std::move(r);
  }
  return out;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& visits_wide_change_metrics() {
  // (column, registration metric of the `lungs` region); 0 at the baseline.
  static const std::vector<std::pair<std::string, std::string>> kMetrics = {
      {"resolved_fraction", "change_resolved_pct"},
      {"new_lesion_fraction", "change_new_pct"},
      {"progressed_fraction", "change_progressed_pct"},
      {"regressed_fraction", "change_regressed_pct"},
  };
  return kMetrics;
}

const std::vector<std::pair<std::string, std::string>>& visits_wide_metrics() {
  static const std::vector<std::pair<std::string, std::string>> kMetrics = {
      {"lung_ml", "volume_ml"}, {"lesion_pct", "lesion_pct"}, {"ggo_pct", "ggo_pct"},
      {"solid_pct", "solid_pct"}, {"mean_hu", "mean_hu"},     {"p15_hu", "p15_hu"},
      {"laa950_pct", "laa950_pct"}, {"haa_pct", "haa_pct"},   {"mass_g", "mass_g"},
  };
  return kMetrics;
}

void write_cohort_measurements_csv(Store& store, const std::string& path) {
  const auto manifest = store.manifest();
  const auto scans = scans_by_key(store);
  write_stream_atomic(path, [&](std::ostream& out) {
    report::CsvWriter w(out);
    w.row({"subject_id", "arm", "visit", "visit_day", "site", "population",
           "series_instance_uid", "input_sha256", "protocol", "protocol_version",
           "protocol_sha256", "software_version", "analyzed_at", "region", "metric", "value",
           "unit"});
    const auto regs = current_registrations(store, scans);
    for (const auto& e : manifest) {
      const auto it = scans.find({e.subject_id, e.visit});
      if (it == scans.end() || it->second.status != "ok") continue;
      const ScanRecord& s = it->second;
      for (const auto& m : store.measurements(s.scan_id)) {
        w.row({e.subject_id, e.arm, e.visit, optional_field(s.days_from_baseline), e.site,
               e.population, s.series_uid, s.input_sha256, s.protocol_name, s.protocol_version,
               s.protocol_sha256, s.software_version, s.analyzed_at, m.region, m.metric,
               optional_field(m.value), m.unit});
      }
      // The follow-up's registration to its baseline: change map volumes, inspiration, mask
      // consistency (docs/outputs.md, "Registration"), with the registration's software and time.
      const auto r = regs.find({e.subject_id, e.visit});
      if (r == regs.end()) continue;
      for (const auto& m : store.registration_measurements(e.subject_id, e.visit)) {
        w.row({e.subject_id, e.arm, e.visit, optional_field(s.days_from_baseline), e.site,
               e.population, s.series_uid, s.input_sha256, s.protocol_name, s.protocol_version,
               s.protocol_sha256, r->second.software_version, r->second.registered_at, m.region,
               m.metric, optional_field(m.value), m.unit});
      }
    }
  });
}

report::CsvTable visits_wide_table(Store& store) {
  const auto manifest = store.manifest();
  const auto scans = scans_by_key(store);
  const auto& metrics = visits_wide_metrics();
  std::map<std::pair<std::string, std::string>, std::string> flags;
  for (const auto& f : store.identity_flags()) {
    auto& s = flags[{f.subject_id, f.visit}];
    s += (s.empty() ? "" : ";") + f.flag;
  }
  const auto qc = compute_qc(store, visit_order(store));
  const ReviewStatus review = review_status(store);
  report::CsvTable t;
  t.source = store.path();
  t.header = {"subject_id", "arm", "visit", "visit_day", "in_window", "status"};
  for (const auto& [column, metric] : metrics) t.header.push_back(column);
  // Densitometry compares visits only when the HU scale held: the air calibration check.
  t.header.push_back("calibration");
  t.header.push_back("identity_flags");
  // QC (docs/outputs.md): the score, the flag codes, the reader's decision.
  t.header.push_back("qc_score");
  t.header.push_back("qc_flags");
  t.header.push_back("review");
  // Registration to the baseline (docs/batch.md, "Registration"): change fractions (0 at the
  // baseline), volume-adjusted densitometry (the raw value at the baseline), flags.
  for (const auto& [column, metric] : visits_wide_change_metrics()) t.header.push_back(column);
  t.header.push_back("p15_adj_hu");
  t.header.push_back("mean_adj_hu");
  t.header.push_back("inspiration");
  t.header.push_back("registration");
  t.header.push_back("mask_consistency");
  const auto regs = current_registrations(store, scans);
  std::map<std::string, std::string> baseline_of;  // subjects with a current registration
  for (const auto& [key, r] : regs) baseline_of[key.first] = r.baseline_visit;
  std::map<std::pair<std::string, std::string>, std::string> registration_status;
  for (const auto& r : store.registrations()) registration_status[{r.subject_id, r.visit}] = r.status;
  std::map<std::pair<std::string, std::string>, bool> mask_flag;  // by target visit
  for (const auto& c : store.lung_mask_consistency()) {
    mask_flag[{c.subject_id, c.target_visit}] = mask_flag[{c.subject_id, c.target_visit}] || c.flagged;
  }
  const std::size_t n_change = visits_wide_change_metrics().size();
  const auto add_registration_cells = [&](std::vector<std::string>& row, const ManifestEntry& e,
                                          const ScanRecord* s,
                                          const std::map<std::string, std::optional<double>>& lungs) {
    const auto r = regs.find({e.subject_id, e.visit});
    const auto b = baseline_of.find(e.subject_id);
    const bool is_baseline = s && s->status == "ok" && b != baseline_of.end() && b->second == e.visit;
    const auto value = [](const std::optional<double>& v) { return report::CsvField(v).text(); };
    if (r != regs.end()) {
      std::map<std::string, std::optional<double>> m;
      for (const auto& x : store.registration_measurements(e.subject_id, e.visit)) {
        if (x.region == "lungs") m[x.metric] = x.value;
      }
      for (const auto& [column, metric] : visits_wide_change_metrics()) row.push_back(value(m[metric]));
      row.push_back(value(m["p15_adj_hu"]));
      row.push_back(value(m["mean_adj_hu"]));
      row.emplace_back(r->second.inspiration_flagged ? "flagged" : "ok");
      row.emplace_back("ok");
    } else if (is_baseline) {
      for (std::size_t i = 0; i < n_change; ++i) row.emplace_back("0");
      const auto p15 = lungs.find("p15_hu"), mean = lungs.find("mean_hu");
      row.push_back(p15 == lungs.end() ? "" : value(p15->second));
      row.push_back(mean == lungs.end() ? "" : value(mean->second));
      row.emplace_back("");
      row.emplace_back("baseline");
    } else {
      for (std::size_t i = 0; i < n_change + 3; ++i) row.emplace_back("");
      const auto st = registration_status.find({e.subject_id, e.visit});
      row.emplace_back(s && s->status == "ok" && st != registration_status.end() && st->second == "failed"
                           ? "failed"
                           : "");
    }
    const auto f = mask_flag.find({e.subject_id, e.visit});
    row.emplace_back(f == mask_flag.end() || !(s && s->status == "ok") ? "" : f->second ? "flagged" : "ok");
  };
  const auto text = [](const report::CsvField& f) { return f.text(); };
  for (const auto& e : manifest) {
    std::vector<std::string> row = {e.subject_id, e.arm, e.visit};
    const auto it = scans.find({e.subject_id, e.visit});
    if (it == scans.end()) {
      row.insert(row.end(), {text(optional_field(e.visit_day)), "", ""});
      for (std::size_t i = 0; i < metrics.size(); ++i) row.emplace_back("");
      for (int i = 0; i < 5; ++i) row.emplace_back("");
      add_registration_cells(row, e, nullptr, {});
      t.rows.push_back(std::move(row));
      continue;
    }
    const ScanReview* decision = review.find(e.subject_id, e.visit);
    const bool excluded = decision && decision->decision && decision->decision->decision == "excluded";
    const ScanRecord& s = it->second;
    row.push_back(text(optional_field(s.days_from_baseline)));
    row.emplace_back(s.in_window ? (*s.in_window ? "1" : "0") : "");
    // An excluded scan is missing for the endpoints (LOCF in mITT, absent in PP).
    row.emplace_back(excluded ? std::string("excluded") : s.status);
    std::map<std::string, std::optional<double>> lungs;
    if (s.status == "ok") {
      for (const auto& m : store.measurements(s.scan_id)) {
        if (m.region == "lungs") lungs[m.metric] = m.value;
      }
    }
    for (const auto& [column, metric] : metrics) {
      const auto v = lungs.find(metric);
      row.push_back(text(optional_field(v == lungs.end() ? std::nullopt : v->second)));
    }
    const bool flagged = s.warnings.find("calibration: ") != std::string::npos &&
                         s.warnings.find("_out_of_tolerance") != std::string::npos;
    row.emplace_back(s.status != "ok" ? "" : flagged ? "flagged" : "ok");
    const auto f = flags.find({e.subject_id, e.visit});
    row.emplace_back(s.status != "ok" || f == flags.end() ? "" : f->second);
    const auto q = qc.find({e.subject_id, e.visit});
    row.emplace_back(q == qc.end() ? std::string() : std::to_string(q->second.score));
    row.emplace_back(q == qc.end() ? std::string() : pipeline::flag_codes(q->second.flags));
    std::string decided;
    if (decision && decision->decision) {
      decided = decision->decision->decision;
      if (decision->state != DecisionState::kValid) {
        decided += std::string(" (") + decision_state_name(decision->state) + ")";
      }
    }
    row.emplace_back(decided);
    add_registration_cells(row, e, &s, lungs);
    t.rows.push_back(std::move(row));
  }
  return t;
}

void write_visits_wide_csv(Store& store, const std::string& path) {
  report::write_csv(path, visits_wide_table(store));
}

trial::VisitTable batch_visit_table(Store& store) {
  return trial::parse_visit_table(report::to_csv(visits_wide_table(store)), store.path());
}

void write_failures_csv(Store& store, const std::string& path) {
  const auto codes = store.failure_exit_codes();
  std::map<std::pair<std::string, std::string>, ScanRecord> scans;
  for (auto& s : store.scans()) scans[{s.subject_id, s.visit}] = std::move(s);
  write_stream_atomic(path, [&](std::ostream& out) {
    report::CsvWriter w(out);
    w.row({"subject_id", "arm", "visit", "path", "exit_code", "error", "failed_at"});
    for (const auto& e : store.manifest()) {
      const auto it = scans.find({e.subject_id, e.visit});
      if (it == scans.end() || it->second.status != "failed") continue;
      const auto code = codes.find({e.subject_id, e.visit});
      w.row({e.subject_id, e.arm, e.visit, it->second.path,
             code == codes.end() ? report::CsvField(std::optional<double>())
                                 : report::CsvField(std::optional<double>(code->second)),
             it->second.error, it->second.analyzed_at});
    }
  });
}

void refresh_batch_tables(Store& store, const trial::VisitSchedule& schedule,
                          const std::string& outdir) {
  store.update_timing(schedule);
  store.update_identity_flags(schedule);
  update_qc_flags(store, visit_order(schedule));
  write_failures_csv(store, (std::filesystem::path(outdir) / "failures.csv").string());
  write_cohort_measurements_csv(store, (std::filesystem::path(outdir) / "measurements.csv").string());
  write_visits_wide_csv(store, (std::filesystem::path(outdir) / "visits_wide.csv").string());
  store.record_results_state();
}

}  // namespace lungvol::batch
