#pragma once
// QC flags as data: one place that knows every flag code, its cause, severity and weight in the
// QC score (docs/outputs.md, "QC flags and the QC score"). Adding a flag is one line of
// flag_table() plus the code that raises it.
//
// A flag is raised at most once per scan and code, and the QC score counts each *cause* once
// (the highest weight among the scan's flags of that cause), so one calibration problem is one
// flag, never three.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lungvol::pipeline {

struct FlagSpec {
  const char* code;      // stable identifier (metrics.json, results.sqlite, CSV)
  const char* cause;     // what went wrong; the score counts each cause once
  const char* severity;  // info | warn | fail
  int weight;            // points in the QC score
  const char* meaning;   // one line for the docs and the report
};

// Every flag lungvol raises, in the order the report lists them.
const std::vector<FlagSpec>& flag_table();
// nullptr when the code is unknown.
const FlagSpec* find_flag_spec(const std::string& code);

struct QcFlag {
  std::string code, cause, severity;
  std::optional<double> value;  // the number that fired it (null when none)
  std::string unit;             // of value ("" when none)
  std::string message;          // human-readable, with the numbers
};

// A flag of a known code (cause and severity from the table). Error(kProcessing) for an
// unknown code: a programming error.
QcFlag make_flag(const std::string& code, std::optional<double> value, const std::string& unit,
                 const std::string& message);

// Thresholds of the per-scan flags (documented in docs/outputs.md).
struct ScanFlagLimits {
  double dense_left_out_pct = 1.0;   // dense tissue left out of the lungs, % of lung volume
  double dense_left_out_ml = 10.0;   // ... or this many mL, whichever fires first
  double boundary_fraction = 0.02;   // lung voxels on the first/last slice, fraction of the lungs
};

// The flags of one scan from its metrics.json (object as written by `analyze`): dense tissue
// left out of the lung mask (`lungs.dense`, when the segmentation reports it; absent = 0),
// calibration (one flag whatever the number of references out of tolerance), coverage
// (`input.coverage` when present; lesion voxels on an end slice), given masks, other reading
// warnings (one flag with their count; calibration warnings are the calibration flag's).
std::vector<QcFlag> scan_flags(const nlohmann::json& metrics, const ScanFlagLimits& limits = {});

// Sum over causes of the highest weight among `flags` of that cause.
int qc_score(const std::vector<QcFlag>& flags);
// Adds `f` unless a flag of the same code is there already (then the messages are joined).
void add_flag(std::vector<QcFlag>& flags, QcFlag f);

// Into flag_table() order (unknown codes last, in their order).
void sort_flags(std::vector<QcFlag>& flags);

nlohmann::json flags_json(const std::vector<QcFlag>& flags);
// Tolerant: entries without a code are skipped.
std::vector<QcFlag> flags_from_json(const nlohmann::json& j);
// "calibration;coverage_cut": the codes, ';'-separated, table order.
std::string flag_codes(const std::vector<QcFlag>& flags);

}  // namespace lungvol::pipeline
