#include <fmt/format.h>

#include <sstream>

#include "core/error.hpp"
#include "phantom/phantom.hpp"

namespace lungvol::phantom {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::array<double, 3> parse_triple(const std::string& text, const std::string& entry) {
  const auto parts = split(text, ',');
  std::array<double, 3> v{};
  if (parts.size() != 3) {
    throw Error(ExitCode::kUsage,
                "--lesions: '" + entry + "': expected three numbers in '" + text + "'");
  }
  for (int n = 0; n < 3; ++n) {
    try {
      std::size_t used = 0;
      v[n] = std::stod(trim(parts[n]), &used);
      if (used != trim(parts[n]).size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error(ExitCode::kUsage,
                  "--lesions: '" + entry + "': '" + parts[n] + "' is not a number");
    }
  }
  return v;
}

}  // namespace

std::vector<LesionSpec> parse_lesion_spec(const std::string& spec) {
  std::vector<LesionSpec> out;
  for (const std::string& raw : split(spec, ';')) {
    const std::string entry = trim(raw);
    if (entry.empty()) continue;
    const auto f = split(entry, ':');
    if (f.size() != 4) {
      throw Error(ExitCode::kUsage, "--lesions: '" + entry + "': expected TYPE:SIDE:U,V,W:A,B,C");
    }
    LesionSpec l;
    const std::string type = trim(f[0]), side = trim(f[1]);
    if (type == "ggo" || type == "ground_glass") {
      l.type = LesionType::kGroundGlass;
    } else if (type == "solid") {
      l.type = LesionType::kSolid;
    } else if (type == "pleural") {
      l.type = LesionType::kSolid;
      l.pleural = true;
    } else {
      throw Error(ExitCode::kUsage,
                  "--lesions: '" + entry + "': type must be ggo, solid or pleural");
    }
    if (side == "right" || side == "r") {
      l.side = LungSide::kRight;
    } else if (side == "left" || side == "l") {
      l.side = LungSide::kLeft;
    } else {
      throw Error(ExitCode::kUsage, "--lesions: '" + entry + "': side must be right or left");
    }
    l.uvw = parse_triple(f[2], entry);
    l.semi_axes_mm = parse_triple(f[3], entry);
    for (double r : l.semi_axes_mm) {
      if (!(r > 0))
        throw Error(ExitCode::kUsage, "--lesions: '" + entry + "': semi-axes must be positive");
    }
    out.push_back(l);
  }
  return out;
}

std::string format_lesion_spec(const std::vector<LesionSpec>& lesions) {
  std::string s;
  for (const LesionSpec& l : lesions) {
    if (!s.empty()) s += ';';
    const char* type = l.pleural ? "pleural" : l.type == LesionType::kSolid ? "solid" : "ggo";
    s += fmt::format("{}:{}:{:g},{:g},{:g}:{:g},{:g},{:g}", type,
                     l.side == LungSide::kRight ? "right" : "left", l.uvw[0], l.uvw[1], l.uvw[2],
                     l.semi_axes_mm[0], l.semi_axes_mm[1], l.semi_axes_mm[2]);
  }
  return s;
}

std::vector<LesionSpec> default_lesions() {
  using T = LesionType;
  using S = LungSide;
  return {
      {T::kGroundGlass, S::kRight, false, {0.15, -0.05, 0.58}, {18, 15, 22}},
      {T::kGroundGlass, S::kLeft, false, {0.30, 0.30, 0.22}, {20, 17, 20}},
      {T::kGroundGlass, S::kRight, false, {0.30, 0.30, 0.20}, {11, 10, 12}},
      {T::kSolid, S::kLeft, false, {0.10, 0.00, 0.62}, {12, 10, 14}},
      {T::kSolid, S::kRight, false, {0.20, 0.45, 0.42}, {8, 8, 9}},
      {T::kSolid, S::kRight, true, {0.30, 0.10, 0.35}, {15, 20, 18}},
  };
}

}  // namespace lungvol::phantom
