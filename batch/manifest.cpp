#include "batch/manifest.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "report/csv.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

[[noreturn]] void fail(const std::string& source, std::size_t line, const std::string& what) {
  throw Error(ExitCode::kUsage, source + ":" + std::to_string(line) + ": " + what);
}

// Levenshtein distance, for "did you mean" in messages.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool is_known_column(const std::string& name) {
  const auto& r = manifest_required_columns();
  const auto& o = manifest_optional_columns();
  return std::find(r.begin(), r.end(), name) != r.end() ||
         std::find(o.begin(), o.end(), name) != o.end();
}

// The header's names, trimmed, for messages.
std::string header_text(const std::vector<std::string>& header) {
  std::vector<std::string> names;
  for (const auto& h : header) names.push_back("'" + printable(trim(h), 40) + "'");
  return join(names);
}

}  // namespace

const std::vector<std::string>& manifest_required_columns() {
  static const std::vector<std::string> k = {"subject_id", "arm", "visit", "path"};
  return k;
}

const std::vector<std::string>& manifest_optional_columns() {
  static const std::vector<std::string> k = {"visit_day", "series_uid",  "site",
                                             "population", "lungs_mask", "lesions_mask"};
  return k;
}

void require_path_component(const std::string& what, const std::string& name,
                            const std::string& where) {
  const std::string problem = path_component_problem(name);
  if (!problem.empty()) {
    throw Error(ExitCode::kUsage, where + ": " + what + " '" + printable(name) +
                                      "' cannot name a folder: " + problem);
  }
}

void check_schedule_names(const trial::VisitSchedule& schedule, const std::string& source) {
  for (const auto& v : schedule.visits) {
    require_path_component("visit", v.name, source);
  }
}

void require_uid(const std::string& uid, const std::string& where) {
  const std::string problem = uid_problem(uid);
  if (!problem.empty()) {
    throw Error(ExitCode::kUsage, where + ": series_uid '" + printable(uid) +
                                      "' is not a DICOM UID: " + problem);
  }
}

