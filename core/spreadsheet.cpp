#include "core/spreadsheet.hpp"

#include <cctype>

namespace lungvol {

bool is_formula_lead(char c) {
  return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

bool is_plain_number(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::string_view rest = s.substr(i);
  auto lower_eq = [](std::string_view a, const char* b) {
    std::size_t n = 0;
    for (; b[n]; ++n) {
      if (n >= a.size() || std::tolower(static_cast<unsigned char>(a[n])) != b[n]) return false;
    }
    return n == a.size();
  };
  if (lower_eq(rest, "inf") || lower_eq(rest, "infinity") || lower_eq(rest, "nan")) return true;
  std::size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

namespace {
// An apostrophe that a reader would take for lungvol's own protection mark.
bool looks_protected(std::string_view s) {
  return s.size() >= 2 && s[0] == '\'' && (is_formula_lead(s[1]) || s[1] == '\'');
}
}  // namespace

std::string spreadsheet_protect(std::string_view cell) {
  const bool formula = !cell.empty() && is_formula_lead(cell[0]) && !is_plain_number(cell);
  if (formula || looks_protected(cell)) return "'" + std::string(cell);
  return std::string(cell);
}

std::string spreadsheet_unprotect(std::string_view cell) {
  if (looks_protected(cell)) return std::string(cell.substr(1));
  return std::string(cell);
}

}  // namespace lungvol
