#include "export/outdir.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <set>

#include "batch/derived.hpp"
#include "batch/exports.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/version.hpp"

namespace lungvol::xlsx {
namespace {

namespace fs = std::filesystem;

report::CsvTable read_required(const std::string& path, const std::string& hint) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ExitCode::kInput, "'" + path + "' not found" + (hint.empty() ? "" : " (" + hint + ")"));
  }
  return report::read_csv(path);
}

// Inserts a `unit` column after `endpoint`; unit_of(row) gives its value.
template <class F>
void add_unit_column(Sheet& s, const report::CsvTable& t, F unit_of) {
  const std::size_t at = t.column("endpoint") + 1;
  s.header.insert(s.header.begin() + std::ptrdiff_t(at), "unit");
  for (std::size_t r = 0; r < s.rows.size(); ++r) {
    const std::optional<std::string> u = unit_of(t.rows[r]);
    s.rows[r].insert(s.rows[r].begin() + std::ptrdiff_t(at), u ? Cell::of(*u) : Cell::empty());
  }
}

// Table 2 numbers are medians of `change`: % for relative changes, else the variable's unit.
std::optional<std::string> comparison_unit(const report::CsvTable& t,
                                           const std::vector<std::string>& row) {
  const auto change = t.find_column("change");
  if (change && row[*change] == "relative") return std::string("%");
  return unit_for_column(endpoint_base_column(row[t.column("endpoint")]));
}

class Db {
 public:
  explicit Db(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error(ExitCode::kInput, "cannot open '" + path + "': " + msg);
    }
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  sqlite3* get() const { return db_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ExitCode::kInput, "'" + path_ + "': " + what + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A results store written by `lungvol batch` (table meta with a schema_version), as opposed to
// a hand-made database that only holds a runs table.
bool is_lungvol_store(const std::string& sqlite_path) {
  Db db(sqlite_path);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                         nullptr) != SQLITE_OK) {
    return false;  // no meta table
  }
  const bool found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

// The workbook's `source` sheet: where every number comes from.
Sheet source_sheet(const batch::BatchState& s, const nlohmann::json& endpoint_provenance) {
  Sheet sheet;
  sheet.name = "source";
  sheet.header = {"item", "value"};
  const auto add = [&](const std::string& k, const std::string& v) {
    sheet.rows.push_back({Cell::of(k), Cell::of(v)});
  };
  std::string versions;
  for (const auto& v : s.software_versions) versions += (versions.empty() ? "" : ", ") + v;
  add("results store", s.db_path);
  add("results state", s.results_state);
  add("results generation", std::to_string(s.generation));
  add("protocol", s.protocol_name);
  add("protocol version", s.protocol_version);
  add("protocol sha256", s.protocol_sha256);
  add("scans measured by lungvol", versions);
  add("visit schedule", s.schedule_source);
  add("endpoint computed at", endpoint_provenance.value("created_at", ""));
  add("endpoint computed by lungvol",
      endpoint_provenance.contains("software")
          ? endpoint_provenance["software"].value("version", "")
          : std::string());
  add("workbook written by lungvol", kSoftwareVersion);
  return sheet;
}

bool has_runs_table(const std::string& sqlite_path) {
  Db db(sqlite_path);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'",
                         -1, &st, nullptr) != SQLITE_OK) {
    db.fail("reading the schema");
  }
  const bool found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

Sheet measurements_provenance(const std::string& path) {
  const report::CsvTable t = report::read_csv(path);
  static const char* kColumns[] = {"series_instance_uid", "input_sha256", "protocol",
                                   "protocol_version", "protocol_sha256", "software_version",
                                   "analyzed_at"};
  std::vector<std::size_t> cols;
  report::CsvTable p;
  p.source = path;
  for (const char* c : kColumns) {
    if (const auto at = t.find_column(c)) {
      cols.push_back(*at);
      p.header.push_back(c);
    }
  }
  if (cols.empty()) {
    throw Error(ExitCode::kInput, "'" + path + "' has none of the provenance columns "
                                  "(series_instance_uid, input_sha256, protocol, ...)");
  }
  // One row per distinct provenance record, in file order (a scan has one per metric row).
  std::set<std::vector<std::string>> seen;
  for (const auto& row : t.rows) {
    std::vector<std::string> rec;
    for (std::size_t c : cols) rec.push_back(row[c]);
    if (seen.insert(rec).second) p.rows.push_back(std::move(rec));
  }
  return sheet_from_csv("provenance", p);
}

}  // namespace

