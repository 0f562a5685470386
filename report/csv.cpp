#include "report/csv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/spreadsheet.hpp"

namespace lungvol::report {

std::string csv_number(double value) {
  if (std::isnan(value)) return {};
  return fmt::format("{:.17g}", value);
}

std::string csv_escape(std::string_view raw) {
  const std::string field = spreadsheet_protect(raw);
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out;
  out.reserve(field.size() + 2);
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void CsvWriter::row(std::initializer_list<CsvField> fields) { row(std::vector<CsvField>(fields)); }

void CsvWriter::row(const std::vector<CsvField>& fields) {
  std::string line;
  for (std::size_t n = 0; n < fields.size(); ++n) {
    if (n > 0) line.push_back(',');
    line += csv_escape(fields[n].text());
  }
  line.push_back('\n');
  out_ << line;
}

void CsvWriter::row(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t n = 0; n < fields.size(); ++n) {
    if (n > 0) line.push_back(',');
    line += csv_escape(fields[n]);
  }
  line.push_back('\n');
  out_ << line;
}

std::optional<std::size_t> CsvTable::find_column(std::string_view name) const {
  for (std::size_t n = 0; n < header.size(); ++n) {
    if (header[n] == name) return n;
  }
  return std::nullopt;
}

std::size_t CsvTable::column(std::string_view name) const {
  if (auto n = find_column(name)) return *n;
  throw Error(ExitCode::kInput, "'" + (source.empty() ? std::string("<csv>") : source) +
                                    "' has no column '" + std::string(name) + "'");
}

std::string to_csv(const CsvTable& table) {
  std::string out;
  const auto add = [&](const std::vector<std::string>& fields) {
    for (std::size_t n = 0; n < fields.size(); ++n) {
      if (n > 0) out.push_back(',');
      out += csv_escape(fields[n]);
    }
    out.push_back('\n');
  };
  add(table.header);
  for (const auto& r : table.rows) add(r);
  return out;
}

void write_csv(const std::string& path, const CsvTable& table) {
  write_text_atomic(path, to_csv(table));
}

CsvTable parse_csv(std::string_view text, const std::string& source,
                   const CsvParseOptions& options) {
  CsvTable table;
  table.source = source;
  const char sep = options.delimiter;
  const auto fail = [&](std::size_t line, const std::string& why) {
    return Error(ExitCode::kInput, source + ":" + std::to_string(line) + ": " + why);
  };
  const auto blank = [](const std::string& f) {
    return f.find_first_not_of(" \t") == std::string::npos;
  };
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  std::size_t pos = 0;
  std::size_t line = 1;
  bool have_header = false;
  while (pos < text.size()) {
    // Skip empty lines between records.
    if (text[pos] == '\n' || text[pos] == '\r') {
      if (text[pos] == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
      ++pos;
      ++line;
      continue;
    }
    const std::size_t record_line = line;
    std::vector<std::string> record;
    std::string field;
    bool end_of_record = false, any_quoted = false;
    while (!end_of_record) {
      field.clear();
      if (pos < text.size() && text[pos] == '"') {
        any_quoted = true;
        ++pos;
        for (;;) {
          if (pos >= text.size()) throw fail(record_line, "unterminated quoted field");
          const char c = text[pos++];
          if (c == '"') {
            if (pos < text.size() && text[pos] == '"') {
              field.push_back('"');
              ++pos;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            field.push_back(c);
          }
        }
        if (pos < text.size() && text[pos] != sep && text[pos] != '\n' && text[pos] != '\r') {
          throw fail(line, "unexpected character after closing quote");
        }
      } else {
        while (pos < text.size() && text[pos] != sep && text[pos] != '\n' && text[pos] != '\r') {
          if (text[pos] == '"') throw fail(line, "quote inside an unquoted field");
          field.push_back(text[pos++]);
        }
      }
      record.push_back(spreadsheet_unprotect(field));
      if (pos < text.size() && text[pos] == sep) {
        ++pos;
      } else {
        end_of_record = true;
        if (pos < text.size() && text[pos] == '\r') ++pos;
        if (pos < text.size() && text[pos] == '\n') ++pos;
        ++line;
      }
    }
    if (options.skip_blank_records && !any_quoted &&
        std::all_of(record.begin(), record.end(), blank)) {
      continue;
    }
    if (!have_header) {
      table.header = std::move(record);
      table.header_line = record_line;
      have_header = true;
    } else {
      if (record.size() != table.header.size()) {
        throw fail(record_line, "expected " + std::to_string(table.header.size()) +
                                    " fields as in the header, found " +
                                    std::to_string(record.size()));
      }
      table.rows.push_back(std::move(record));
      table.row_lines.push_back(record_line);
    }
  }
  if (!have_header) throw fail(1, "empty file (no header line)");
  return table;
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_text_file(path), path); }

}  // namespace lungvol::report
