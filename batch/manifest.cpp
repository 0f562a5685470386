#include "batch/manifest.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
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

// Subject ids and visits name folders under OUTDIR/scans, so they must not escape it.
bool usable_as_folder_name(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

// Physical line where each CSV record starts (the CSV reader skips blank lines and lets quoted
// fields span lines, so record index + 2 is not always right).
std::vector<std::size_t> record_lines(const std::string& text) {
  std::vector<std::size_t> lines;
  std::size_t line = 1;
  bool in_quotes = false, at_record_start = true, record_has_text = false;
  std::size_t start_line = 1;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : '\n';
    if (at_record_start) {
      start_line = line;
      at_record_start = false;
      record_has_text = false;
    }
    if (c == '"') in_quotes = !in_quotes;
    if (c == '\n' && !in_quotes) {
      if (record_has_text) lines.push_back(start_line);
      at_record_start = true;
    } else if (c != '\r') {
      record_has_text = true;
    }
    if (c == '\n') ++line;
  }
  return lines;
}

}  // namespace

Manifest parse_manifest(const std::string& csv_text, const std::string& source,
                        const std::string& base_dir, const trial::VisitSchedule& schedule) {
  report::CsvTable t;
  try {
    t = report::parse_csv(csv_text, source);
  } catch (const Error& e) {
    throw Error(ExitCode::kUsage, e.what());  // a malformed manifest is a usage problem
  }
  if (t.header.empty()) fail(source, 1, "empty manifest (no header line)");
  const std::vector<std::size_t> lines = record_lines(csv_text);
  auto line_of = [&](std::size_t row) { return row + 1 < lines.size() ? lines[row + 1] : row + 2; };

  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < t.header.size(); ++i) {
    const std::string name = trim(t.header[i]);
    if (col.count(name)) fail(source, 1, "column '" + name + "' appears twice");
    col[name] = i;
  }
  for (const char* req : {"subject_id", "arm", "visit", "path"}) {
    if (!col.count(req)) {
      fail(source, 1, std::string("missing required column '") + req +
                          "' (required: subject_id, arm, visit, path)");
    }
  }
  auto cell = [&](const std::vector<std::string>& row, const char* name) -> std::string {
    auto it = col.find(name);
    return it == col.end() ? std::string{} : trim(row[it->second]);
  };

  Manifest m;
  m.source = source;
  m.sha256 = sha256_hex(csv_text);
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
    if (!usable_as_folder_name(e.subject_id)) {
      fail(source, e.line, "subject_id '" + e.subject_id + "' cannot name a folder (no '/', '\\', '.' or '..')");
    }
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
  if (m.entries.empty()) fail(source, 2, "manifest has a header but no scans");
  return m;
}

Manifest read_manifest(const std::string& path, const trial::VisitSchedule& schedule) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ExitCode::kInput, "manifest not found: '" + path + "'");
  }
  const std::string text = read_text_file(path);
  const fs::path abs = fs::absolute(path, ec);
  return parse_manifest(text, path, abs.parent_path().string(), schedule);
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
