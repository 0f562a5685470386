// The Slurm executor's files: the task list, the submission record and the task results
// (batch/slurm_internal.hpp, batch/slurm.hpp).
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "batch/slurm.hpp"
#include "batch/slurm_internal.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/histogram.hpp"
#include "pipeline/analyze.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lungvol::batch::slurm {
namespace detail {

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

std::vector<ArrayJob> arrays_from_json(const json& submission) {
  std::vector<ArrayJob> out;
  for (const auto& a : submission.at("arrays")) {
    out.push_back(ArrayJob{a.at("job_id").get<std::string>(), a.at("offset").get<std::size_t>(),
                           a.at("count").get<std::size_t>()});
  }
  return out;
}

}  // namespace detail

namespace {

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

}  // namespace

using detail::kResultFormat;

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
              {"patient_id", r.patient_id},
              {"study_instance_uid", r.study_uid},
              {"image_sha256", r.image_sha256},
              {"input_patients", r.input_patients},
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
  // Identity fields (added with results store schema 2; absent in older result files).
  r.patient_id = j.value("patient_id", "");
  r.study_uid = j.value("study_instance_uid", "");
  r.image_sha256 = j.value("image_sha256", "");
  r.input_patients = j.value("input_patients", "");
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

}  // namespace lungvol::batch::slurm
