#include "qcreport/batch_view.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "batch/derived.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "report/csv.hpp"
#include "trial/endpoint.hpp"

namespace fs = std::filesystem;

namespace lungvol::qcreport {

const char* status_name(VisitStatus s) {
  switch (s) {
    case VisitStatus::kDone:
      return "done";
    case VisitStatus::kFailed:
      return "failed";
    case VisitStatus::kImputed:
      return "imputed";
    case VisitStatus::kOutOfWindow:
      return "out of window";
    case VisitStatus::kMissing:
      return "missing";
  }
  return "missing";
}

namespace {

void add_unique(std::vector<std::string>& list, const std::string& s) {
  if (!s.empty() && std::find(list.begin(), list.end(), s) == list.end()) list.push_back(s);
}

// The schedule's visits first (baseline, then by day), then any other visit in manifest order.
std::vector<std::string> order_visits(const std::optional<batch::RunInfo>& run,
                                      const std::vector<std::string>& seen) {
  trial::VisitSchedule schedule = trial::default_visit_schedule();
  if (run && !run->schedule_toml.empty()) {
    try {
      schedule =
          trial::parse_visit_schedule(run->schedule_toml, "results.sqlite runs.schedule_toml");
    } catch (const Error& e) {
      log::warn("report: {}; visits shown in manifest order", e.what());
    }
  }
  std::vector<std::string> out;
  for (const auto& v : schedule.visits) {
    if (std::find(seen.begin(), seen.end(), v.name) != seen.end()) out.push_back(v.name);
  }
  for (const auto& v : seen) add_unique(out, v);
  return out;
}

// A metrics.json that cannot be parsed is reported as a warning on the scan, never fatal:
// the report is how such problems are found.
void read_metrics_json(Visit& v) {
  const fs::path file = fs::path(v.scan_dir) / "metrics.json";
  if (v.scan_dir.empty() || !fs::exists(file)) return;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(file.string()));
  } catch (const std::exception& e) {
    add_unique(v.warnings, "metrics.json cannot be read: " + std::string(e.what()));
    return;
  }
  v.metrics_json = true;
  v.metrics_analyzed_at = j.value("analyzed_at", std::string());
  if (const auto in = j.find("input"); in != j.end() && in->is_object()) {
    v.metrics_image_sha256 = in->value("sha256", std::string());
  }
  if (const auto seg = j.find("segmentation"); seg != j.end() && seg->is_object()) {
    v.metrics_end_slices = seg->contains("end_slices");
    v.given_masks = seg->value("lungs", std::string()) == "given" ||
                    seg->value("lesions", std::string()) == "given";
  }
  if (const auto in = j.find("input"); in != j.end() && in->contains("warnings")) {
    for (const auto& w : (*in)["warnings"]) {
      if (w.is_string()) add_unique(v.warnings, w.get<std::string>());
    }
  }
  if (const auto cal = j.find("calibration"); cal != j.end() && cal->is_object()) {
    v.calibration_checked = cal->value("checked", false);
    if (const auto ok = cal->find("within_tolerance"); ok != cal->end() && ok->is_boolean()) {
      v.calibration_ok = ok->get<bool>();
    }
    if (const auto fl = cal->find("flags"); fl != cal->end() && fl->is_array()) {
      for (const auto& f : *fl) {
        if (f.is_string()) v.calibration_flags.push_back(f.get<std::string>());
      }
    }
  }
}

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

void add_change(BatchView& view, Change c, const std::string& source_visit) {
  if (c.flags.find("imputed_locf") != std::string::npos) {
    for (auto& s : view.subjects) {
      if (s.id != c.subject) continue;
      for (auto& v : s.visits) {
        if (v.visit == c.visit && v.imputed_from.empty()) {
          v.imputed_from = source_visit.empty() ? std::string("?") : source_visit;
        }
      }
    }
  }
  view.changes.push_back(std::move(c));
}

