#include "batch/derived.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "batch/exports.hpp"
#include "batch/review.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "core/version.hpp"
#include "report/csv.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lungvol::batch {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(' ');
    const auto e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::string results_store_path(const std::string& outdir) {
  const std::string db = (fs::path(outdir) / "results.sqlite").string();
  std::error_code ec;
  if (!fs::is_regular_file(db, ec)) {
    throw Error(ExitCode::kInput, "no results store '" + db +
                                      "': not a `lungvol batch` output folder (run `lungvol "
                                      "batch MANIFEST -o " + outdir + "` first; for a visit "
                                      "table alone: `lungvol endpoint --table FILE -o DIR`)");
  }
  return db;
}

BatchState read_batch_state(Store& store, const std::string& outdir,
                            const std::string& schedule_override) {
  BatchState s;
  s.outdir = outdir;
  s.db_path = store.path();
  s.results_state = store.results_state();
  s.recorded_state = store.recorded_results_state();
  s.generation = store.results_generation();
  {
    const ReviewStatus review = review_status(store);
    s.review_locked = review.lock_holds;
    s.review = review.sentence();
  }
  if (!s.recorded_state.empty() && s.recorded_state != s.results_state) {
    log::warn("{} changed after lungvol last finished writing it (an interrupted batch, or an "
              "edit outside lungvol): measurements.csv and visits_wide.csv may not match it; "
              "re-run the batch to bring them up to date",
              s.db_path);
  }
  // The protocol the manifest's analyzed scans were measured with: exactly one.
  std::map<std::pair<std::string, std::string>, ScanRecord> scans;
  for (auto& r : store.scans()) scans[{r.subject_id, r.visit}] = std::move(r);
  std::map<std::string, std::string> protocols;  // sha -> "name version"
  std::set<std::string> versions;
  for (const auto& e : store.manifest()) {
    const auto it = scans.find({e.subject_id, e.visit});
    if (it == scans.end() || it->second.status != "ok") continue;
    protocols[it->second.protocol_sha256] =
        it->second.protocol_name + " " + it->second.protocol_version;
    versions.insert(it->second.software_version);
  }
  if (protocols.size() > 1) {
    std::vector<std::string> list;
    for (const auto& [sha, name] : protocols) list.push_back(name + " (sha256 " + sha.substr(0, 12) + ")");
    throw Error(ExitCode::kInput,
                "results store " + s.db_path + " holds scans measured with different protocols (" +
                    join(list, ", ") + "; an interrupted batch?); finish the batch with one "
                    "protocol before deriving results from it");
  }
  s.software_versions.assign(versions.begin(), versions.end());
  if (versions.size() > 1) {
    log::warn("{}: the scans were measured by different lungvol versions ({}); re-run the batch "
              "to measure every scan with one",
              s.db_path, join(s.software_versions, ", "));
  }
  s.run = protocols.empty() ? store.latest_run()
                            : store.latest_run_with_protocol(protocols.begin()->first);
  if (!s.run) s.run = store.latest_run();
  if (!s.run) throw Error(ExitCode::kInput, s.db_path + " holds no batch run");
  if (!protocols.empty()) {
    s.protocol_sha256 = protocols.begin()->first;
    const std::string& nv = protocols.begin()->second;
    s.protocol_name = nv.substr(0, nv.find(' '));
    s.protocol_version = nv.substr(nv.find(' ') + 1);
  } else {
    s.protocol_sha256 = s.run->protocol_sha256;
    s.protocol_name = s.run->protocol_name;
    s.protocol_version = s.run->protocol_version;
  }
  // The schedule: the one the batch ran with (stored), unless the user names another.
  const auto latest = store.latest_run();
  if (!schedule_override.empty()) {
    s.schedule = trial::load_visit_schedule(schedule_override);
    s.schedule_source = schedule_override;
    const std::string stored = latest ? latest->schedule_toml : "";
    if (read_text_file(schedule_override) != stored) {
      log::info("using the visit schedule {} instead of the one the batch ran with", schedule_override);
    }
  } else if (latest && !latest->schedule_toml.empty()) {
    s.schedule = trial::parse_visit_schedule(latest->schedule_toml, s.db_path + " (runs.schedule_toml)");
    s.schedule_source = "the batch's schedule (" + s.db_path + ")";
  } else {
    s.schedule = trial::default_visit_schedule();
    s.schedule_source = "the default schedule (the batch ran with it)";
  }
  return s;
}

