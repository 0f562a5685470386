#include "trial/endpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/spreadsheet.hpp"

namespace lungvol::trial {
namespace {

Error usage(const std::string& message) { return Error(ExitCode::kUsage, message); }

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

struct CsvRecord {
  std::size_t line = 0;
  std::vector<std::string> fields;
};

// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source) {
  std::vector<CsvRecord> records;
  std::size_t i = 0, line = 1;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte order mark
  while (i < text.size()) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool in_quotes = false, quoted = false, end_of_record = false;
    while (i < text.size() && !end_of_record) {
      const char c = text[i++];
      if (in_quotes) {
        if (c == '"') {
          if (i < text.size() && text[i] == '"') {
            field += '"';
            ++i;
          } else {
            in_quotes = false;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
        }
      } else if (c == '"') {
        if (!trim(field).empty()) {
          throw usage(fmt::format("{} line {}: stray quote inside a field", source, line));
        }
        field.clear();
        in_quotes = quoted = true;
      } else if (c == ',') {
        rec.fields.push_back(spreadsheet_unprotect(quoted ? field : trim(field)));
        field.clear();
        quoted = false;
      } else if (c == '\n') {
        end_of_record = true;
        ++line;
      } else if (c != '\r') {
        field += c;
      }
    }
    if (in_quotes) throw usage(fmt::format("{} line {}: unterminated quote", source, rec.line));
    rec.fields.push_back(spreadsheet_unprotect(quoted ? field : trim(field)));
    const bool blank = rec.fields.size() == 1 && rec.fields[0].empty();
    if (!blank) records.push_back(std::move(rec));
  }
  return records;
}

bool is_missing_token(const std::string& s) {
  const std::string l = lower(s);
  return l.empty() || l == "na" || l == "nan" || l == "null";
}

// A finite decimal number. Subnormal values ("1e-310") are numbers: std::stod throws on them
// (ERANGE), strtod returns them. Overflow ("1e999") and inf / nan spellings are not.
std::optional<double> parse_number(const std::string& s, bool* ok) {
  *ok = true;
  if (is_missing_token(s)) return std::nullopt;
  if (!s.empty() && !std::isspace(static_cast<unsigned char>(s[0]))) {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    const bool overflow = errno == ERANGE && std::fabs(v) == HUGE_VAL;
    if (end == s.c_str() + s.size() && !overflow && std::isfinite(v)) return v;
  }
  *ok = false;
  return std::nullopt;
}

std::optional<bool> parse_bool(const std::string& s, bool* ok) {
  *ok = true;
  const std::string l = lower(s);
  if (is_missing_token(l)) return std::nullopt;
  if (l == "true" || l == "1" || l == "yes" || l == "y" || l == "t") return true;
  if (l == "false" || l == "0" || l == "no" || l == "n" || l == "f") return false;
  *ok = false;
  return std::nullopt;
}

const std::set<std::string>& reserved_columns() {
  static const std::set<std::string> names{"subject_id", "arm", "visit", "visit_day", "in_window",
                                           "status", "qc_score", "qc_flags", "review"};
  return names;
}

const char* const kCoreMetrics[] = {"lesion_pct", "ggo_pct", "solid_pct"};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

EndpointSpec spec_for(const std::string& column) {
  if (ends_with(column, "_pct")) return {column, column + "_change", ChangeKind::kRelative};
  return {column, column + "_abs_change", ChangeKind::kAbsolute};
}

std::string num(const std::optional<double>& v) {
  return v ? fmt::format("{:.17g}", *v) : std::string();
}

// Spreadsheet-protected (core/spreadsheet.hpp), then quoted when RFC 4180 requires it.
std::string csv_field(const std::string& text) {
  const std::string s = spreadsheet_protect(text);
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string digits_rank_text(int digits_rank) {
  return digits_rank > 0 ? std::to_string(digits_rank) : "Inf";
}

int parse_digits_rank(const std::string& text) {
  const std::string l = lower(trim(text));
  if (l == "inf") return 0;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(l.c_str(), &end, 10);
  if (l.empty() || end != l.c_str() + l.size() || errno != 0 || v < 1 || v > 22) {
    throw usage("--digits-rank: want a whole number of significant digits from 1 to 22, or "
                "'inf' for no rounding (R's default); got '" + text + "'");
  }
  return static_cast<int>(v);
}

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

}  // namespace

// ---- visit table ----------------------------------------------------------------------

std::optional<std::size_t> VisitTable::metric_index(const std::string& name) const {
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    if (metrics[i] == name) return i;
  }
  return std::nullopt;
}