Sheet runs_sheet(const std::string& sqlite_path) {
  Db db(sqlite_path);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT * FROM runs ORDER BY rowid", -1, &st, nullptr) != SQLITE_OK) {
    db.fail("reading table runs");
  }
  Sheet s;
  s.name = "provenance";
  const int nc = sqlite3_column_count(st);
  for (int c = 0; c < nc; ++c) {
    const std::string name = sqlite3_column_name(st, c);
    const char* decl = sqlite3_column_decltype(st, c);
    const bool numeric = decl && (std::string(decl) == "REAL" || std::string(decl) == "INTEGER");
    s.header.push_back(header_with_unit(name, numeric ? unit_for_column(name) : std::nullopt));
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<Cell> row(static_cast<std::size_t>(nc));
    for (int c = 0; c < nc; ++c) {
      switch (sqlite3_column_type(st, c)) {
        case SQLITE_INTEGER:
        case SQLITE_FLOAT: row[std::size_t(c)] = Cell::of(sqlite3_column_double(st, c)); break;
        case SQLITE_TEXT:
          row[std::size_t(c)] = Cell::of(std::string(
              reinterpret_cast<const char*>(sqlite3_column_text(st, c)),
              static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
          break;
        default: break;  // NULL and BLOB: empty
      }
    }
    s.rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) db.fail("reading table runs");
  return s;
}

namespace {

// A batch folder with its results store: every sheet from the store's current state; the
// endpoint files must have been computed from that very state.
std::vector<Sheet> store_sheets(const std::string& outdir, const std::string& sqlite_path,
                                std::string* provenance_source) {
  const std::string dir = (fs::path(outdir) / "").string();
  batch::Store store(sqlite_path, batch::Store::Mode::kReadOnly);
  const batch::BatchState state = batch::read_batch_state(store, outdir, "");
  const std::string endpoint_dir = dir + "endpoint";
  const std::string hint = "run 'lungvol endpoint " + outdir + "' first";
  // Missing files first (the clearer message), then their state.
  read_required(endpoint_dir + "/changes.csv", hint);
  read_required(endpoint_dir + "/comparison.csv", hint);
  const std::string stale = batch::staleness(endpoint_dir, state);
  if (!stale.empty()) {
    throw Error(ExitCode::kInput,
                "export: the endpoint results are stale: " + stale +
                    ". Run 'lungvol endpoint " + outdir + "' again, so that the workbook's "
                    "changes and comparison belong to the visits it shows");
  }
  std::vector<Sheet> sheets;
  sheets.push_back(sheet_from_csv("visits", batch::visits_wide_table(store)));
  const report::CsvTable changes = report::read_csv(endpoint_dir + "/changes.csv");
  Sheet ch = sheet_from_csv("changes", changes);
  for (std::string& h : ch.header)
    if (h == "rel_change") h = "rel_change (%)";
  add_unit_column(ch, changes, [&](const std::vector<std::string>& row) {
    return unit_for_column(endpoint_base_column(row[changes.column("endpoint")]));
  });
  sheets.push_back(std::move(ch));
  const report::CsvTable comparison = report::read_csv(endpoint_dir + "/comparison.csv");
  Sheet cmp = sheet_from_csv("comparison", comparison);
  add_unit_column(cmp, comparison,
                  [&](const std::vector<std::string>& row) { return comparison_unit(comparison, row); });
  sheets.push_back(std::move(cmp));
  sheets.push_back(runs_sheet(sqlite_path));
  sheets.push_back(source_sheet(state, *batch::read_provenance(endpoint_dir)));
  if (provenance_source) *provenance_source = sqlite_path;
  return sheets;
}

}  // namespace

std::vector<Sheet> outdir_sheets(const std::string& outdir, std::string* provenance_source) {
  std::error_code ec;
  if (!fs::is_directory(outdir, ec)) {
    throw Error(ExitCode::kInput, "output folder '" + outdir + "' not found");
  }
  const std::string dir = (fs::path(outdir) / "").string();
  const std::string sqlite_path = dir + "results.sqlite";
  if (fs::is_regular_file(sqlite_path, ec) && is_lungvol_store(sqlite_path)) {
    return store_sheets(outdir, sqlite_path, provenance_source);
  }
  // A folder of tables without a results store (copied or hand-made): the CSV files as they are.
  std::vector<Sheet> sheets;
  sheets.push_back(sheet_from_csv(
      "visits", read_required(dir + "visits_wide.csv", "written by 'lungvol batch'")));

  const std::string hint = "run 'lungvol endpoint " + outdir + "' first";
  const report::CsvTable changes = read_required(dir + "endpoint/changes.csv", hint);
  Sheet ch = sheet_from_csv("changes", changes);
  for (std::string& h : ch.header)
    if (h == "rel_change") h = "rel_change (%)";  // (value - baseline) / baseline x 100
  add_unit_column(ch, changes, [&](const std::vector<std::string>& row) {
    return unit_for_column(endpoint_base_column(row[changes.column("endpoint")]));
  });
  sheets.push_back(std::move(ch));

  const report::CsvTable comparison = read_required(dir + "endpoint/comparison.csv", hint);
  Sheet cmp = sheet_from_csv("comparison", comparison);
  add_unit_column(cmp, comparison,
                  [&](const std::vector<std::string>& row) { return comparison_unit(comparison, row); });
  sheets.push_back(std::move(cmp));

  const std::string measurements_path = dir + "measurements.csv";
  if (fs::is_regular_file(sqlite_path, ec) && has_runs_table(sqlite_path)) {
    sheets.push_back(runs_sheet(sqlite_path));
    if (provenance_source) *provenance_source = sqlite_path;
  } else if (fs::is_regular_file(measurements_path, ec)) {
    sheets.push_back(measurements_provenance(measurements_path));
    if (provenance_source) *provenance_source = measurements_path;
  } else {
    throw Error(ExitCode::kInput, "no provenance in '" + outdir +
                                      "': neither results.sqlite (table runs) nor measurements.csv");
  }
  return sheets;
}

ExportSummary export_outdir(const std::string& outdir, const std::string& xlsx_path) {
  ExportSummary summary;
  const std::vector<Sheet> sheets = outdir_sheets(outdir, &summary.provenance_source);
  write_workbook(xlsx_path, sheets);
  for (const Sheet& s : sheets) {
    summary.sheets.push_back(s.name);
    summary.rows.push_back(s.rows.size());
  }
  return summary;
}

}  // namespace lungvol::xlsx
