#include "export/outdir.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "batch/derived.hpp"
#include "batch/exports.hpp"
#include "batch/qc.hpp"
#include "batch/review.hpp"
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
  add("review", s.review);
  add("locked and fully reviewed", s.review_locked ? "yes" : "no");
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

// Readable outcome names for Table 2 (the paper's wording for the three lesion proportions).
std::string outcome_name(const std::string& endpoint, const std::string& kind) {
  static const std::map<std::string, std::string> kNames = {
      {"lesion_pct", "Total lesion proportion (% of whole lung volume)"},
      {"ggo_pct", "Ground-glass lesion proportion (% of whole lung volume)"},
      {"solid_pct", "Solid component lesion proportion (% of whole lung volume)"},
      {"mean_hu", "Mean lung density (HU)"},
      {"median_hu", "Median lung density (HU)"},
      {"p15_hu", "15th percentile lung density, PD15 (HU)"},
      {"p10_hu", "10th percentile lung density (HU)"},
      {"laa950_pct", "Low-attenuation area below -950 HU (% of lung)"},
      {"laa910_pct", "Low-attenuation area below -910 HU (% of lung)"},
      {"laa856_pct", "Low-attenuation area below -856 HU (% of lung)"},
      {"haa_pct", "High-attenuation area (% of lung)"},
      {"mass_g", "Lung mass (g)"},
      {"lung_ml", "Lung volume (mL)"},
      {"sd_hu", "Lung density SD (HU)"},
  };
  const std::string base = endpoint_base_column(endpoint);
  const auto it = kNames.find(base);
  const std::string name = it == kNames.end() ? base : it->second;
  return "Change in " + name + (kind == "relative" ? ", relative change (%)" : ", absolute change");
}

std::string fixed2(const std::string& v) {
  const auto d = parse_csv_number(v);
  return d ? fmt::format("{:.2f}", *d) : std::string("NA");
}

std::string p_text(const std::string& v) {
  const auto d = parse_csv_number(v);
  if (!d) return "NA";
  if (*d < 0.001) return "<0.001";
  return fmt::format("{:.3f}", *d);
}

}  // namespace

Sheet table2_sheet(const report::CsvTable& comparison, const report::CsvTable& changes,
                   const std::string& review_sentence, const std::string& source) {
  Sheet sheet;
  sheet.name = "Table 2";
  const auto col = [&](const char* name) { return comparison.find_column(name); };
  const auto get = [&](const std::vector<std::string>& row, const char* name) {
    const auto c = col(name);
    return c ? row[*c] : std::string();
  };
  std::string arm_a = "arm A", arm_b = "arm B";
  if (!comparison.rows.empty()) {
    arm_a = get(comparison.rows[0], "arm_a");
    arm_b = get(comparison.rows[0], "arm_b");
  }
  sheet.header = {"Outcome", "Visit", arm_a + ": median (IQR)", arm_b + ": median (IQR)",
                  "Difference " + arm_a + " - " + arm_b + " (95% CI)", "P", "n (" + arm_a + " / " + arm_b + ")",
                  "Notes"};
  // Footnotes: subjects the reader excluded, and zero baselines (no relative change), per
  // endpoint x visit x population.
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::string>> excluded, zero;
  const auto cc = [&](const char* name) { return changes.find_column(name); };
  if (cc("flags") && cc("subject_id") && cc("endpoint") && cc("visit") && cc("population")) {
    for (const auto& r : changes.rows) {
      const auto key = std::make_tuple(r[*cc("endpoint")], r[*cc("visit")], r[*cc("population")]);
      const std::string& f = r[*cc("flags")];
      if (f.find("excluded") != std::string::npos) excluded[key].push_back(r[*cc("subject_id")]);
      if (f.find("baseline_zero") != std::string::npos) zero[key].push_back(r[*cc("subject_id")]);
    }
  }
  std::vector<std::string> footnotes;
  const auto note_for = [&](const std::string& text) {
    auto it = std::find(footnotes.begin(), footnotes.end(), text);
    if (it == footnotes.end()) {
      footnotes.push_back(text);
      it = footnotes.end() - 1;
    }
    return std::string(1, static_cast<char>('a' + (it - footnotes.begin()) % 26));
  };
  const auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
    return out;
  };
  for (const char* population : {"mITT", "PP"}) {
    sheet.rows.push_back({Cell::of(std::string(population) == "mITT"
                                       ? "mITT population (failed, missed or excluded scans carried forward, LOCF)"
                                       : "PP population (observed in-window scans, no imputation)"),
                          Cell::empty(), Cell::empty(), Cell::empty(), Cell::empty(), Cell::empty(),
                          Cell::empty(), Cell::empty()});
    for (const auto& r : comparison.rows) {
      if (get(r, "population") != population) continue;
      const std::string endpoint = get(r, "endpoint"), visit = get(r, "visit");
      const auto key = std::make_tuple(endpoint, visit, std::string(population));
      std::string notes;
      if (const auto e = excluded.find(key); e != excluded.end()) {
        notes += note_for("Excluded by the reader (" + std::string(population) + ", " + visit +
                          "): " + join(e->second));
      }
      if (const auto z = zero.find(key); z != zero.end()) {
        notes += (notes.empty() ? "" : ",") +
                 note_for("Baseline of zero, relative change undefined, not included (" +
                          endpoint_base_column(endpoint) + ", " + std::string(population) + ", " +
                          visit + "): " + join(z->second));
      }
      const auto mi = [&](const char* m, const char* q1, const char* q3) {
        return get(r, m).empty() ? std::string("NA")
                                 : fixed2(get(r, m)) + " (" + fixed2(get(r, q1)) + ", " + fixed2(get(r, q3)) + ")";
      };
      const std::string diff = get(r, "hl_estimate").empty()
                                   ? std::string("NA")
                                   : fixed2(get(r, "hl_estimate")) + " (" + fixed2(get(r, "hl_ci_low")) +
                                         ", " + fixed2(get(r, "hl_ci_high")) + ")";
      sheet.rows.push_back({Cell::of(outcome_name(endpoint, get(r, "change"))), Cell::of(visit),
                            Cell::of(mi("median_a", "q1_a", "q3_a")), Cell::of(mi("median_b", "q1_b", "q3_b")),
                            Cell::of(diff), Cell::of(p_text(get(r, "p_value"))),
                            Cell::of(get(r, "n_a") + " / " + get(r, "n_b")),
                            notes.empty() ? Cell::empty() : Cell::of(notes)});
    }
  }
  const auto text_row = [&](const std::string& t) {
    sheet.rows.push_back({Cell::of(t), Cell::empty(), Cell::empty(), Cell::empty(), Cell::empty(),
                          Cell::empty(), Cell::empty(), Cell::empty()});
  };
  text_row("Data are median (interquartile range; quantile type 7) of the change from baseline. "
           "Differences are Hodges-Lehmann estimates with 95% CI; P from the two-sided Wilcoxon "
           "rank-sum test. Relative change = (visit - baseline) / baseline x 100.");
  for (std::size_t i = 0; i < footnotes.size(); ++i) {
    text_row(std::string(1, static_cast<char>('a' + i % 26)) + ": " + footnotes[i]);
  }
  text_row("Review: " + review_sentence + ".");
  if (!source.empty()) text_row(source);
  return sheet;
}