void check_visits_in_schedule(const trial::VisitTable& table, const trial::VisitSchedule& schedule,
                              const std::string& schedule_source) {
  std::vector<std::string> unknown;
  for (const auto& r : table.rows) {
    if (!schedule.find(r.visit) &&
        std::find(unknown.begin(), unknown.end(), r.visit) == unknown.end()) {
      unknown.push_back(r.visit);
    }
  }
  if (unknown.empty()) return;
  std::vector<std::string> names;
  for (const auto& v : schedule.visits) names.push_back(v.name);
  throw Error(ExitCode::kUsage,
              fmt::format("{}: visit(s) {} are not in {} (visits {}); the results would drop them. "
                          "Use the schedule the batch ran with (omit --schedule) or one that "
                          "holds every visit",
                          table.source, join(unknown, ", "), schedule_source, join(names, ", ")));
}

json provenance_json(const BatchState& s, const std::string& what) {
  return json{{"format", "lungvol.provenance/1"},
              {"what", what},
              {"created_at", utc_timestamp()},
              {"software", {{"name", kSoftwareName}, {"version", kSoftwareVersion}, {"commit", kSoftwareCommit}}},
              {"results_store", s.db_path},
              {"results_state", s.results_state},
              {"results_generation", s.generation},
              {"protocol",
               {{"name", s.protocol_name}, {"version", s.protocol_version}, {"sha256", s.protocol_sha256}}},
              {"scans_software_versions", s.software_versions},
              {"schedule", s.schedule_source},
              {"review", {{"locked_and_fully_reviewed", s.review_locked}, {"status", s.review}}}};
}

std::vector<std::pair<std::string, std::string>> provenance_columns(const BatchState& s) {
  return {{"protocol", s.protocol_name},
          {"protocol_version", s.protocol_version},
          {"protocol_sha256", s.protocol_sha256},
          {"software_version", join(s.software_versions, " ")},
          {"results_state", s.results_state}};
}

std::string append_csv_columns(const std::string& csv,
                               const std::vector<std::pair<std::string, std::string>>& columns) {
  std::string header, values;
  for (const auto& [name, value] : columns) {
    header += "," + report::csv_escape(name);
    values += "," + report::csv_escape(value);
  }
  std::string out;
  std::size_t start = 0;
  bool first = true;
  while (start < csv.size()) {
    std::size_t end = csv.find('\n', start);
    if (end == std::string::npos) end = csv.size();
    out += csv.substr(start, end - start) + (first ? header : values) + "\n";
    first = false;
    start = end + 1;
  }
  return out;
}

std::string provenance_sentence(const BatchState& s) {
  return fmt::format(
      "Source: {} (results state {}, generation {}); protocol {} {} (sha256 {}); scans measured "
      "by lungvol {}; this table by lungvol {}; visit schedule: {}. Review: {}.",
      s.db_path, s.results_state.substr(0, 16), s.generation, s.protocol_name,
      s.protocol_version, s.protocol_sha256.substr(0, 16), join(s.software_versions, ", "),
      kSoftwareVersion, s.schedule_source, s.review);
}