// endpoint/changes.csv of another state of the store: recomputed in memory (same options).
void recompute_changes(BatchView& view, const std::string& why) {
  const fs::path dir = fs::path(view.outdir) / "endpoint";
  const auto provenance = batch::read_provenance(dir.string());
  batch::BatchEndpointOptions o =
      provenance ? batch::endpoint_options_from_provenance(*provenance, view.outdir)
                 : batch::BatchEndpointOptions{};
  o.outdir = view.outdir;
  try {
    const batch::BatchEndpointRun run = batch::compute_batch_endpoint(o);
    view.has_changes = true;
    for (const auto& c : run.result.changes) {
      std::string flags;
      for (const auto& f : c.flags) flags += (flags.empty() ? "" : ";") + f;
      add_change(view, Change{c.subject_id, c.arm, c.endpoint, c.visit, c.population, flags, c.rel_change},
                 c.source_visit);
    }
    view.changes_note = why + "; the changes shown here were recomputed from the current results "
                        "(run `lungvol endpoint` to update endpoint/)";
  } catch (const Error& e) {
    view.changes_note = why + "; its changes are not shown, and recomputing them failed (" +
                        e.what() + ")";
  }
  log::warn("report: {}", view.changes_note);
}

void read_changes(BatchView& view) {
  const fs::path file = fs::path(view.outdir) / "endpoint" / "changes.csv";
  if (!fs::exists(file)) return;
  const auto provenance = batch::read_provenance(file.parent_path().string());
  const std::string recorded = provenance ? provenance->value("results_state", "") : "";
  if (recorded != view.results_state) {
    recompute_changes(view, provenance ? "endpoint/ was computed from results state " +
                                             recorded.substr(0, 16) + ", not the current " +
                                             view.results_state.substr(0, 16)
                                       : "endpoint/ records no results state (an older lungvol?)");
    return;
  }
  const report::CsvTable t = report::read_csv(file.string());
  const auto col = [&](const char* name) { return t.find_column(name); };
  const auto subject = col("subject_id"), arm = col("arm"), endpoint = col("endpoint"),
             visit = col("visit"), population = col("population"), rel = col("rel_change"),
             flags = col("flags"), source = col("source_visit");
  if (!subject || !arm || !endpoint || !visit || !population || !rel || !flags) {
    log::warn("report: {} lacks the expected columns; endpoint changes not shown", file.string());
    return;
  }
  view.has_changes = true;
  for (const auto& r : t.rows) {
    add_change(view,
               Change{r[*subject], r[*arm], r[*endpoint], r[*visit], r[*population], r[*flags],
                      parse_number(r[*rel])},
               source ? r[*source] : std::string());
  }
}

}  // namespace