VisitTable parse_visit_table(const std::string& csv_text, const std::string& source) {
  const std::vector<CsvRecord> records = parse_csv(csv_text, source);
  if (records.empty()) throw usage(source + ": empty table (no header line)");
  const std::vector<std::string>& header = records[0].fields;
  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i].empty()) throw usage(fmt::format("{} line {}: empty column name", source, records[0].line));
    if (!col.emplace(header[i], i).second) {
      throw usage(fmt::format("{} line {}: duplicate column '{}'", source, records[0].line, header[i]));
    }
  }
  for (const char* required : {"subject_id", "arm", "visit"}) {
    if (!col.count(required)) {
      throw usage(fmt::format("{}: missing required column '{}'", source, required));
    }
  }
  for (std::size_t r = 1; r < records.size(); ++r) {
    if (records[r].fields.size() != header.size()) {
      throw usage(fmt::format("{} line {}: {} fields, header has {}", source, records[r].line,
                              records[r].fields.size(), header.size()));
    }
  }
  // Failed scans carry no measurement: whatever their cells hold is ignored.
  std::vector<bool> failed(records.size(), false);
  if (col.count("status")) {
    for (std::size_t r = 1; r < records.size(); ++r) {
      const std::string st = lower(records[r].fields[col["status"]]);
      failed[r] = st == "failed" || st == "excluded";
    }
  }
  VisitTable table;
  table.source = source;
  // Metric columns: every non-reserved column whose cells are all numbers or missing. The
  // core proportions must be numeric; a stray text cell there is a malformed table.
  std::vector<std::size_t> metric_cols;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (reserved_columns().count(header[c])) continue;
    const bool core = std::find(std::begin(kCoreMetrics), std::end(kCoreMetrics), header[c]) !=
                      std::end(kCoreMetrics);
    bool numeric = true, any = false;
    for (std::size_t r = 1; r < records.size() && numeric; ++r) {
      if (failed[r]) continue;
      bool ok = true;
      const auto v = parse_number(records[r].fields[c], &ok);
      if (!ok && core) {
        throw usage(fmt::format("{} line {}: column '{}' holds '{}', not a number", source,
                                records[r].line, header[c], records[r].fields[c]));
      }
      numeric = ok;
      any = any || v.has_value();
    }
    if (numeric && (any || core)) {
      metric_cols.push_back(c);
      table.metrics.push_back(header[c]);
    }
  }
  if (table.metrics.empty()) throw usage(source + ": no numeric measurement column");

  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    VisitRow row;
    row.line = rec.line;
    row.subject_id = rec.fields[col["subject_id"]];
    row.arm = rec.fields[col["arm"]];
    row.visit = rec.fields[col["visit"]];
    if (row.subject_id.empty() || row.arm.empty() || row.visit.empty()) {
      throw usage(fmt::format("{} line {}: subject_id, arm and visit must not be empty", source, rec.line));
    }
    bool ok = true;
    if (col.count("visit_day")) {
      row.visit_day = parse_number(rec.fields[col["visit_day"]], &ok);
      if (!ok) throw usage(fmt::format("{} line {}: visit_day '{}' is not a number", source, rec.line, rec.fields[col["visit_day"]]));
    }
    if (col.count("in_window")) {
      row.in_window = parse_bool(rec.fields[col["in_window"]], &ok);
      if (!ok) throw usage(fmt::format("{} line {}: in_window '{}' is not true/false", source, rec.line, rec.fields[col["in_window"]]));
    }
    if (col.count("status")) {
      const std::string s = lower(rec.fields[col["status"]]);
      if (s == "failed" || s == "excluded") {
        row.failed = true;
        row.excluded = s == "excluded";
      } else if (!(s.empty() || s == "ok")) {
        throw usage(fmt::format("{} line {}: status '{}' is not ok, failed or excluded", source, rec.line, rec.fields[col["status"]]));
      }
    }
    for (std::size_t c : metric_cols) {
      const auto v = parse_number(rec.fields[c], &ok);
      row.values.push_back(row.failed ? std::nullopt : v);
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

VisitTable read_visit_table(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error(ExitCode::kInput, "visit table not found: " + path);
  }
  return parse_visit_table(read_text_file(path), path);
}