std::optional<json> read_provenance(const std::string& dir) {
  const fs::path file = fs::path(dir) / "provenance.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  try {
    return json::parse(read_text_file(file.string()));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string staleness(const std::string& dir, const BatchState& state) {
  const auto p = read_provenance(dir);
  if (!p) {
    return "'" + dir + "' records no results state (no provenance.json: written by an older "
           "lungvol or by hand)";
  }
  const std::string recorded = p->value("results_state", "");
  if (recorded == state.results_state) return "";
  return fmt::format("'{}' was computed from results state {} ({}), but {} is now at state {}",
                     dir, recorded.substr(0, 16), p->value("created_at", "?"), state.db_path,
                     state.results_state.substr(0, 16));
}

std::pair<std::string, std::string> choose_arms(const trial::VisitTable& table,
                                                const std::string& arms,
                                                const std::string& source) {
  if (!arms.empty()) {
    const auto list = split_list(arms);
    if (list.size() != 2) throw Error(ExitCode::kUsage, "--arms wants two names, A,B");
    return {list[0], list[1]};
  }
  const auto found = trial::arms_in(table);
  if (found.size() != 2) {
    throw Error(ExitCode::kUsage, source + " has " + std::to_string(found.size()) + " arms (" +
                                      join(found, ", ") + "); choose two with --arms A,B");
  }
  return {found[0], found[1]};
}

BatchEndpointRun compute_batch_endpoint(const BatchEndpointOptions& o) {
  BatchEndpointRun run;
  Store store(results_store_path(o.outdir), Store::Mode::kReadOnly);
  run.state = read_batch_state(store, o.outdir, o.schedule);
  run.out_dir = o.out_dir.empty() ? (fs::path(o.outdir) / "endpoint").string() : o.out_dir;
  const trial::VisitTable table = batch_visit_table(store);
  check_visits_in_schedule(table, run.state.schedule, run.state.schedule_source);
  trial::EndpointOptions eo;
  std::tie(eo.arm_a, eo.arm_b) = choose_arms(table, o.arms, run.state.db_path);
  if (o.arms.empty()) {
    run.notes.push_back("comparing arms " + eo.arm_a + " minus " + eo.arm_b +
                        " (sorted order; use --arms to choose)");
  }
  if (!o.endpoints.empty()) eo.endpoints = trial::endpoints_for(table, split_list(o.endpoints));
  if (o.normal) eo.wilcoxon.allow_exact = false;
  run.notes.push_back("visit schedule: " + run.state.schedule_source);
  run.notes.push_back("review: " + run.state.review);
  run.result = trial::run_endpoints(table, run.state.schedule, eo);
  return run;
}

BatchEndpointRun run_batch_endpoint(const BatchEndpointOptions& o) {
  BatchEndpointRun run = compute_batch_endpoint(o);
  const auto& r = run.result;
  ensure_directory(run.out_dir);
  const fs::path d(run.out_dir);
  const auto columns = provenance_columns(run.state);
  write_text_atomic((d / "changes.csv").string(), trial::changes_csv(r));
  write_text_atomic((d / "comparison.csv").string(),
                    append_csv_columns(trial::comparison_csv(r), columns));
  write_text_atomic((d / "table2.md").string(),
                    trial::table2_markdown(r) + "\n" + provenance_sentence(run.state) + "\n");
  json p = provenance_json(run.state, "lungvol endpoint");
  p["options"] = {{"arms", {r.arm_a, r.arm_b}},
                  {"endpoints", o.endpoints},
                  {"normal", o.normal},
                  {"schedule", o.schedule}};
  write_text_atomic((d / "provenance.json").string(), p.dump(2) + "\n");
  return run;
}

BatchEndpointOptions endpoint_options_from_provenance(const json& p, const std::string& outdir) {
  BatchEndpointOptions o;
  o.outdir = outdir;
  if (const auto opt = p.find("options"); opt != p.end() && opt->is_object()) {
    const auto arms = opt->value("arms", json::array());
    if (arms.is_array() && arms.size() == 2) {
      o.arms = arms[0].get<std::string>() + "," + arms[1].get<std::string>();
    }
    o.endpoints = opt->value("endpoints", "");
    o.normal = opt->value("normal", false);
    o.schedule = opt->value("schedule", "");
  }
  return o;
}

}  // namespace lungvol::batch
