#pragma once
// Spreadsheet ("CSV") injection protection for every CSV lungvol writes (docs/outputs.md,
// "CSV files and spreadsheets"). Spreadsheet programs evaluate a cell that starts with
// = + - @ (and, in some, TAB or CR) as a formula, so a subject id or a DICOM text such as
// "=HYPERLINK(...)" could run when a CSV is opened. Such a text cell is written with one
// leading apostrophe, which spreadsheets show as text and never evaluate. Plain decimal
// numbers ("-3.5", "+1e-05", "-inf") are left alone: numbers stay numbers.
//
// The mapping is reversible: a text that itself starts with an apostrophe followed by one of
// those characters (or by another apostrophe) gets one more apostrophe, and lungvol's CSV
// readers remove exactly one, so every text round-trips unchanged.
#include <string>
#include <string_view>

namespace lungvol {

// A plain decimal number: [+-] digits [. digits] [e|E [+-] digits], or [+-]inf / nan.
bool is_plain_number(std::string_view s);
// True for = + - @ TAB CR.
bool is_formula_lead(char c);
// The text as it must appear in a CSV cell (before RFC 4180 quoting).
std::string spreadsheet_protect(std::string_view cell);
// The inverse, applied by lungvol's CSV readers.
std::string spreadsheet_unprotect(std::string_view cell);

}  // namespace lungvol