std::vector<std::string> arms_in(const VisitTable& table) {
  std::set<std::string> arms;
  for (const auto& r : table.rows) arms.insert(r.arm);
  return {arms.begin(), arms.end()};
}

// ---- visit schedule -------------------------------------------------------------------

const ScheduledVisit& VisitSchedule::baseline() const {
  for (const auto& v : visits) {
    if (v.baseline) return v;
  }
  throw usage("visit schedule has no baseline visit");
}

const ScheduledVisit* VisitSchedule::find(const std::string& name) const {
  for (const auto& v : visits) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

namespace {

VisitSchedule validated(VisitSchedule s, const std::string& source) {
  if (s.visits.empty()) throw usage(source + ": visit schedule has no [[visit]] entries");
  std::set<std::string> names;
  int baselines = 0;
  for (const auto& v : s.visits) {
    if (v.name.empty()) throw usage(source + ": a visit has an empty name");
    if (!names.insert(v.name).second) throw usage(source + ": visit '" + v.name + "' defined twice");
    if (v.window_days && *v.window_days < 0) throw usage(source + ": visit '" + v.name + "' has a negative window_days");
    baselines += v.baseline ? 1 : 0;
  }
  if (baselines != 1) {
    throw usage(fmt::format("{}: exactly one visit must have baseline = true (found {})", source, baselines));
  }
  std::stable_sort(s.visits.begin(), s.visits.end(),
                   [](const ScheduledVisit& a, const ScheduledVisit& b) { return a.day < b.day; });
  if (!s.visits.front().baseline) {
    throw usage(source + ": the baseline visit must come before every follow-up visit (by day)");
  }
  if (s.visits.size() > 1 && s.visits[1].day == s.visits[0].day) {
    throw usage(source + ": a follow-up visit falls on the baseline day");
  }
  return s;
}

}  // namespace

VisitSchedule default_visit_schedule() {
  VisitSchedule s;
  s.visits = {{"baseline", 0, true, std::nullopt}, {"day10", 10, false, std::nullopt},
              {"day28", 28, false, std::nullopt}};
  return s;
}

VisitSchedule parse_visit_schedule(const std::string& toml_text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    throw usage(fmt::format("{}: invalid TOML at line {}: {}", source, e.source().begin.line,
                            std::string(e.description())));
  }
  const toml::array* arr = doc["visit"].as_array();
  if (!arr) throw usage(source + ": no [[visit]] tables");
  VisitSchedule s;
  for (const toml::node& node : *arr) {
    const toml::table* t = node.as_table();
    if (!t) throw usage(source + ": 'visit' must be an array of tables ([[visit]])");
    ScheduledVisit v;
    const auto name = (*t)["name"].value<std::string>();
    const auto day = (*t)["day"].value<double>();
    if (!name) throw usage(source + ": a [[visit]] has no name");
    if (!day) throw usage(source + ": visit '" + *name + "' has no numeric day");
    v.name = *name;
    v.day = *day;
    if (t->contains("baseline")) {
      const auto b = (*t)["baseline"].value<bool>();
      if (!b) throw usage(source + ": visit '" + v.name + "': baseline must be true or false");
      v.baseline = *b;
    }
    if (t->contains("window_days")) {
      const auto w = (*t)["window_days"].value<double>();
      if (!w) throw usage(source + ": visit '" + v.name + "': window_days must be a number");
      v.window_days = *w;
    }
    for (const auto& kv : *t) {
      const std::string key(kv.first.str());
      if (key != "name" && key != "day" && key != "baseline" && key != "window_days") {
        throw usage(source + ": visit '" + v.name + "': unknown key '" + key + "'");
      }
    }
    s.visits.push_back(v);
  }
  return validated(std::move(s), source);
}

