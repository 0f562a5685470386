#include "report/csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::report {
namespace {

TEST(Csv, QuotesOnlyWhenRfc4180Requires) {
  EXPECT_EQ(csv_escape("plain text"), "plain text");
  EXPECT_EQ(csv_escape(""), "");
  EXPECT_EQ(csv_escape("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_escape("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_escape("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_escape("cr\r"), "\"cr\r\"");
}

TEST(Csv, SpreadsheetFormulasAreNeutralisedAndReadBack) {
  EXPECT_EQ(csv_escape("=1+2"), "'=1+2");
  EXPECT_EQ(csv_escape("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
  EXPECT_EQ(csv_escape("-3.5"), "-3.5");
  std::ostringstream out;
  CsvWriter w(out);
  w.row({"=cmd", -3.5, "@x", "-S2", "'=q"});
  EXPECT_EQ(out.str(), "'=cmd,-3.5,'@x,'-S2,''=q\n");
  const CsvTable t = parse_csv("a,b,c,d,e\n" + out.str());
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"=cmd", "-3.5", "@x", "-S2", "'=q"}));
}

TEST(Csv, BlankRecordsDelimiterAndLines) {
  CsvParseOptions o;
  o.skip_blank_records = true;
  const CsvTable t = parse_csv("a,b\n1,2\n  \n,\n\t , \n\n3,4\n", "x.csv", o);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.row_lines, (std::vector<std::size_t>{2, 7}));
  EXPECT_EQ(t.header_line, 1u);
  // Without the option a line of spaces is a record like any other (and here a ragged one).
  EXPECT_THROW(parse_csv("a,b\n1,2\n  \n"), Error);
  o.delimiter = ';';
  const CsvTable s = parse_csv("a;b\n\"1;5\";2,5\n", "x.csv", o);
  EXPECT_EQ(s.header, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.rows[0], (std::vector<std::string>{"1;5", "2,5"}));
}

TEST(Csv, NumbersAtFullPrecisionAndNanEmpty) {
  EXPECT_EQ(csv_number(0.1), "0.10000000000000001");
  EXPECT_EQ(std::strtod(csv_number(0.1).c_str(), nullptr), 0.1);
  EXPECT_EQ(csv_number(1.0 / 3.0), "0.33333333333333331");
  EXPECT_EQ(csv_number(1234.0), "1234");
  EXPECT_EQ(csv_number(-2.5e-7), "-2.4999999999999999e-07");
  EXPECT_EQ(csv_number(std::numeric_limits<double>::quiet_NaN()), "");
  const double x = 5439.123456789012;
  EXPECT_EQ(std::strtod(csv_number(x).c_str(), nullptr), x);
}

TEST(Csv, WriterMixesTextAndNumbers) {
  std::ostringstream out;
  CsvWriter w(out);
  w.row({"region", "metric", "value", "n"});
  w.row({"right_lung", "volume, total", 1500.25, 42});
  w.row({std::string("a \"b\""), "x", std::optional<double>{}, std::size_t{7}});
  w.row({"nan", "y", std::numeric_limits<double>::quiet_NaN(), -3});
  EXPECT_EQ(out.str(),
            "region,metric,value,n\n"
            "right_lung,\"volume, total\",1500.25,42\n"
            "\"a \"\"b\"\"\",x,,7\n"
            "nan,y,,-3\n");
}

TEST(Csv, RoundTripWithCommasQuotesAndNewlines) {
  CsvTable t;
  t.header = {"subject", "note", "value"};
  t.rows = {{"P001", "comma, inside", "1"},
            {"P002", "quote \" inside", ""},
            {"P003", "line\nbreak and \r\n CRLF", "3.5"},
            {"P004", "", ""},
            {"\"", ",", "\n"}};
  const std::string dir = test::temp_dir("csv");
  write_csv(dir + "/t.csv", t);
  const CsvTable back = read_csv(dir + "/t.csv");
  EXPECT_EQ(back.header, t.header);
  EXPECT_EQ(back.rows, t.rows);
  EXPECT_EQ(back.column("note"), 1u);
  EXPECT_FALSE(back.find_column("missing").has_value());
  EXPECT_THROW(back.column("missing"), Error);
}

TEST(Csv, ReaderToleratesCrlfBomAndBlankLines) {
  const CsvTable t =
      parse_csv("\xEF\xBB\xBFsubject,visit\r\nP1,\"day 0\"\r\n\r\nP2,day 28\r\n\r\n", "m.csv");
  ASSERT_EQ(t.header, (std::vector<std::string>{"subject", "visit"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"P1", "day 0"}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"P2", "day 28"}));
  // No final newline, trailing empty field.
  const CsvTable u = parse_csv("a,b\n1,");
  ASSERT_EQ(u.rows.size(), 1u);
  EXPECT_EQ(u.rows[0], (std::vector<std::string>{"1", ""}));
}

std::string error_of(const std::string& text) {
  try {
    parse_csv(text, "m.csv");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    return e.what();
  }
  return "no error";
}

TEST(Csv, ErrorsNameFileAndLine) {
  EXPECT_EQ(error_of("a,b\n1,2\n3\n"), "m.csv:3: expected 2 fields as in the header, found 1");
  // The record starting on line 2 spans lines 2-3; the bad one starts on line 4.
  EXPECT_EQ(error_of("a,b\n\"x\ny\",2\n1,2,3\n"),
            "m.csv:4: expected 2 fields as in the header, found 3");
  EXPECT_EQ(error_of("a,b\n1,\"open\n"), "m.csv:2: unterminated quoted field");
  EXPECT_EQ(error_of("a,b\n\"x\"y,2\n"), "m.csv:2: unexpected character after closing quote");
  EXPECT_EQ(error_of("a,b\n1,x\"y\n"), "m.csv:2: quote inside an unquoted field");
  EXPECT_EQ(error_of(""), "m.csv:1: empty file (no header line)");
  EXPECT_THROW(read_csv("/nonexistent/x.csv"), Error);
}

}  // namespace
}  // namespace lungvol::report
