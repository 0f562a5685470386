#pragma once
// CSV as every lungvol table is written and read: RFC 4180 quoting (a field is quoted when it
// holds a comma, quote, CR or LF; quotes are doubled), LF line ends, numbers at full double
// precision, missing values (NaN, empty optional) as empty fields. Every text cell is
// protected against spreadsheet formula injection (core/spreadsheet.hpp: a cell starting with
// = + - @ TAB CR that is not a plain number gets a leading apostrophe); the reader undoes it.
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace lungvol::report {

// "{:.17g}": parses back to the identical double. NaN -> "" (R and pandas read it as NA).
std::string csv_number(double value);
// The field as it appears in the file: spreadsheet-protected (core/spreadsheet.hpp), then
// quoted only when RFC 4180 requires it.
std::string csv_escape(std::string_view field);

// One cell, converted to text when built, so rows can mix strings and numbers:
//   writer.row({"right_lung", "volume", 1234.5, "mL"});
class CsvField {
 public:
  CsvField(std::string_view text) : text_(text) {}  // NOLINT: implicit by design
  CsvField(const char* text) : text_(text ? text : "") {}
  CsvField(const std::string& text) : text_(text) {}
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  CsvField(T value) : text_(csv_number(static_cast<double>(value))) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                          !std::is_same_v<T, char>,
                                      int> = 0>
  CsvField(T value) : text_(std::to_string(value)) {}
  CsvField(bool value) : text_(value ? "true" : "false") {}
  CsvField(const std::optional<double>& value)
      : text_(value ? csv_number(*value) : std::string{}) {}
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Writes rows to a stream; pair with write_stream_atomic for files:
//   write_stream_atomic(path, [&](std::ostream& o) { CsvWriter w(o); w.row({...}); ... });
class CsvWriter {
 public:
  explicit CsvWriter(std::ostream& out) : out_(out) {}
  void row(std::initializer_list<CsvField> fields);
  void row(const std::vector<CsvField>& fields);
  void row(const std::vector<std::string>& fields);

 private:
  std::ostream& out_;
};

// A whole table of text cells: what the reader returns and the simple writer takes.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string source;  // file name, for error messages
  // Physical line (1-based) where the header and each row start (parse_csv fills them).
  std::size_t header_line = 1;
  std::vector<std::size_t> row_lines;

  // Column position by header name; nullopt / Error(kInput) naming the file when absent.
  std::optional<std::size_t> find_column(std::string_view name) const;
  std::size_t column(std::string_view name) const;
};

std::string to_csv(const CsvTable& table);
// Atomic (temporary name, then rename).
void write_csv(const std::string& path, const CsvTable& table);

struct CsvParseOptions {
  char delimiter = ',';
  // Also skip records that hold nothing: a line of spaces / tabs only, and a row whose every
  // field is empty or blank (what Excel writes for an empty row: ",,,").
  bool skip_blank_records = false;
};

// Parses RFC 4180 text: quoted fields may hold commas, doubled quotes and line breaks; CRLF
// or LF line ends; a UTF-8 byte-order mark (Excel) is skipped; lines that are entirely empty
// are skipped. Every row must have as many fields as the header. Spreadsheet protection is
// undone (spreadsheet_unprotect). Errors are Error(kInput) "<source>:<line>: <problem>", with
// the physical line where the record starts.
CsvTable parse_csv(std::string_view text, const std::string& source = "<csv>",
                   const CsvParseOptions& options = {});
CsvTable read_csv(const std::string& path);

}  // namespace lungvol::report
