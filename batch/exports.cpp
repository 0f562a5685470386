#include "batch/exports.hpp"

#include <map>

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

}  // namespace

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
    }
  });
}

void write_visits_wide_csv(Store& store, const std::string& path) {
  const auto manifest = store.manifest();
  const auto scans = scans_by_key(store);
  const auto& metrics = visits_wide_metrics();
  write_stream_atomic(path, [&](std::ostream& out) {
    report::CsvWriter w(out);
    std::vector<std::string> header = {"subject_id", "arm",       "visit",
                                       "visit_day",  "in_window", "status"};
    for (const auto& [column, metric] : metrics) header.push_back(column);
    // Densitometry compares visits only when the HU scale held: the air calibration check.
    header.push_back("calibration");
    w.row(header);
    for (const auto& e : manifest) {
      std::vector<report::CsvField> row = {e.subject_id, e.arm, e.visit};
      const auto it = scans.find({e.subject_id, e.visit});
      if (it == scans.end()) {
        row.insert(row.end(), {optional_field(e.visit_day), "", ""});
        for (std::size_t i = 0; i < metrics.size(); ++i) row.emplace_back("");
        row.emplace_back("");
        w.row(row);
        continue;
      }
      const ScanRecord& s = it->second;
      row.push_back(optional_field(s.days_from_baseline));
      row.emplace_back(s.in_window ? (*s.in_window ? "1" : "0") : "");
      row.emplace_back(s.status);
      std::map<std::string, std::optional<double>> lungs;
      if (s.status == "ok") {
        for (const auto& m : store.measurements(s.scan_id)) {
          if (m.region == "lungs") lungs[m.metric] = m.value;
        }
      }
      for (const auto& [column, metric] : metrics) {
        const auto v = lungs.find(metric);
        row.push_back(optional_field(v == lungs.end() ? std::nullopt : v->second));
      }
      const bool flagged = s.warnings.find("calibration: ") != std::string::npos &&
                           s.warnings.find("_out_of_tolerance") != std::string::npos;
      row.emplace_back(s.status != "ok" ? "" : flagged ? "flagged" : "ok");
      w.row(row);
    }
  });
}

}  // namespace lungvol::batch