BatchView load_batch_view(const std::string& outdir) {
  BatchView view;
  view.outdir = fs::absolute(outdir).lexically_normal().string();
  const fs::path db = fs::path(view.outdir) / "results.sqlite";
  if (!fs::is_regular_file(db)) {
    throw Error(ExitCode::kInput, outdir +
                                      " has no results.sqlite: not a `lungvol batch` output "
                                      "folder (run `lungvol batch MANIFEST -o " +
                                      outdir + "` first)");
  }
  batch::Store store(db.string(), batch::Store::Mode::kReadOnly);
  view.results_state = store.results_state();
  view.run = store.latest_run();
  view.n_failures_logged = store.count("failures");
  const auto manifest = store.manifest();
  std::vector<batch::ScanRecord> scans = store.scans();
  const std::vector<batch::RegistrationRecord> registrations = store.registrations();

  // Subjects and visits of the current manifest; when the manifest table is empty (an old or
  // hand-made store), every stored scan.
  std::vector<std::pair<std::string, std::string>> subjects;  // id, arm
  std::set<std::pair<std::string, std::string>> listed;       // subject x visit in manifest
  std::vector<std::string> seen_visits;
  auto add_subject = [&](const std::string& id, const std::string& arm) {
    if (std::none_of(subjects.begin(), subjects.end(), [&](auto& s) { return s.first == id; })) {
      subjects.emplace_back(id, arm);
    }
  };
  for (const auto& e : manifest) {
    add_subject(e.subject_id, e.arm);
    listed.emplace(e.subject_id, e.visit);
    add_unique(seen_visits, e.visit);
  }
  if (manifest.empty()) {
    for (const auto& s : scans) {
      add_subject(s.subject_id, s.arm);
      listed.emplace(s.subject_id, s.visit);
      add_unique(seen_visits, s.visit);
    }
  }
  view.visit_names = order_visits(view.run, seen_visits);

  for (const auto& [id, arm] : subjects) {
    Subject subject{id, arm, {}};
    for (const auto& name : view.visit_names) {
      Visit v;
      v.subject = id;
      v.arm = arm;
      v.visit = name;
      v.in_manifest = listed.count({id, name}) > 0;
      const auto it = std::find_if(scans.begin(), scans.end(), [&](const batch::ScanRecord& s) {
        return s.subject_id == id && s.visit == name;
      });
      if (v.in_manifest && it != scans.end()) {
        v.scan = *it;
        // The batch's own layout first, so a moved or copied batch folder still finds its
        // scans; the stored path (as given when the batch ran) otherwise.
        const fs::path own = fs::path(view.outdir) / "scans" / id / name;
        // error_code forms: a name the file system cannot hold (e.g. longer than 255 bytes,
        // from a store written by an older lungvol) is a missing folder, not a failed report.
        std::error_code ec;
        if (fs::is_directory(own, ec)) {
          v.scan_dir = own.string();
        } else if (!it->outdir.empty() && fs::is_directory(it->outdir, ec)) {
          v.scan_dir = fs::absolute(it->outdir).lexically_normal().string();
        }
        // Its registration to the baseline, when made from this very scan.
        const auto reg = std::find_if(registrations.begin(), registrations.end(),
                                      [&](const batch::RegistrationRecord& r) {
                                        return r.subject_id == id && r.visit == name;
                                      });
        if (it->status == "ok" && reg != registrations.end() &&
            reg->followup_input_sha256 == it->input_sha256) {
          v.registration = *reg;
          const fs::path own_reg = fs::path(view.outdir) / "registrations" / id / name;
          if (fs::is_directory(own_reg, ec)) {
            v.registration_dir = own_reg.string();
          } else if (!reg->outdir.empty() && fs::is_directory(reg->outdir, ec)) {
            v.registration_dir = fs::absolute(reg->outdir).lexically_normal().string();
          }
        }
        if (it->status == "ok") {
          v.status = it->in_window.value_or(true) ? VisitStatus::kDone : VisitStatus::kOutOfWindow;
          v.measurements = store.measurements(it->scan_id);
          for (const auto& m : v.measurements) {
            if (m.region == "lungs" && m.value) v.lungs[m.metric] = *m.value;
          }
        } else {
          v.status = VisitStatus::kFailed;
        }
        std::string line;
        for (char c : it->warnings + "\n") {
          if (c == '\n') {
            add_unique(v.warnings, line);
            line.clear();
          } else {
            line.push_back(c);
          }
        }
        read_metrics_json(v);
        // Only the images of the analysis the store holds are shown, never an earlier run's.
        if (it->status != "ok") {
          v.images_note = "failed scan: no image";
        } else if (v.scan_dir.empty()) {
          v.images_note = "no scan folder";
        } else if (!v.metrics_json) {
          v.images_note = "the scan folder holds no readable metrics.json: its images cannot be "
                          "matched to this analysis and are not shown";
        } else if (v.metrics_analyzed_at != it->analyzed_at ||
                   (!v.metrics_image_sha256.empty() && !it->image_sha256.empty() &&
                    v.metrics_image_sha256 != it->image_sha256)) {
          v.images_note = "the scan folder holds another analysis (metrics.json analyzed_at " +
                          v.metrics_analyzed_at + ", results.sqlite " + it->analyzed_at +
                          "): its images are not shown";
        } else {
          v.images_current = true;
        }
      }
      subject.visits.push_back(std::move(v));
    }
    view.subjects.push_back(std::move(subject));
  }
  read_changes(view);
  // The reader's decisions and failures' exit codes.
  const batch::ReviewStatus review = batch::review_status(store);
  view.review_sentence = review.sentence();
  view.review_locked = review.lock_holds;
  const auto history = store.review_log();
  const auto codes = store.failure_exit_codes();
  for (auto& s : view.subjects) {
    for (auto& v : s.visits) {
      if (const auto* r = review.find(s.id, v.visit)) {
        v.review = r->decision;
        v.review_state = r->state;
      }
      for (const auto& d : history) {
        if (d.subject_id == s.id && d.visit == v.visit) v.review_history.push_back(d);
      }
      if (const auto c = codes.find({s.id, v.visit}); c != codes.end() && v.status == VisitStatus::kFailed) {
        v.exit_code = c->second;
      }
    }
  }
  // A visit without a usable scan that the endpoint analysis carried forward is "imputed".
  for (auto& s : view.subjects) {
    for (auto& v : s.visits) {
      if (v.status == VisitStatus::kMissing && !v.imputed_from.empty()) {
        v.status = VisitStatus::kImputed;
      }
    }
  }
  return view;
}

}  // namespace lungvol::qcreport
