// Names that become path components, DICOM UIDs, and spreadsheet protection of CSV cells
// (issue #19, items 9 and 11).
#include <gtest/gtest.h>

#include "core/names.hpp"
#include "core/spreadsheet.hpp"

namespace lungvol {
namespace {

TEST(Names, PathComponents) {
  for (const char* ok : {"S01", "001-023", "Müller 01, (b)", "=1+1", "@arm", "week 4", "a.b"}) {
    EXPECT_EQ(path_component_problem(ok), "") << ok;
  }
  EXPECT_NE(path_component_problem(""), "");
  EXPECT_NE(path_component_problem("."), "");
  EXPECT_NE(path_component_problem(".."), "");
  EXPECT_NE(path_component_problem(".hidden"), "");
  EXPECT_NE(path_component_problem("../x"), "");
  EXPECT_NE(path_component_problem("a/b"), "");
  EXPECT_NE(path_component_problem("a\\b"), "");
  EXPECT_NE(path_component_problem("a\nb"), "");
  EXPECT_NE(path_component_problem("a\rb"), "");
  EXPECT_NE(path_component_problem("a\tb"), "");
  EXPECT_NE(path_component_problem(std::string("a\x7f", 2)), "");
  EXPECT_NE(path_component_problem(" lead"), "");
  EXPECT_NE(path_component_problem("trail "), "");
  for (const char* bad : {"a:b", "a*b", "a?b", "a\"b", "a<b", "a>b", "a|b"}) {
    EXPECT_NE(path_component_problem(bad), "") << bad;
  }
  EXPECT_EQ(path_component_problem(std::string(kMaxNameBytes, 'x')), "");
  EXPECT_EQ(path_component_problem(std::string(kMaxNameBytes + 1, 'x')),
            "101 bytes long, at most 100 allowed");
}

TEST(Names, DicomUids) {
  EXPECT_EQ(uid_problem("1.2.840.10008.5.1.4.1.1.2"), "");
  EXPECT_EQ(uid_problem("0"), "");
  EXPECT_NE(uid_problem(""), "");
  EXPECT_NE(uid_problem("=HYPERLINK(\"http://x\")"), "");
  EXPECT_NE(uid_problem("1.2.3 "), "");
  EXPECT_NE(uid_problem("1..2"), "");
  EXPECT_NE(uid_problem(".1.2"), "");
  EXPECT_NE(uid_problem("1.2."), "");
  EXPECT_NE(uid_problem(std::string(65, '1')), "");
  EXPECT_EQ(uid_problem(std::string(64, '1')), "");
  EXPECT_EQ(uid_warning("1.2.840"), "");
  EXPECT_NE(uid_warning("1.02.840"), "");
  EXPECT_EQ(uid_warning("1.0.840"), "");
}

TEST(Names, Printable) {
  EXPECT_EQ(printable("a\nb\tc\rd\x01"), "a\\nb\\tc\\rd\\x01");
  EXPECT_EQ(printable(std::string(10, 'x'), 4), "xxxx... (10 bytes)");
}

TEST(Spreadsheet, FormulaCellsGetOneApostropheNumbersStay) {
  EXPECT_EQ(spreadsheet_protect("=1+2"), "'=1+2");
  EXPECT_EQ(spreadsheet_protect("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
  EXPECT_EQ(spreadsheet_protect("-S2"), "'-S2");
  EXPECT_EQ(spreadsheet_protect("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(spreadsheet_protect("\t=1"), "'\t=1");
  EXPECT_EQ(spreadsheet_protect("\r=1"), "'\r=1");
  EXPECT_EQ(spreadsheet_protect("=HYPERLINK(\"http://x\",\"y\")"), "'=HYPERLINK(\"http://x\",\"y\")");
  // Numbers stay numbers.
  for (const char* n : {"-3.5", "+1e-05", "-822.04158415841584", "-0", "-.5", "-5.", "-1E+300",
                        "-inf", "+INF", "-nan", "-865"}) {
    EXPECT_EQ(spreadsheet_protect(n), n) << n;
    EXPECT_TRUE(is_plain_number(n)) << n;
  }
  for (const char* t : {"-", "+", "-e5", "-1e", "-1-1", "-0x10", "-1,5", "--1"}) {
    EXPECT_FALSE(is_plain_number(t)) << t;
    EXPECT_EQ(spreadsheet_protect(t), std::string("'") + t) << t;
  }
  // Plain text is untouched.
  for (const char* t : {"", "S01", "a=b", "1.2.840", "'quoted", "it's"}) {
    EXPECT_EQ(spreadsheet_protect(t), t) << t;
  }
}

TEST(Spreadsheet, ProtectionRoundTripsEveryText) {
  for (const char* t : {"=1+2", "-S2", "-3.5", "'=1", "''=1", "'", "''", "'a", "'-", "x", "",
                        "@", "'@x", "\t", "'\t"}) {
    EXPECT_EQ(spreadsheet_unprotect(spreadsheet_protect(t)), t) << t;
  }
  EXPECT_EQ(spreadsheet_protect("'=1"), "''=1");  // a text that looks protected is escaped too
  EXPECT_EQ(spreadsheet_unprotect("'=1"), "=1");
  EXPECT_EQ(spreadsheet_unprotect("'a"), "'a");
}

}  // namespace
}  // namespace lungvol
