#pragma once
// Files derived from a batch folder (`lungvol endpoint`, `sweep`, `report`, `export`): they use
// what the batch stored (its schedule, the protocol its scans were measured with, its manifest
// of subjects, arms and visits) unless told otherwise, refuse contradictions, and record which
// state of results.sqlite they come from, so that a stale one is recognised (docs/batch.md,
// "Derived files and the results state").
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/store.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::batch {

// What the store says about the results.
struct BatchState {
  std::string outdir;          // the batch folder as given
  std::string db_path;         // OUTDIR/results.sqlite
  std::string results_state;   // Store::results_state(), now
  std::string recorded_state;  // what the last batch run / merge recorded ("" for old stores)
  std::int64_t generation = 0;
  std::optional<RunInfo> run;  // the run whose protocol the scans were measured with
  // The protocol of the manifest's analyzed scans (one; several are refused), with the software
  // version(s) that measured them.
  std::string protocol_name, protocol_version, protocol_sha256;
  std::vector<std::string> software_versions;
  trial::VisitSchedule schedule;
  std::string schedule_source;  // "results.sqlite (batch run)", "default schedule" or a file
  // The reader's review (batch/review.hpp): whether the batch is locked and fully reviewed, and
  // the sentence that says so (recorded in provenance.json and the Source line).
  bool review_locked = false;
  std::string review;
};

// Error(kInput) naming the path when OUTDIR holds no results.sqlite.
std::string results_store_path(const std::string& outdir);

// Reads what a derived file needs from `store`. `schedule_override`: a --schedule file ("" =
// the schedule the batch ran with; its text is stored in `runs`). Refuses (Error(kInput)) a
// store whose manifest scans were measured with different protocols (an interrupted batch),
// and warns when the store changed since lungvol last finished writing it.
BatchState read_batch_state(Store& store, const std::string& outdir,
                            const std::string& schedule_override);

// Error(kUsage) when the table holds visits the schedule does not know (a contradiction between
// the batch's visits and the schedule in use), naming them and the schedule.
void check_visits_in_schedule(const trial::VisitTable& table, const trial::VisitSchedule& schedule,
                              const std::string& schedule_source);

// The provenance a derived file records: provenance.json beside it, and columns of its tables.
nlohmann::json provenance_json(const BatchState& state, const std::string& what);
std::vector<std::pair<std::string, std::string>> provenance_columns(const BatchState& state);
// Appends `columns` to every line of a CSV whose records are one line each (header: names,
// rows: values, spreadsheet-protected and quoted as CSV).
std::string append_csv_columns(const std::string& csv,
                               const std::vector<std::pair<std::string, std::string>>& columns);
// "Source: protocol ..., lungvol ..., results state ... (results.sqlite)" for Markdown / HTML.
std::string provenance_sentence(const BatchState& state);

// The provenance.json of a derived folder; nullopt when absent or unreadable.
std::optional<nlohmann::json> read_provenance(const std::string& dir);
// "" when `dir`'s provenance.json records state.results_state, else why it is stale (missing,
// other state) in words, for messages.
std::string staleness(const std::string& dir, const BatchState& state);

// `lungvol endpoint OUTDIR`: the visit table from results.sqlite (what visits_wide.csv holds),
// the batch's schedule, two arms; writes changes.csv, comparison.csv (+ provenance columns),
// table2.md (+ source line) and provenance.json into `out_dir` (default OUTDIR/endpoint).
struct BatchEndpointOptions {
  std::string outdir;
  std::string out_dir;   // "" = OUTDIR/endpoint
  std::string schedule;  // "" = the batch's
  std::string arms;      // "A,B"; "" = the two arms, sorted
  std::string endpoints;  // comma-separated metric columns; "" = default
  bool normal = false;
};
struct BatchEndpointRun {
  trial::EndpointResult result;
  BatchState state;
  std::string out_dir;
  std::vector<std::string> notes;  // what was chosen (arms, schedule), for the user
};
// In memory only (no file); the store is opened read-only.
BatchEndpointRun compute_batch_endpoint(const BatchEndpointOptions& options);
BatchEndpointRun run_batch_endpoint(const BatchEndpointOptions& options);
// The endpoint options of an earlier run, from its provenance.json (arms, endpoints, normal).
BatchEndpointOptions endpoint_options_from_provenance(const nlohmann::json& provenance,
                                                      const std::string& outdir);

// Arms A,B from "A,B" or the table's two arms (sorted); Error(kUsage) otherwise.
std::pair<std::string, std::string> choose_arms(const trial::VisitTable& table,
                                                const std::string& arms,
                                                const std::string& source);

}  // namespace lungvol::batch