Manifest parse_manifest(const std::string& csv_text, const std::string& source,
                        const std::string& base_dir, const trial::VisitSchedule& schedule,
                        const ManifestOptions& options) {
  report::CsvParseOptions po;
  po.skip_blank_records = true;  // blank lines, lines of spaces, Excel's ",,," rows
  // The header line as written: a semicolon-separated file (Excel's CSV in locales with a
  // decimal comma) is read as such when its header, split at ';', names only manifest columns,
  // and named as such otherwise.
  std::string first_line;
  {
    std::size_t start = csv_text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    while (start < csv_text.size()) {
      std::size_t end = csv_text.find('\n', start);
      if (end == std::string::npos) end = csv_text.size();
      const std::string line = csv_text.substr(start, end - start);
      if (line.find_first_not_of(" \t\r,;") != std::string::npos) {
        first_line = line;
        break;
      }
      start = end + 1;
    }
  }
  char delimiter = ',';
  if (first_line.find(';') != std::string::npos && first_line.find(',') == std::string::npos) {
    po.delimiter = ';';
    report::CsvTable probe;
    bool ok = true;
    try {
      probe = report::parse_csv(csv_text, source, po);
    } catch (const Error&) {
      ok = false;
    }
    ok = ok && probe.header.size() > 1;
    for (std::size_t i = 0; ok && i < probe.header.size(); ++i) {
      const std::string h = trim(probe.header[i]);
      ok = is_known_column(h) || std::find(options.ignore_columns.begin(),
                                           options.ignore_columns.end(), h) !=
                                     options.ignore_columns.end();
    }
    if (!ok) {
      fail(source, 1,
           "the header holds ';' ('" + printable(first_line, 100) +
               "'): a semicolon-separated file whose columns are not all manifest columns; "
               "save the manifest as comma-separated CSV (columns: " +
               join(manifest_required_columns()) + ", optional " +
               join(manifest_optional_columns()) + ")");
    }
    delimiter = ';';
    log::info("{}: semicolon-separated manifest (as Excel writes CSV in some locales)", source);
  }
  report::CsvTable t;
  try {
    t = report::parse_csv(csv_text, source, po);
  } catch (const Error& e) {
    throw Error(ExitCode::kUsage, e.what());  // a malformed manifest is a usage problem
  }
  if (t.header.empty()) fail(source, 1, "empty manifest (no header line)");
  auto line_of = [&](std::size_t row) { return t.row_lines.at(row); };

  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < t.header.size(); ++i) {
    const std::string name = trim(t.header[i]);
    if (name.empty()) {
      // An unnamed column is tolerated only when it holds nothing (a trailing separator).
      for (std::size_t r = 0; r < t.rows.size(); ++r) {
        if (!trim(t.rows[r][i]).empty()) {
          fail(source, line_of(r), "column " + std::to_string(i + 1) +
                                       " has no name in the header but holds '" +
                                       printable(t.rows[r][i], 40) + "'");
        }
      }
      continue;
    }
    if (col.count(name)) fail(source, t.header_line, "column '" + name + "' appears twice");
    col[name] = i;
  }
  for (const auto& req : manifest_required_columns()) {
    if (!col.count(req)) {
      fail(source, t.header_line,
           "missing required column '" + req + "' (required: " + join(manifest_required_columns()) +
               "); the header found is: " + header_text(t.header));
    }
  }
  for (const auto& [name, index] : col) {
    if (is_known_column(name)) continue;
    if (std::find(options.ignore_columns.begin(), options.ignore_columns.end(), name) !=
        options.ignore_columns.end()) {
      continue;
    }
    std::string best;
    std::size_t best_d = 4;
    for (const auto* list : {&manifest_required_columns(), &manifest_optional_columns()}) {
      for (const auto& k : *list) {
        const std::size_t d = edit_distance(name, k);
        if (d < best_d) best_d = d, best = k;
      }
    }
    fail(source, t.header_line,
         "unknown column '" + printable(name, 60) + "'" +
             (best.empty() ? std::string() : " (did you mean '" + best + "'?)") +
             "; manifest columns: " + join(manifest_required_columns()) + ", optional " +
             join(manifest_optional_columns()) +
             ". To keep a column lungvol does not use, pass --ignore-column '" +
             printable(name, 60) + "'");
  }
  auto cell = [&](const std::vector<std::string>& row, const char* name) -> std::string {
    auto it = col.find(name);
    return it == col.end() ? std::string{} : trim(row[it->second]);
  };

  Manifest m;
  m.source = source;
  m.sha256 = sha256_hex(csv_text);
  m.delimiter = delimiter;
  std::map<std::string, std::string> arm_of;
  std::map<std::pair<std::string, std::string>, std::size_t> seen;
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    ManifestEntry e;
    e.line = line_of(r);
    e.subject_id = cell(row, "subject_id");
    e.arm = cell(row, "arm");
    e.visit = cell(row, "visit");
    e.path = cell(row, "path");
    e.series_uid = cell(row, "series_uid");
    e.site = cell(row, "site");
    e.population = cell(row, "population");
    for (const auto* f : {&e.subject_id, &e.arm, &e.visit, &e.path}) {
      if (f->empty()) {
        const char* name = f == &e.subject_id ? "subject_id"
                           : f == &e.arm      ? "arm"
                           : f == &e.visit    ? "visit"
                                              : "path";
        fail(source, e.line, std::string("empty ") + name);
      }
    }
    const std::string where = source + ":" + std::to_string(e.line);
    require_path_component("subject_id", e.subject_id, where);
    require_path_component("visit", e.visit, where);
    require_path_component("arm", e.arm, where);
    if (!e.series_uid.empty()) require_uid(e.series_uid, where);
    if (!schedule.find(e.visit)) {
      std::string names;
      for (const auto& v : schedule.visits) names += (names.empty() ? "" : ", ") + v.name;
      fail(source, e.line, "visit '" + e.visit + "' is not in the visit schedule (" + names + ")");
    }
    const std::string day = cell(row, "visit_day");
    if (!day.empty() && day != "NA") {
      std::size_t used = 0;
      double v = 0;
      try {
        v = std::stod(day, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != day.size() || !std::isfinite(v)) {
        fail(source, e.line, "visit_day '" + day + "' is not a number");
      }
      e.visit_day = v;
    }
    const auto [it, fresh] = arm_of.emplace(e.subject_id, e.arm);
    if (!fresh && it->second != e.arm) {
      fail(source, e.line, "subject '" + e.subject_id + "' is in arm '" + e.arm +
                               "' here but in arm '" + it->second + "' earlier");
    }
    const auto key = std::make_pair(e.subject_id, e.visit);
    if (seen.count(key)) {
      fail(source, e.line, "subject '" + e.subject_id + "' visit '" + e.visit +
                               "' already listed on line " + std::to_string(seen[key]));
    }
    seen[key] = e.line;
    const auto resolve = [&](const std::string& rel) {
      if (rel.empty()) return std::string{};
      const fs::path p(rel);
      return p.is_absolute() ? p.lexically_normal().string()
                             : (fs::path(base_dir) / p).lexically_normal().string();
    };
    e.full_path = resolve(e.path);
    e.lungs_mask = resolve(cell(row, "lungs_mask"));
    e.lesions_mask = resolve(cell(row, "lesions_mask"));
    if (!e.lesions_mask.empty() && e.lungs_mask.empty()) {
      fail(source, e.line, "lesions_mask needs lungs_mask on the same row");
    }
    m.entries.push_back(std::move(e));
  }
  if (m.entries.empty()) fail(source, t.header_line + 1, "manifest has a header but no scans");
  return m;
}

Manifest read_manifest(const std::string& path, const trial::VisitSchedule& schedule,
                       const ManifestOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ExitCode::kInput, "manifest not found: '" + path + "'");
  }
  const std::string text = read_text_file(path);
  const fs::path abs = fs::absolute(path, ec);
  return parse_manifest(text, path, abs.parent_path().string(), schedule, options);
}

std::optional<std::int64_t> days_from_dicom_date(const std::string& s) {
  if (s.size() != 8) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  const int y = std::stoi(s.substr(0, 4));
  const int mo = std::stoi(s.substr(4, 2));
  const int d = std::stoi(s.substr(6, 2));
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap ? 1 : 0)) {
    return std::nullopt;
  }
  // Days from civil date: shift the year to start in March so the leap day is last.
  const std::int64_t yy = y - (mo <= 2 ? 1 : 0);
  const std::int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  const std::int64_t yoe = yy - era * 400;
  const std::int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

VisitTiming visit_timing(const trial::ScheduledVisit& visit, std::optional<double> visit_day,
                         const std::string& study_date, const std::string& baseline_study_date) {
  VisitTiming t;
  if (visit_day) {
    t.days_from_baseline = visit_day;
  } else if (visit.baseline) {
    t.days_from_baseline = 0.0;
  } else {
    const auto d = days_from_dicom_date(study_date);
    const auto b = days_from_dicom_date(baseline_study_date);
    if (d && b) t.days_from_baseline = static_cast<double>(*d - *b);
  }
  if (visit.window_days && t.days_from_baseline) {
    t.in_window = std::abs(*t.days_from_baseline - visit.day) <= *visit.window_days;
  }
  return t;
}

}  // namespace lungvol::batch