VisitSchedule load_visit_schedule(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error(ExitCode::kInput, "visit schedule not found: " + path);
  }
  return parse_visit_schedule(read_text_file(path), path);
}

// ---- endpoints --------------------------------------------------------------------------

std::vector<EndpointSpec> default_endpoints(const VisitTable& table) {
  std::vector<std::string> columns;
  for (const char* m : kCoreMetrics) {
    if (table.metric_index(m)) columns.emplace_back(m);
  }
  // Volumes in mL (lung_ml, ...) describe the scan; they are not trial endpoints unless asked
  // for with --endpoints.
  for (const auto& m : table.metrics) {
    if (ends_with(m, "_ml")) continue;
    if (std::find(columns.begin(), columns.end(), m) == columns.end()) columns.push_back(m);
  }
  return endpoints_for(table, columns);
}

std::vector<EndpointSpec> endpoints_for(const VisitTable& table,
                                        const std::vector<std::string>& columns) {
  std::vector<EndpointSpec> specs;
  for (const auto& c : columns) {
    if (!table.metric_index(c)) {
      throw usage(fmt::format("{}: no numeric column '{}' (numeric columns: {})", table.source, c,
                              join(table.metrics, ", ")));
    }
    specs.push_back(spec_for(c));
  }
  return specs;
}

const ComparisonRow* EndpointResult::find(const std::string& endpoint, const std::string& visit,
                                          const std::string& population) const {
  for (const auto& c : comparisons) {
    if (c.endpoint == endpoint && c.visit == visit && c.population == population) return &c;
  }
  return nullptr;
}

namespace {

struct Subject {
  std::string id, arm;
  std::size_t first_line = 0;
  std::map<std::string, const VisitRow*> visits;  // usable rows by visit name
};

bool row_in_window(const VisitRow& row, const ScheduledVisit& visit) {
  if (row.in_window) return *row.in_window;  // the caller's own decision wins
  if (row.visit_day && visit.window_days) {
    return std::fabs(*row.visit_day - visit.day) <= *visit.window_days;
  }
  return true;
}

std::vector<Subject> collect_subjects(const VisitTable& table, const VisitSchedule& schedule,
                                      std::vector<std::string>* warnings) {
  std::vector<Subject> subjects;
  std::map<std::string, std::size_t> index;
  std::set<std::string> unknown_visits;
  for (const VisitRow& row : table.rows) {
    auto [it, fresh] = index.emplace(row.subject_id, subjects.size());
    if (fresh) subjects.push_back({row.subject_id, row.arm, row.line, {}});
    Subject& s = subjects[it->second];
    if (s.arm != row.arm) {
      throw usage(fmt::format("{} line {}: subject '{}' is in arm '{}' here but in arm '{}' on line {}",
                              table.source, row.line, row.subject_id, row.arm, s.arm, s.first_line));
    }
    if (!schedule.find(row.visit)) {
      unknown_visits.insert(row.visit);
      continue;
    }
    if (row.failed) continue;
    auto [vit, added] = s.visits.emplace(row.visit, &row);
    if (!added) {
      throw usage(fmt::format("{} line {}: second usable row for subject '{}' visit '{}' (first on line {})",
                              table.source, row.line, row.subject_id, row.visit, vit->second->line));
    }
  }
  for (const auto& v : unknown_visits) {
    warnings->push_back(fmt::format("visit '{}' is not in the visit schedule; its rows are ignored", v));
  }
  return subjects;
}

}  // namespace

