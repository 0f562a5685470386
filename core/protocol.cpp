#include "core/protocol.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "core/error.hpp"
#include "core/hash.hpp"

#ifndef LUNGVOL_SOURCE_PROTOCOL_DIR
#define LUNGVOL_SOURCE_PROTOCOL_DIR "protocols"
#endif

namespace fs = std::filesystem;

namespace lungvol {
namespace {

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw Error(ExitCode::kProtocol, "protocol '" + origin + "': " + what);
}

double number(const toml::node_view<const toml::node>& n, const std::string& origin,
              const std::string& key, double fallback, bool required = false) {
  if (!n) {
    if (required) fail(origin, "missing key '" + key + "'");
    return fallback;
  }
  if (auto v = n.value<double>()) return *v;
  fail(origin, "'" + key + "' must be a number");
}

std::vector<double> numbers(const toml::node_view<const toml::node>& n, const std::string& origin,
                            const std::string& key, std::vector<double> fallback) {
  if (!n) return fallback;
  const auto* arr = n.as_array();
  if (!arr) fail(origin, "'" + key + "' must be an array of numbers");
  std::vector<double> out;
  for (const auto& e : *arr) {
    auto v = e.value<double>();
    if (!v) fail(origin, "'" + key + "' must be an array of numbers");
    out.push_back(*v);
  }
  return out;
}

std::vector<std::string> strings(const toml::node_view<const toml::node>& n,
                                 const std::string& origin, const std::string& key) {
  std::vector<std::string> out;
  if (!n) fail(origin, "missing key '" + key + "'");
  if (auto s = n.value<std::string>()) return {*s};
  const auto* arr = n.as_array();
  if (!arr) fail(origin, "'" + key + "' must be a string or an array of strings");
  for (const auto& e : *arr) {
    auto v = e.value<std::string>();
    if (!v) fail(origin, "'" + key + "' must be an array of strings");
    out.push_back(*v);
  }
  return out;
}

HuBand union_of(const Protocol& p, const std::vector<std::string>& names,
                const std::string& origin, const std::string& key) {
  if (names.empty()) fail(origin, "'" + key + "' names no class");
  std::vector<HuBand> bands;
  for (const auto& name : names) {
    auto it = std::find_if(p.classes.begin(), p.classes.end(),
                           [&](const HuClass& c) { return c.name == name; });
    if (it == p.classes.end()) fail(origin, "'" + key + "' names unknown class '" + name + "'");
    bands.push_back(it->band);
  }
  std::sort(bands.begin(), bands.end(),
            [](const HuBand& a, const HuBand& b) { return a.lo_hu < b.lo_hu; });
  for (std::size_t i = 1; i < bands.size(); ++i) {
    if (bands[i].lo_hu != bands[i - 1].hi_hu) {
      fail(origin, "the classes of '" + key + "' must be contiguous HU bands");
    }
  }
  return {bands.front().lo_hu, bands.back().hi_hu};
}

}  // namespace

