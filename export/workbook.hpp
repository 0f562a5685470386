#pragma once
// Spreadsheet export of a batch output folder (`lungvol export OUTDIR --xlsx FILE`): the tidy
// CSV tables become typed worksheets (numbers as numbers, units in the header row).
#include <optional>
#include <string>
#include <vector>

#include "report/csv.hpp"

namespace lungvol::xlsx {

struct Cell {
  enum class Kind { kEmpty, kNumber, kText, kBoolean };
  Kind kind = Kind::kEmpty;
  double number = 0;  // kNumber; kBoolean: 0 / 1
  std::string text;   // kText
  static Cell empty() { return {}; }
  static Cell of(double v) { return {Kind::kNumber, v, {}}; }
  static Cell of(std::string s) { return {Kind::kText, 0, std::move(s)}; }
  static Cell boolean(bool b) { return {Kind::kBoolean, b ? 1.0 : 0.0, {}}; }
};

struct Sheet {
  std::string name;                   // <= 31 characters, no []:*?/\ (Excel's rules)
  std::vector<std::string> header;    // as shown, units included: "lesion_pct (%)"
  std::vector<std::vector<Cell>> rows;
};

// Writes the sheets as one .xlsx workbook, atomically (temporary name, then rename): bold
// frozen header row with an autofilter, column widths from the content. Error(kOutput).
void write_workbook(const std::string& path, const std::vector<Sheet>& sheets);

// --- building blocks ------------------------------------------------------------------

// Unit of a lungvol column from its name's suffix (_pct %, _ml mL, _hu HU, _g g, _mm mm,
// _s s, _day(s) / days_* days); nullopt when the name carries none.
std::optional<std::string> unit_for_column(const std::string& name);
// "name (unit)" when the unit is known, else the name.
std::string header_with_unit(const std::string& name, const std::optional<std::string>& unit);
// A CSV field that is a plain decimal number as lungvol writes them ("-12.5", "1e-05", "0");
// not identifiers like "007", "+3", "0x1F", "inf" or "nan", which stay text.
std::optional<double> parse_csv_number(const std::string& field);
// The base column of an endpoint name: "lesion_pct_change" -> "lesion_pct",
// "mean_hu_abs_change" -> "mean_hu".
std::string endpoint_base_column(const std::string& endpoint);

// A CSV table as a sheet: a column whose every non-empty field is a number becomes numeric
// (identifier columns such as subject_id and *_uid / *_sha256 stay text), true/false columns
// boolean, units appended to known headers.
Sheet sheet_from_csv(const std::string& name, const report::CsvTable& table);

}  // namespace lungvol::xlsx