EndpointResult run_endpoints(const VisitTable& table, const VisitSchedule& schedule,
                             const EndpointOptions& options) {
  const std::vector<std::string> arms = arms_in(table);
  for (const auto* arm : {&options.arm_a, &options.arm_b}) {
    if (std::find(arms.begin(), arms.end(), *arm) == arms.end()) {
      throw usage(fmt::format("{}: arm '{}' is not in the table (arms: {})", table.source, *arm,
                              join(arms, ", ")));
    }
  }
  if (options.arm_a == options.arm_b) throw usage("the two arms to compare must differ");

  EndpointResult result;
  result.digits_rank = options.wilcoxon.digits_rank;
  result.arm_a = options.arm_a;
  result.arm_b = options.arm_b;
  result.endpoints = options.endpoints.empty() ? default_endpoints(table) : options.endpoints;
  const ScheduledVisit& base = schedule.baseline();
  std::vector<const ScheduledVisit*> follow_ups;
  for (const auto& v : schedule.visits) {
    if (!v.baseline) {
      follow_ups.push_back(&v);
      result.visits.push_back(v.name);
    }
  }
  const std::vector<Subject> subjects = collect_subjects(table, schedule, &result.warnings);
  // Scans a reader excluded: missing like failed ones, and every change they touch is flagged.
  std::set<std::pair<std::string, std::string>> excluded;
  for (const VisitRow& row : table.rows) {
    if (row.excluded) excluded.emplace(row.subject_id, row.visit);
  }
  for (const ScheduledVisit* fu : follow_ups) {
    const bool any = std::any_of(subjects.begin(), subjects.end(),
                                 [&](const Subject& s) { return s.visits.count(fu->name) > 0; });
    if (!any) {
      result.warnings.push_back(fmt::format(
          "visit '{}' has no usable scan in {}: its mITT values are all carried forward",
          fu->name, table.source));
    }
  }

  for (const EndpointSpec& ep : result.endpoints) {
    const auto mi = table.metric_index(ep.column);
    if (!mi) throw usage(fmt::format("{}: no numeric column '{}'", table.source, ep.column));
    // Observed value of this endpoint at a visit: a usable row with the value present.
    auto observed = [&](const Subject& s, const std::string& visit) -> const VisitRow* {
      const auto it = s.visits.find(visit);
      if (it == s.visits.end() || !it->second->values[*mi]) return nullptr;
      return it->second;
    };
    for (std::size_t vi = 0; vi < follow_ups.size(); ++vi) {
      const ScheduledVisit& fu = *follow_ups[vi];
      std::vector<double> values_a[2], values_b[2];  // [mITT, PP]
      for (const Subject& s : subjects) {
        const VisitRow* b = observed(s, base.name);
        for (int pop = 0; pop < 2; ++pop) {
          ChangeRecord rec;
          rec.subject_id = s.id;
          rec.arm = s.arm;
          rec.visit = fu.name;
          rec.endpoint = ep.name;
          rec.population = pop == 0 ? kPopulationMITT : kPopulationPP;
          const VisitRow* v = observed(s, fu.name);
          if (excluded.count({s.id, fu.name}) || excluded.count({s.id, base.name})) {
            rec.flags.push_back("excluded");
          }
          if (!b) {
            rec.flags.push_back("no_baseline");
            if (v) rec.value = *v->values[*mi];
            result.changes.push_back(std::move(rec));
            continue;
          }
          rec.baseline = *b->values[*mi];
          if (pop == 0) {
            if (v) {
              rec.source_visit = fu.name;
              // Observed out of window still counts in mITT; flagged for the audit trail.
              if (!row_in_window(*v, fu)) rec.flags.push_back("out_of_window");
            } else {
              // LOCF: the last observed visit before this one (the baseline at the latest).
              const VisitRow* carried = b;
              rec.source_visit = base.name;
              for (std::size_t k = vi; k-- > 0;) {
                if (const VisitRow* prev = observed(s, follow_ups[k]->name)) {
                  carried = prev;
                  rec.source_visit = follow_ups[k]->name;
                  break;
                }
              }
              v = carried;
              rec.flags.push_back("imputed_locf");
            }
          } else {
            // Per protocol: observed baseline and visit, both inside their windows.
            const bool base_ok = row_in_window(*b, base);
            const bool visit_ok = v && row_in_window(*v, fu);
            if (!base_ok) rec.flags.push_back("baseline_out_of_window");
            if (!v) rec.flags.push_back("missing");
            if (v && !visit_ok) rec.flags.push_back("out_of_window");
            if (v) rec.value = *v->values[*mi];
            if (base_ok && visit_ok) {
              rec.source_visit = fu.name;
            } else {
              v = nullptr;
            }
          }
          if (v) {
            rec.value = *v->values[*mi];
            rec.abs_change = *rec.value - *rec.baseline;
            if (*rec.baseline != 0) {
              rec.rel_change = (*rec.value - *rec.baseline) / *rec.baseline * 100.0;
            } else {
              rec.flags.push_back("baseline_zero");
            }
            // A change that overflows (a subnormal baseline, values near the double range) is
            // not a number to rank: left empty and flagged, and the subject is left out of this
            // comparison only; every other subject and endpoint is analysed as usual.
            for (auto [c, flag] : {std::pair{&rec.abs_change, "abs_change_not_finite"},
                                   std::pair{&rec.rel_change, "rel_change_not_finite"}}) {
              if (*c && !std::isfinite(**c)) {
                c->reset();
                rec.flags.push_back(flag);
              }
            }
            rec.change = ep.kind == ChangeKind::kRelative ? rec.rel_change : rec.abs_change;
            if (!rec.change && std::find(rec.flags.begin(), rec.flags.end(),
                                         ep.kind == ChangeKind::kRelative
                                             ? "rel_change_not_finite"
                                             : "abs_change_not_finite") != rec.flags.end()) {
              result.warnings.push_back(fmt::format(
                  "{} {} {}: subject '{}' has a non-finite {} change (baseline {}, value {}); "
                  "left out of this comparison (flag {})",
                  ep.name, fu.name, rec.population, s.id,
                  ep.kind == ChangeKind::kRelative ? "relative" : "absolute",
                  num(rec.baseline), num(rec.value),
                  ep.kind == ChangeKind::kRelative ? "rel_change_not_finite"
                                                   : "abs_change_not_finite"));
            }
            rec.included = rec.change.has_value();
            if (rec.included) {
              if (s.arm == options.arm_a) values_a[pop].push_back(*rec.change);
              if (s.arm == options.arm_b) values_b[pop].push_back(*rec.change);
            }
          }
          result.changes.push_back(std::move(rec));
        }
      }
      for (int pop = 0; pop < 2; ++pop) {
        ComparisonRow row;
        row.endpoint = ep.name;
        row.visit = fu.name;
        row.population = pop == 0 ? kPopulationMITT : kPopulationPP;
        row.arm_a = options.arm_a;
        row.arm_b = options.arm_b;
        row.kind = ep.kind;
        row.conf_level = options.wilcoxon.conf_level;
        const double conf = options.wilcoxon.conf_level;
        row.a = summarize_group(values_a[pop], conf);
        row.b = summarize_group(values_b[pop], conf);
        if (!values_a[pop].empty() && !values_b[pop].empty()) {
          row.test = wilcoxon_rank_sum(values_a[pop], values_b[pop], options.wilcoxon);
          for (const auto& w : row.test->warnings) {
            result.warnings.push_back(fmt::format("{} {} {}: {}", ep.name, fu.name, row.population, w));
          }
        } else {
          result.warnings.push_back(fmt::format("{} {} {}: an arm has no value, no test", ep.name,
                                                fu.name, row.population));
        }
        result.comparisons.push_back(std::move(row));
      }
    }
  }
  return result;
}

