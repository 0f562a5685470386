#pragma once
// Trial endpoints from a per-visit measurement table: change from baseline per subject,
// mITT (LOCF) and per-protocol populations, and the two-arm comparison of the statistical
// analysis plan (median, order-statistic median CI, IQR, Wilcoxon rank-sum, Hodges-Lehmann).
// Everything runs in memory (run_endpoints) so threshold sweeps can call it without files;
// the writers turn an EndpointResult into changes.csv, comparison.csv and table2.md.
// Rules (LOCF, windows, zero baseline, ties): docs/statistics.md.
#include <optional>
#include <string>
#include <vector>

#include "trial/stats.hpp"

namespace lungvol::trial {

// ---- visit table ----------------------------------------------------------------------

struct VisitRow {
  std::size_t line = 0;  // 1-based line in the source (0 when built in memory)
  std::string subject_id, arm, visit;
  std::optional<double> visit_day;
  std::optional<bool> in_window;
  bool failed = false;                        // status "failed": counts as a missing scan
  bool excluded = false;  // status "excluded" (a reader's decision): missing too, and flagged
  std::vector<std::optional<double>> values;  // one per VisitTable::metrics
};

struct VisitTable {
  std::string source = "<memory>";
  std::vector<std::string> metrics;  // numeric measurement columns, file order
  std::vector<VisitRow> rows;
  std::optional<std::size_t> metric_index(const std::string& name) const;
};

// CSV with a header; required columns subject_id, arm, visit; optional visit_day,
// in_window (true/false/1/0/yes/no), status (ok/failed/excluded: a scan the reader excluded is
// missing, like a failed one, and its changes are flagged "excluded"); qc_score, qc_flags and
// review are QC columns, never metrics; every other column whose values
// are all numbers (empty / NA = missing) is a metric. Throws Error(kUsage) naming the line.
VisitTable parse_visit_table(const std::string& csv_text, const std::string& source);
VisitTable read_visit_table(const std::string& path);  // Error(kInput) if missing

std::vector<std::string> arms_in(const VisitTable& table);  // sorted, unique

// ---- visit schedule -------------------------------------------------------------------

struct ScheduledVisit {
  std::string name;
  double day = 0;
  bool baseline = false;
  std::optional<double> window_days;  // +- days around `day` for per-protocol scans
};

struct VisitSchedule {
  std::vector<ScheduledVisit> visits;  // sorted by day, baseline first
  const ScheduledVisit& baseline() const;
  const ScheduledVisit* find(const std::string& name) const;
};

VisitSchedule default_visit_schedule();  // baseline day 0, day10, day28 (no windows)
// TOML: [[visit]] name = "day28"  day = 28  window_days = 3  (baseline = true on exactly one)
VisitSchedule parse_visit_schedule(const std::string& toml_text, const std::string& source);
VisitSchedule load_visit_schedule(const std::string& path);  // Error(kInput) if missing

// ---- endpoints --------------------------------------------------------------------------

enum class ChangeKind { kRelative, kAbsolute };

struct EndpointSpec {
  std::string column;  // metric column of the visit table, e.g. lesion_pct
  std::string name;    // e.g. lesion_pct_change
  ChangeKind kind = ChangeKind::kRelative;
};

// lesion_pct, ggo_pct, solid_pct (relative change, "<col>_change"), then every other metric
// column in file order: relative change if its name ends in _pct, otherwise absolute change
// ("<col>_abs_change"; densitometry in HU, volumes).
std::vector<EndpointSpec> default_endpoints(const VisitTable& table);
// Endpoint specs for the named columns (same naming rules); Error(kUsage) if one is absent.
std::vector<EndpointSpec> endpoints_for(const VisitTable& table,
                                        const std::vector<std::string>& columns);

struct EndpointOptions {
  std::string arm_a, arm_b;             // comparison is arm_a minus arm_b
  std::vector<EndpointSpec> endpoints;  // empty = default_endpoints(table)
  WilcoxonOptions wilcoxon = default_wilcoxon_options();
  // lungvol's convention: ties decided after rounding changes to 10 significant digits, i.e.
  // R's wilcox.test(..., digits.rank = 10); digits_rank = 0 is R's default (digits.rank = Inf).
  // `lungvol endpoint --digits-rank` / `sweep --digits-rank` choose. docs/statistics.md.
  static constexpr int kDefaultDigitsRank = 10;
  static WilcoxonOptions default_wilcoxon_options() {
    WilcoxonOptions w;
    w.digits_rank = kDefaultDigitsRank;
    return w;
  }
};

inline constexpr const char* kPopulationMITT = "mITT";
inline constexpr const char* kPopulationPP = "PP";

struct ChangeRecord {
  std::string subject_id, arm, visit, endpoint, population;
  std::string source_visit;  // visit whose measurement was used (differs under LOCF)
  std::optional<double> baseline, value, abs_change, rel_change;
  std::optional<double> change;  // the analysed value (rel_change or abs_change)
  std::vector<std::string> flags;  // no_baseline, baseline_zero, imputed_locf, missing,
                                   // excluded (the visit's or the baseline's scan excluded by
                                   // the reader), ...
  bool included = false;           // contributes to the comparison
};

struct ComparisonRow {
  std::string endpoint, visit, population, arm_a, arm_b;
  ChangeKind kind = ChangeKind::kRelative;
  GroupSummary a, b;
  std::optional<WilcoxonResult> test;  // empty when an arm has no value
  double conf_level = 0.95;             // the level asked for (test->achieved_conf_level: reached)
};

struct EndpointResult {
  std::string arm_a, arm_b;
  int digits_rank = 0;  // the ties convention used (0 = R's default, no rounding)
  std::vector<std::string> visits;  // follow-up visits, schedule order
  std::vector<EndpointSpec> endpoints;
  std::vector<ChangeRecord> changes;
  std::vector<ComparisonRow> comparisons;
  std::vector<std::string> warnings;
  const ComparisonRow* find(const std::string& endpoint, const std::string& visit,
                            const std::string& population) const;
};

// Throws Error(kUsage) if an arm is unknown or the table contradicts itself (a subject in two
// arms, two usable rows for one subject and visit).
EndpointResult run_endpoints(const VisitTable& table, const VisitSchedule& schedule,
                             const EndpointOptions& options);

// "10" or "Inf" (R's spelling of no rounding), as comparison.csv's digits_rank column writes it.
std::string digits_rank_text(int digits_rank);
// Parses --digits-rank: a whole number 1..22 or "inf" / "Inf" (= 0, no rounding).
int parse_digits_rank(const std::string& text);

std::string changes_csv(const EndpointResult& result);
std::string comparison_csv(const EndpointResult& result);
std::string table2_markdown(const EndpointResult& result);
// Writes changes.csv, comparison.csv and table2.md into `dir` (created), each atomically.
void write_endpoint_outputs(const EndpointResult& result, const std::string& dir);

}  // namespace lungvol::trial
