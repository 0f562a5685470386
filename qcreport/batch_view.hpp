#pragma once
// What the QC report shows of a batch folder, gathered once: the manifest's subjects and
// visits, each subject x visit's status (done / failed / imputed / out of window / missing),
// its lungs measurements, what metrics.json says about it, and the endpoint changes when
// `lungvol endpoint` has run. Read-only: nothing in the batch folder is modified.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "batch/review.hpp"
#include "batch/store.hpp"
#include "pipeline/flags.hpp"

namespace lungvol::qcreport {

enum class VisitStatus { kDone, kFailed, kImputed, kOutOfWindow, kMissing };
const char* status_name(VisitStatus s);  // "done", "failed", "imputed", "out of window", "missing"

// One QC finding on one subject x visit: code, cause, severity, value, unit, message
// (pipeline/flags.hpp has the table of codes).
using Flag = pipeline::QcFlag;

struct Visit {
  std::string subject, arm, visit;
  VisitStatus status = VisitStatus::kMissing;
  bool in_manifest = false;
  std::optional<batch::ScanRecord> scan;  // the store's row (ok or failed)
  std::string imputed_from;               // LOCF source visit when changes.csv imputes this one
  std::map<std::string, double> lungs;    // lungs-region metrics (lesion_pct, volume_ml, ...)
  std::vector<batch::Store::MeasurementRow> measurements;  // every region's, store order
  std::string scan_dir;  // absolute per-scan output folder ("" when none)
  // From metrics.json (absent file: calibration_checked false, no warnings).
  bool metrics_json = false;
  bool calibration_checked = false;
  std::optional<bool> calibration_ok;
  std::vector<std::string> calibration_flags;
  std::vector<std::string> warnings;  // input warnings and the store's scan warnings, deduplicated
  bool metrics_end_slices = false;    // metrics.json counts lesion voxels on the end slices
  std::string metrics_analyzed_at;    // metrics.json analyzed_at ("" when absent)
  std::string metrics_image_sha256;   // metrics.json input.sha256
  bool given_masks = false;           // measured with reviewer-given masks (metrics.json)
  // The images in scan_dir belong to the stored scan: its metrics.json was written by the same
  // analysis (analyzed_at and input hash as in results.sqlite). Otherwise none is shown.
  bool images_current = false;
  std::string images_note;  // why no image is shown
  int exit_code = 0;        // failed scans: the exit code of the latest attempt
  std::vector<Flag> flags;  // filled by add_flags()
  int qc_score = 0;         // filled by add_flags() (pipeline::qc_score)
  // The reader's decision (batch/review.hpp) and every earlier one, oldest first.
  std::optional<batch::ReviewDecision> review;
  batch::DecisionState review_state = batch::DecisionState::kNone;
  std::vector<batch::ReviewDecision> review_history;
  // The follow-up's stored registration to the baseline (docs/batch.md, "Registration"), when it
  // describes the scan stored now, and its folder ("" when none).
  std::optional<batch::RegistrationRecord> registration;
  std::string registration_dir;
};

struct Subject {
  std::string id, arm;
  std::vector<Visit> visits;  // one per BatchView::visit_names entry, same order
};

// One row of endpoint/changes.csv that the box plots use.
struct Change {
  std::string subject, arm, endpoint, visit, population, flags;
  std::optional<double> rel_change;
};

struct BatchView {
  std::string outdir;                    // absolute
  std::optional<batch::RunInfo> run;     // latest run
  std::vector<std::string> visit_names;  // baseline first, then by scheduled day
  std::vector<Subject> subjects;         // manifest order of first appearance
  std::vector<Change> changes;           // empty when endpoint/changes.csv is absent
  bool has_changes = false;
  // The state of results.sqlite the report shows (batch/derived.hpp), and what was done about
  // endpoint/ when it belongs to another state ("" when it is current or absent).
  std::string results_state;
  std::string changes_note;
  std::size_t n_failures_logged = 0;  // rows in the store's `failures` history
  std::string review_sentence;        // batch::ReviewStatus::sentence()
  bool review_locked = false;
};

// Reads OUTDIR/results.sqlite read-only (Error(kInput) naming the path when absent; works on
// read-only storage), the per-scan metrics.json files and OUTDIR/endpoint/changes.csv when
// present. A changes.csv computed from another state of results.sqlite (endpoint/provenance.json)
// is not shown: the changes are recomputed in memory with the options it recorded, and the
// page says so.
BatchView load_batch_view(const std::string& outdir);

}  // namespace lungvol::qcreport