// ---- writers ----------------------------------------------------------------------------

std::string changes_csv(const EndpointResult& result) {
  std::ostringstream out;
  out << "subject_id,arm,endpoint,visit,population,baseline,value,source_visit,abs_change,"
         "rel_change,change,included,flags\n";
  for (const auto& c : result.changes) {
    out << csv_field(c.subject_id) << ',' << csv_field(c.arm) << ',' << c.endpoint << ','
        << csv_field(c.visit) << ',' << c.population << ',' << num(c.baseline) << ','
        << num(c.value) << ',' << csv_field(c.source_visit) << ',' << num(c.abs_change) << ','
        << num(c.rel_change) << ',' << num(c.change) << ',' << (c.included ? "true" : "false")
        << ',' << join(c.flags, ";") << '\n';
  }
  return out.str();
}

std::string comparison_csv(const EndpointResult& result) {
  std::ostringstream out;
  out << "endpoint,visit,population,arm_a,n_a,median_a,median_ci_low_a,median_ci_high_a,"
         "arm_b,n_b,median_b,median_ci_low_b,median_ci_high_b,hl_estimate,hl_ci_low,hl_ci_high,"
         "w_statistic,p_value,method,change,q1_a,q3_a,median_ci_coverage_a,q1_b,q3_b,"
         "median_ci_coverage_b,hl_conf_level,digits_rank,test_flags\n";
  for (const auto& r : result.comparisons) {
    const auto& t = r.test;
    out << r.endpoint << ',' << csv_field(r.visit) << ',' << r.population << ','
        << csv_field(r.arm_a) << ',' << r.a.n << ',' << num(r.a.median) << ','
        << num(r.a.median_ci_low) << ',' << num(r.a.median_ci_high) << ',' << csv_field(r.arm_b)
        << ',' << r.b.n << ',' << num(r.b.median) << ',' << num(r.b.median_ci_low) << ','
        << num(r.b.median_ci_high) << ',' << num(t ? t->estimate : std::nullopt) << ','
        << num(t ? t->ci_low : std::nullopt) << ',' << num(t ? t->ci_high : std::nullopt) << ','
        << num(t ? std::optional<double>(t->w) : std::nullopt) << ','
        << num(t ? t->p_value : std::nullopt) << ',' << (t ? t->method() : "") << ','
        << (r.kind == ChangeKind::kRelative ? "relative" : "absolute") << ',' << num(r.a.q1)
        << ',' << num(r.a.q3) << ',' << num(r.a.median_ci_coverage) << ',' << num(r.b.q1) << ','
        << num(r.b.q3) << ',' << num(r.b.median_ci_coverage) << ','
        << num(t && t->ci_low ? std::optional<double>(t->achieved_conf_level) : std::nullopt)
        << ',' << (t ? digits_rank_text(t->digits_rank) : "") << ','
        << (t ? join(t->flags, ";") : "") << '\n';
  }
  return out.str();
}