Protocol parse_protocol(const std::string& text, const std::string& origin) {
  toml::table tbl;
  try {
    tbl = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << e.description() << " (line " << e.source().begin.line << ")";
    fail(origin, msg.str());
  }
  const toml::table& t = tbl;
  Protocol p;
  p.sha256 = sha256_hex(text);
  p.source_path = origin;
  p.name = t["name"].value_or(std::string{});
  p.version = t["version"].value_or(std::string{});
  p.description = t["description"].value_or(std::string{});
  if (p.name.empty()) fail(origin, "missing key 'name'");
  if (p.version.empty()) fail(origin, "missing key 'version'");
  if (const auto* refs = t["references"].as_array()) {
    for (const auto& r : *refs) {
      if (auto s = r.value<std::string>()) p.references.push_back(*s);
    }
  }

  const auto lung = t["lung"];
  p.lung.air_max_hu = number(lung["air_max_hu"], origin, "lung.air_max_hu", p.lung.air_max_hu);
  p.lung.chest_wall_mm =
      number(lung["chest_wall_mm"], origin, "lung.chest_wall_mm", p.lung.chest_wall_mm);
  p.lung.bone_min_hu = number(lung["bone_min_hu"], origin, "lung.bone_min_hu", p.lung.bone_min_hu);
  p.lung.fill_max_hu = number(lung["fill_max_hu"], origin, "lung.fill_max_hu", p.lung.fill_max_hu);
  p.lung.closing_radius_mm =
      number(lung["closing_radius_mm"], origin, "lung.closing_radius_mm", p.lung.closing_radius_mm);
  p.lung.min_lung_ml = number(lung["min_lung_ml"], origin, "lung.min_lung_ml", p.lung.min_lung_ml);
  if (p.lung.closing_radius_mm < 0 || p.lung.closing_radius_mm > 60) {
    fail(origin, "lung.closing_radius_mm must be within [0, 60]");
  }

  const auto* classes = t["classes"].as_array();
  if (!classes || classes->empty()) fail(origin, "needs at least one [[classes]] entry");
  for (const auto& node : *classes) {
    const auto* c = node.as_table();
    if (!c) fail(origin, "[[classes]] entries must be tables");
    const toml::table& ct = *c;
    HuClass hc;
    hc.name = ct["name"].value_or(std::string{});
    if (hc.name.empty()) fail(origin, "a class has no name");
    hc.band.lo_hu = number(ct["lo_hu"], origin, "classes." + hc.name + ".lo_hu", 0, true);
    hc.band.hi_hu = number(ct["hi_hu"], origin, "classes." + hc.name + ".hi_hu", 0, true);
    hc.description = ct["description"].value_or(std::string{});
    if (!(hc.band.lo_hu < hc.band.hi_hu)) {
      fail(origin, "class '" + hc.name + "' needs lo_hu < hi_hu");
    }
    for (const auto& other : p.classes) {
      if (other.name == hc.name) fail(origin, "class '" + hc.name + "' defined twice");
    }
    p.classes.push_back(hc);
  }

  const auto lesion = t["lesion"];
  if (!lesion) fail(origin, "missing table [lesion]");
  p.lesion.ground_glass_classes = strings(lesion["ground_glass"], origin, "lesion.ground_glass");
  p.lesion.solid_classes = strings(lesion["solid"], origin, "lesion.solid");
  p.lesion.ground_glass = union_of(p, p.lesion.ground_glass_classes, origin, "lesion.ground_glass");
  p.lesion.solid = union_of(p, p.lesion.solid_classes, origin, "lesion.solid");
  if (p.lesion.ground_glass.hi_hu != p.lesion.solid.lo_hu) {
    fail(origin, "lesion.ground_glass must end where lesion.solid starts (the split)");
  }
  p.lesion.min_lesion_mm3 =
      number(lesion["min_lesion_mm3"], origin, "lesion.min_lesion_mm3", p.lesion.min_lesion_mm3);
  p.lesion.vessel_radius_mm = number(lesion["vessel_radius_mm"], origin,
                                     "lesion.vessel_radius_mm", p.lesion.vessel_radius_mm);
  if (p.lesion.min_lesion_mm3 < 0 || p.lesion.vessel_radius_mm < 0) {
    fail(origin, "lesion sizes must not be negative");
  }

  const auto dens = t["densitometry"];
  p.densitometry.laa_hu =
      numbers(dens["laa_hu"], origin, "densitometry.laa_hu", p.densitometry.laa_hu);
  const auto haa = numbers(dens["haa_hu"], origin, "densitometry.haa_hu",
                           {p.densitometry.haa.lo_hu, p.densitometry.haa.hi_hu});
  if (haa.size() != 2 || !(haa[0] < haa[1])) fail(origin, "densitometry.haa_hu must be [lo, hi]");
  p.densitometry.haa = {haa[0], haa[1]};
  p.densitometry.percentiles =
      numbers(dens["percentiles"], origin, "densitometry.percentiles", p.densitometry.percentiles);
  for (double q : p.densitometry.percentiles) {
    if (q <= 0 || q >= 100) fail(origin, "densitometry.percentiles must lie in (0, 100)");
  }

  const auto cal = t["calibration"];
  const auto range = [&](const char* key, HuBand dflt) {
    const std::string name = std::string("calibration.") + key;
    const auto v = numbers(cal[key], origin, name, {dflt.lo_hu, dflt.hi_hu});
    if (v.size() != 2 || !(v[0] < v[1])) fail(origin, name + " must be [lo, hi] with lo < hi");
    return HuBand{v[0], v[1]};
  };
  p.air_check.outside_air = range("outside_air_hu", p.air_check.outside_air);
  p.air_check.trachea = range("trachea_air_hu", p.air_check.trachea);
  p.air_check.source = cal["source"].value_or(std::string{});
  return p;
}

Protocol Protocol::with_lesion_thresholds(double low_hu, double split_hu) const {
  if (!(low_hu < split_hu && split_hu < lesion.high_hu())) {
    throw Error(ExitCode::kUsage, "lesion thresholds must satisfy low < split < " +
                                      std::to_string(lesion.high_hu()));
  }
  Protocol p = *this;
  p.lesion.ground_glass = {low_hu, split_hu};
  p.lesion.solid = {split_hu, lesion.high_hu()};
  return p;
}

std::string protocol_directory() {
  if (const char* env = std::getenv("LUNGVOL_PROTOCOL_DIR")) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "lungvol" / "protocols";
    if (fs::is_directory(installed, ec)) return installed.string();
  }
  return LUNGVOL_SOURCE_PROTOCOL_DIR;
}

Protocol load_protocol(const std::string& name_or_path) {
  fs::path path(name_or_path);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    path = fs::path(protocol_directory()) / (name_or_path + ".toml");
    if (!fs::is_regular_file(path, ec)) {
      throw Error(ExitCode::kProtocol,
                  "protocol '" + name_or_path + "' is neither a file nor a built-in protocol in " +
                      protocol_directory() + " (see 'lungvol protocols')");
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ExitCode::kProtocol, "cannot read protocol file '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_protocol(ss.str(), path.string());
}

std::vector<Protocol> list_builtin_protocols() {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(protocol_directory(), ec)) {
    if (e.path().extension() == ".toml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Protocol> out;
  for (const auto& f : files) out.push_back(load_protocol(f.string()));
  return out;
}

}  // namespace lungvol