Sheet scans_provenance_sheet(batch::Store& store) {
  Sheet sheet;
  sheet.name = "scans";
  sheet.header = {"subject_id", "arm", "visit", "status", "series_instance_uid", "input_sha256",
                  "image_sha256", "protocol", "protocol_version", "protocol_sha256",
                  "software_version", "analyzed_at", "qc_score", "qc_flags", "decision",
                  "decision_state", "reader", "decided_at", "reason", "lungs_mask", "lesions_mask"};
  std::map<std::pair<std::string, std::string>, batch::ScanRecord> scans;
  for (auto& s : store.scans()) scans[{s.subject_id, s.visit}] = std::move(s);
  const auto qc = batch::compute_qc(store, batch::visit_order(store));
  const batch::ReviewStatus review = batch::review_status(store);
  const auto t = [](const std::string& v) { return v.empty() ? Cell::empty() : Cell::of(v); };
  for (const auto& e : store.manifest()) {
    const auto it = scans.find({e.subject_id, e.visit});
    std::vector<Cell> row = {Cell::of(e.subject_id), Cell::of(e.arm), Cell::of(e.visit)};
    if (it == scans.end()) {
      row.push_back(Cell::of("not analyzed"));
      row.resize(sheet.header.size());
      sheet.rows.push_back(std::move(row));
      continue;
    }
    const batch::ScanRecord& s = it->second;
    const auto q = qc.find({e.subject_id, e.visit});
    const batch::ScanReview* r = review.find(e.subject_id, e.visit);
    const batch::ReviewDecision* d = r && r->decision ? &*r->decision : nullptr;
    row.insert(row.end(), {t(s.status), t(s.series_uid), t(s.input_sha256), t(s.image_sha256),
                           t(s.protocol_name), t(s.protocol_version), t(s.protocol_sha256),
                           t(s.software_version), t(s.analyzed_at),
                           q == qc.end() ? Cell::empty() : Cell::of(static_cast<double>(q->second.score)),
                           q == qc.end() ? Cell::empty() : t(pipeline::flag_codes(q->second.flags)),
                           d ? t(d->decision) : Cell::empty(),
                           r ? t(batch::decision_state_name(r->state)) : Cell::empty(),
                           d ? t(d->reader) : Cell::empty(), d ? t(d->decided_at) : Cell::empty(),
                           d ? t(d->reason) : Cell::empty(), d ? t(d->lungs_mask) : Cell::empty(),
                           d ? t(d->lesions_mask) : Cell::empty()});
    sheet.rows.push_back(std::move(row));
  }
  return sheet;
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
  const report::CsvTable changes = report::read_csv(endpoint_dir + "/changes.csv");
  // Table 2 first: what trial staff file.
  sheets.push_back(table2_sheet(report::read_csv(endpoint_dir + "/comparison.csv"), changes,
                                state.review, batch::provenance_sentence(state)));
  sheets.push_back(sheet_from_csv("visits", batch::visits_wide_table(store)));
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
  sheets.push_back(scans_provenance_sheet(store));
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
  // A workbook under another name (out.csv) would be a file no program opens as what it says.
  std::string ext = fs::path(xlsx_path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext != ".xlsx") {
    throw Error(ExitCode::kUsage, "export: --xlsx wants a file name ending in .xlsx (an Excel "
                                  "workbook), not '" + xlsx_path + "'");
  }
  const fs::path parent = fs::absolute(xlsx_path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    throw Error(ExitCode::kOutput, "export: cannot write '" + xlsx_path + "': the folder '" +
                                       parent.string() + "' does not exist");
  }
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