namespace {

std::string outcome_label(const ComparisonRow& r, const EndpointSpec* spec) {
  const std::string column = spec ? spec->column : r.endpoint;
  std::string what;
  if (column == "lesion_pct") {
    what = "Change in the total lesion proportion (%) of the whole lung volume";
  } else if (column == "solid_pct") {
    what = "Change in solid component lesion proportion (%) of whole lung volume";
  } else if (column == "ggo_pct") {
    what = "Change in ground-glass lesion proportion (%) of whole lung volume";
  } else {
    what = fmt::format("Change in {} ({})", column,
                       r.kind == ChangeKind::kRelative ? "relative, %" : "absolute");
  }
  return what + " from baseline to " + r.visit;
}

std::string fixed2(const std::optional<double>& v) { return v ? fmt::format("{:.2f}", *v) : "NA"; }

std::string median_iqr(const GroupSummary& g) {
  if (!g.median) return "NA";
  return fmt::format("{} ({}, {})", fixed2(g.median), fixed2(g.q1), fixed2(g.q3));
}

std::string p_text(const std::optional<double>& p) {
  if (!p) return "NA";
  if (*p < 0.001) return "<0.001";
  return fmt::format("{:.3f}", *p);
}

}  // namespace

std::string ties_sentence(int digits_rank) {
  if (digits_rank > 0) {
    return fmt::format(
        "Ties: changes ranked after rounding to {} significant digits (R: wilcox.test(x, y, "
        "conf.int = TRUE, digits.rank = {})).",
        digits_rank, digits_rank);
  }
  return "Ties: changes ranked as they are (R's default wilcox.test(x, y, conf.int = TRUE), "
         "digits.rank = Inf).";
}

