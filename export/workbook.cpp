#include "export/workbook.hpp"

#include <xlsxwriter.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace lungvol::xlsx {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Identifier columns stay text even when their values look numeric (subject "0012").
bool is_identifier_column(const std::string& name) {
  return name == "subject_id" || name == "site" || name == "visit" || name == "arm" ||
         ends_with(name, "_uid") || ends_with(name, "_sha256") || ends_with(name, "_id") ||
         name == "software_version" || name == "protocol_version";
}

// Display width of a cell, for the column width: UTF-8 continuation bytes do not count.
std::size_t display_length(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::size_t cell_width(const Cell& c) {
  switch (c.kind) {
    case Cell::Kind::kNumber: {
      // Excel's General format shows at most ~11 significant characters.
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.10g", c.number);
      return std::string(buf).size();
    }
    case Cell::Kind::kText: return display_length(c.text);
    case Cell::Kind::kBoolean: return 5;
    case Cell::Kind::kEmpty: return 0;
  }
  return 0;
}

void check(lxw_error e, const std::string& path, const std::string& what) {
  if (e != LXW_NO_ERROR) {
    throw Error(ExitCode::kOutput, path + ": " + what + ": " + lxw_strerror(e));
  }
}

// Owns the workbook handle so that an exception still frees it.
struct WorkbookHandle {
  lxw_workbook* wb = nullptr;
  ~WorkbookHandle() {
    // workbook_close also frees; on the error path the half-written temporary file is removed
    // by write_file_atomic.
    if (wb) workbook_close(wb);
  }
};

}  // namespace

std::optional<std::string> unit_for_column(const std::string& name) {
  static const std::pair<const char*, const char*> kSuffixes[] = {
      {"_pct", "%"}, {"_ml", "mL"}, {"_hu", "HU"}, {"_g", "g"},        {"_mm", "mm"},
      {"_mm3", "mm3"}, {"_s", "s"}, {"_day", "days"}, {"_days", "days"}};
  for (const auto& [suffix, unit] : kSuffixes) {
    if (ends_with(name, suffix)) return std::string(unit);
  }
  if (starts_with(name, "days_")) return std::string("days");
  return std::nullopt;
}

std::string header_with_unit(const std::string& name, const std::optional<std::string>& unit) {
  return unit ? name + " (" + *unit + ")" : name;
}

