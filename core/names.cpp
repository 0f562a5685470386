#include "core/names.hpp"

#include <fmt/format.h>

namespace lungvol {

std::string path_component_problem(const std::string& name) {
  if (name.empty()) return "empty";
  if (name.size() > kMaxNameBytes) {
    return fmt::format("{} bytes long, at most {} allowed", name.size(), kMaxNameBytes);
  }
  if (name == "." || name == "..") return "'.' and '..' are not folder names";
  if (name[0] == '.') return "starts with '.' (a hidden or temporary name)";
  if (name.front() == ' ' || name.back() == ' ') return "starts or ends with a space";
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return fmt::format("holds a control character (0x{:02x})", u);
    if (c == '/' || c == '\\') return fmt::format("holds '{}' (a path separator)", c);
    if (c == ':' || c == '*' || c == '?' || c == '"' || c == '<' || c == '>' || c == '|') {
      return fmt::format("holds '{}'", c);
    }
  }
  return "";
}

std::string uid_problem(const std::string& uid) {
  if (uid.empty()) return "empty";
  if (uid.size() > 64) return fmt::format("{} characters long, at most 64", uid.size());
  for (const char c : uid) {
    if (!(c == '.' || (c >= '0' && c <= '9'))) {
      return "holds characters other than digits and dots";
    }
  }
  if (uid.front() == '.' || uid.back() == '.' || uid.find("..") != std::string::npos) {
    return "has an empty component";
  }
  return "";
}

std::string uid_warning(const std::string& uid) {
  if (!uid_problem(uid).empty()) return "";
  std::size_t start = 0;
  while (start < uid.size()) {
    std::size_t end = uid.find('.', start);
    if (end == std::string::npos) end = uid.size();
    if (end - start > 1 && uid[start] == '0') {
      return "UID '" + uid + "' has a component with a leading zero (not allowed by PS3.5 9.1)";
    }
    start = end + 1;
  }
  return "";
}

std::string printable(const std::string& text, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_bytes) {
      out += fmt::format("... ({} bytes)", text.size());
      break;
    }
    const auto u = static_cast<unsigned char>(text[i]);
    if (text[i] == '\n') {
      out += "\\n";
    } else if (text[i] == '\r') {
      out += "\\r";
    } else if (text[i] == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace lungvol