std::string table2_markdown(const EndpointResult& result) {
  std::ostringstream out;
  for (const char* pop : {kPopulationMITT, kPopulationPP}) {
    out << "### Table 2. Imaging outcomes in the " << pop << " population ("
        << (std::string(pop) == kPopulationMITT ? "missing scans: last observation carried forward"
                                                : "observed in-window scans, no imputation")
        << ")\n\n";
    out << "| Outcome | " << result.arm_a << " | " << result.arm_b
        << " | Difference " << result.arm_a << " - " << result.arm_b
        << " (95% CI) | P | n |\n|---|---|---|---|---|---|\n";
    for (const auto& r : result.comparisons) {
      if (r.population != pop) continue;
      const EndpointSpec* spec = nullptr;
      for (const auto& e : result.endpoints) {
        if (e.name == r.endpoint) spec = &e;
      }
      std::string diff = "NA";
      if (r.test && r.test->estimate) {
        // Tiny arms: the exact interval's own level when 95% is out of reach.
        const bool lower_level = r.test->ci_low && r.test->achieved_conf_level < r.conf_level;
        diff = fmt::format("{} ({}, {}{})", fixed2(r.test->estimate), fixed2(r.test->ci_low),
                           fixed2(r.test->ci_high),
                           lower_level ? fmt::format("; {:.1f}% CI", 100 * r.test->achieved_conf_level)
                                       : std::string());
      }
      out << "| " << outcome_label(r, spec) << " | " << median_iqr(r.a) << " | "
          << median_iqr(r.b) << " | " << diff << " | "
          << p_text(r.test ? r.test->p_value : std::nullopt) << " | " << r.a.n << " / " << r.b.n
          << " |\n";
    }
    out << "\n";
  }
  out << "Data are median (interquartile range; quantile type 7). Differences are "
         "Hodges-Lehmann estimates with 95% CI; P from the two-sided Wilcoxon rank-sum test "
         "(exact when both arms have < 50 values and no ties, otherwise normal approximation "
         "with continuity correction). Relative change = (visit - baseline) / baseline x 100. "
      << ties_sentence(result.digits_rank) << "\n";
  return out.str();
}

void write_endpoint_outputs(const EndpointResult& result, const std::string& dir) {
  ensure_directory(dir);
  const std::filesystem::path d(dir);
  write_text_atomic((d / "changes.csv").string(), changes_csv(result));
  write_text_atomic((d / "comparison.csv").string(), comparison_csv(result));
  write_text_atomic((d / "table2.md").string(), table2_markdown(result));
}

}  // namespace lungvol::trial