std::optional<double> parse_csv_number(const std::string& f) {
  if (f.empty()) return std::nullopt;
  std::size_t i = 0;
  if (f[i] == '-') ++i;
  if (i >= f.size() || !std::isdigit(static_cast<unsigned char>(f[i]))) {
    // ".5" is not how lungvol writes numbers; treat as text rather than guess.
    return std::nullopt;
  }
  // A leading zero followed by a digit is an identifier ("007"), not a number.
  if (f[i] == '0' && i + 1 < f.size() && std::isdigit(static_cast<unsigned char>(f[i + 1]))) {
    return std::nullopt;
  }
  for (std::size_t k = i; k < f.size(); ++k) {
    const char c = f[k];
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' ||
          c == '-' || c == '+')) {
      return std::nullopt;
    }
  }
  char* end = nullptr;
  const double v = std::strtod(f.c_str(), &end);
  if (end != f.c_str() + f.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string endpoint_base_column(const std::string& endpoint) {
  for (const char* suffix : {"_abs_change", "_rel_change", "_change"}) {
    if (ends_with(endpoint, suffix)) return endpoint.substr(0, endpoint.size() - std::string(suffix).size());
  }
  return endpoint;
}

Sheet sheet_from_csv(const std::string& name, const report::CsvTable& table) {
  Sheet s;
  s.name = name;
  const std::size_t nc = table.header.size();
  enum class Type { kNumber, kBoolean, kText };
  std::vector<Type> type(nc, Type::kNumber);
  for (std::size_t c = 0; c < nc; ++c) {
    bool all_number = !is_identifier_column(table.header[c]), all_bool = true, any = false;
    for (const auto& row : table.rows) {
      const std::string& f = row[c];
      if (f.empty()) continue;
      any = true;
      all_number = all_number && parse_csv_number(f).has_value();
      all_bool = all_bool && (f == "true" || f == "false");
    }
    type[c] = !any ? Type::kText : all_number ? Type::kNumber : all_bool ? Type::kBoolean : Type::kText;
    const bool numeric = any && all_number;
    s.header.push_back(header_with_unit(table.header[c],
                                        numeric ? unit_for_column(table.header[c]) : std::nullopt));
  }
  s.rows.reserve(table.rows.size());
  for (const auto& row : table.rows) {
    std::vector<Cell> cells(nc);
    for (std::size_t c = 0; c < nc; ++c) {
      const std::string& f = row[c];
      if (f.empty()) continue;
      switch (type[c]) {
        case Type::kNumber: cells[c] = Cell::of(*parse_csv_number(f)); break;
        case Type::kBoolean: cells[c] = Cell::boolean(f == "true"); break;
        case Type::kText: cells[c] = Cell::of(f); break;
      }
    }
    s.rows.push_back(std::move(cells));
  }
  return s;
}

void write_workbook(const std::string& path, const std::vector<Sheet>& sheets) {
  if (sheets.empty()) throw Error(ExitCode::kUsage, path + ": no sheets to write");
  constexpr std::size_t kMaxRows = 1048575;  // Excel: 1,048,576 rows including the header
  constexpr std::size_t kMaxCols = 16384;
  for (const Sheet& s : sheets) {
    if (s.rows.size() > kMaxRows || s.header.size() > kMaxCols) {
      throw Error(ExitCode::kOutput, path + ": sheet '" + s.name + "' exceeds Excel's size limits (" +
                                         std::to_string(s.rows.size()) + " rows, " +
                                         std::to_string(s.header.size()) + " columns)");
    }
  }
  write_file_atomic(path, [&](const std::string& tmp) {
    WorkbookHandle h;
    lxw_workbook_options options{};
    options.constant_memory = 0;
    options.use_zip64 = 1;
    // Temporary files of the library beside the output, not in a possibly small /tmp.
    std::string tmpdir = std::filesystem::path(tmp).parent_path().string();
    if (tmpdir.empty()) tmpdir = ".";
    options.tmpdir = tmpdir.data();
    h.wb = workbook_new_opt(tmp.c_str(), &options);
    if (!h.wb) throw Error(ExitCode::kOutput, "cannot create '" + path + "'");
    lxw_format* bold = workbook_add_format(h.wb);
    format_set_bold(bold);
    for (const Sheet& s : sheets) {
      check(workbook_validate_sheet_name(h.wb, s.name.c_str()), path, "sheet name '" + s.name + "'");
      lxw_worksheet* ws = workbook_add_worksheet(h.wb, s.name.c_str());
      if (!ws) throw Error(ExitCode::kOutput, path + ": cannot add sheet '" + s.name + "'");
      const auto nc = static_cast<lxw_col_t>(s.header.size());
      std::vector<std::size_t> width(nc, 0);
      for (lxw_col_t c = 0; c < nc; ++c) {
        check(worksheet_write_string(ws, 0, c, s.header[c].c_str(), bold), path, s.name + " header");
        width[c] = display_length(s.header[c]) + 2;  // bold and the autofilter button
      }
      for (std::size_t r = 0; r < s.rows.size(); ++r) {
        const auto row = static_cast<lxw_row_t>(r + 1);
        const auto& cells = s.rows[r];
        if (cells.size() != s.header.size()) {
          throw Error(ExitCode::kProcessing, path + ": sheet '" + s.name + "' row " +
                                                 std::to_string(r + 1) + " has " +
                                                 std::to_string(cells.size()) + " cells, header " +
                                                 std::to_string(s.header.size()));
        }
        for (lxw_col_t c = 0; c < nc; ++c) {
          const Cell& cell = cells[c];
          lxw_error e = LXW_NO_ERROR;
          switch (cell.kind) {
            case Cell::Kind::kNumber: e = worksheet_write_number(ws, row, c, cell.number, nullptr); break;
            case Cell::Kind::kText: e = worksheet_write_string(ws, row, c, cell.text.c_str(), nullptr); break;
            case Cell::Kind::kBoolean: e = worksheet_write_boolean(ws, row, c, cell.number != 0, nullptr); break;
            case Cell::Kind::kEmpty: break;
          }
          check(e, path, "sheet '" + s.name + "' row " + std::to_string(r + 1));
          if (r < 2000) width[c] = std::max(width[c], cell_width(cell));
        }
      }
      for (lxw_col_t c = 0; c < nc; ++c) {
        const double w = double(std::clamp<std::size_t>(width[c] + 1, 8, 60));
        check(worksheet_set_column(ws, c, c, w, nullptr), path, "column width");
      }
      worksheet_freeze_panes(ws, 1, 0);
      if (nc > 0) {
        check(worksheet_autofilter(ws, 0, 0, static_cast<lxw_row_t>(s.rows.size()), nc - 1), path,
              "autofilter");
      }
    }
    lxw_workbook* wb = h.wb;
    h.wb = nullptr;
    check(workbook_close(wb), path, "writing the workbook");
  });
}

}  // namespace lungvol::xlsx
