#include "core/protocol.hpp"

#include <algorithm>
#include <cmath>
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

// ---------------------------------------------------------------------------------------------
// The protocol schema: every key a protocol file may hold, in one table. A key not in the table
// is an error (with file, line and key); a required key that is missing is an error; an
// optional key that is missing keeps the documented default (the value of the default-constructed
// Protocol below, printed by `lungvol protocols --show` and listed in docs/protocols.md).
// Adding or removing a key: one line here (and the field in core/protocol.hpp).
// ---------------------------------------------------------------------------------------------
enum class Kind { kString, kStrings, kNumber, kNumbers, kBand };
enum class Presence { kRequired, kOptional };

struct KeySpec {
  const char* table;  // "" = top level
  const char* key;
  Kind kind;
  Presence presence;
  double lo = 0, hi = 0;  // numbers: the inclusive range of every value
  bool whole = false;     // numbers that name metrics (laa950_pct, p15_hu) must be whole
  bool superseded = false;  // accepted so that older files load, not used; --show omits it unless set
  const char* unit = "";
  const char* doc = "";
  std::string& (*str)(Protocol&) = nullptr;
  std::vector<std::string>& (*strs)(Protocol&) = nullptr;
  double& (*num)(Protocol&) = nullptr;
  std::vector<double>& (*nums)(Protocol&) = nullptr;
  HuBand& (*band)(Protocol&) = nullptr;
};

constexpr Presence kRequired = Presence::kRequired;
constexpr Presence kOptional = Presence::kOptional;
// The HU values the reader can produce (io: clamped to [-3072, 32767]).
constexpr double kHuLo = -3072, kHuHi = 32767;

KeySpec text(const char* t, const char* k, Presence pr, const char* doc,
             std::string& (*f)(Protocol&)) {
  KeySpec s{t, k, Kind::kString, pr};
  s.doc = doc;
  s.str = f;
  return s;
}
KeySpec texts(const char* t, const char* k, Presence pr, const char* doc,
              std::vector<std::string>& (*f)(Protocol&)) {
  KeySpec s{t, k, Kind::kStrings, pr};
  s.doc = doc;
  s.strs = f;
  return s;
}
KeySpec number(const char* t, const char* k, Presence pr, double lo, double hi, const char* unit,
               const char* doc, double& (*f)(Protocol&)) {
  KeySpec s{t, k, Kind::kNumber, pr, lo, hi};
  s.unit = unit;
  s.doc = doc;
  s.num = f;
  return s;
}
KeySpec whole_numbers(const char* t, const char* k, Presence pr, double lo, double hi,
                      const char* unit, const char* doc, std::vector<double>& (*f)(Protocol&)) {
  KeySpec s{t, k, Kind::kNumbers, pr, lo, hi, true};
  s.unit = unit;
  s.doc = doc;
  s.nums = f;
  return s;
}
KeySpec numbers(const char* t, const char* k, Presence pr, double lo, double hi, const char* unit,
                const char* doc, std::vector<double>& (*f)(Protocol&)) {
  KeySpec s{t, k, Kind::kNumbers, pr, lo, hi, false};
  s.unit = unit;
  s.doc = doc;
  s.nums = f;
  return s;
}
KeySpec superseded(KeySpec s) {
  s.superseded = true;
  return s;
}
KeySpec band(const char* t, const char* k, Presence pr, double lo, double hi, const char* doc,
             HuBand& (*f)(Protocol&)) {
  KeySpec s{t, k, Kind::kBand, pr, lo, hi};
  s.unit = "HU";
  s.doc = doc;
  s.band = f;
  return s;
}

// clang-format off
const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> keys = {
    text("", "name", kRequired, "protocol name", [](Protocol& p) -> std::string& { return p.name; }),
    text("", "version", kRequired, "bump it whenever a number changes", [](Protocol& p) -> std::string& { return p.version; }),
    text("", "description", kOptional, "", [](Protocol& p) -> std::string& { return p.description; }),
    texts("", "references", kOptional, "", [](Protocol& p) -> std::vector<std::string>& { return p.references; }),
    // [lung]: the lung segmentation (segmentation/lungs.cpp). Keep in step with LungParams.
    number("lung", "air_max_hu", kRequired, -1000, -200, "HU", "aerated lung: voxels below this seed the lungs", [](Protocol& p) -> double& { return p.lung.air_max_hu; }),
    number("lung", "fill_max_hu", kRequired, 0, 1000, "HU", "dense tissue admitted back into the lung (not bone)", [](Protocol& p) -> double& { return p.lung.fill_max_hu; }),
    number("lung", "closing_radius_mm", kRequired, 0, 60, "mm", "rolling ball along the pleura", [](Protocol& p) -> double& { return p.lung.closing_radius_mm; }),
    number("lung", "chest_wall_mm", kRequired, 0, 100, "mm", "closing adds tissue only this close to bone", [](Protocol& p) -> double& { return p.lung.chest_wall_mm; }),
    number("lung", "bone_min_hu", kRequired, 100, 3000, "HU", "bone, for the chest-wall test", [](Protocol& p) -> double& { return p.lung.bone_min_hu; }),
    number("lung", "min_lung_ml", kRequired, 1, 2000, "mL", "smaller air regions are not lungs", [](Protocol& p) -> double& { return p.lung.min_lung_ml; }),
    band("lung", "fat_hu", kOptional, kHuLo, kHuHi, "fat: never admitted as dense lung [lo, hi)", [](Protocol& p) -> HuBand& { return p.lung.fat_hu; }),
    number("lung", "left_out_flag_pct", kOptional, 0, 100, "%", "flag dense tissue left out of the lungs above this share of the lung volume", [](Protocol& p) -> double& { return p.lung.left_out_flag_pct; }),
    // [lesion] (the classes it names are checked below).
    texts("lesion", "ground_glass", kRequired, "classes whose union is ground-glass", [](Protocol& p) -> std::vector<std::string>& { return p.lesion.ground_glass_classes; }),
    texts("lesion", "solid", kRequired, "classes whose union is solid", [](Protocol& p) -> std::vector<std::string>& { return p.lesion.solid_classes; }),
    number("lesion", "min_lesion_mm3", kRequired, 0, 100000, "mm3", "smaller lesion components are dropped", [](Protocol& p) -> double& { return p.lesion.min_lesion_mm3; }),
    superseded(number("lesion", "vessel_radius_mm", kOptional, 0, 20, "mm", "superseded (protocols before 1.2: vessels removed by thickness); accepted so older files load, not used: vessels are suppressed by shape", [](Protocol& p) -> double& { return p.lesion.vessel_radius_mm; })),
    numbers("lesion", "vessel_scales_mm", kOptional, 0.5, 20, "mm", "Gaussian scales (sigma) of the bright-tube (vessel) search, one per vessel calibre", [](Protocol& p) -> std::vector<double>& { return p.lesion.vessel_scales_mm; }),
    number("lesion", "vesselness_threshold_hu", kOptional, 1, 1000, "HU", "a bright tube of at least this strength (about a third of its contrast) is a vessel, not lesion", [](Protocol& p) -> double& { return p.lesion.vesselness_threshold_hu; }),
    // [densitometry]
    whole_numbers("densitometry", "laa_hu", kRequired, -1024, -500, "HU", "%LAA below each threshold (metric laaNNN_pct)", [](Protocol& p) -> std::vector<double>& { return p.densitometry.laa_hu; }),
    band("densitometry", "haa_hu", kRequired, kHuLo, kHuHi, "high-attenuation area band [lo, hi)", [](Protocol& p) -> HuBand& { return p.densitometry.haa; }),
    whole_numbers("densitometry", "percentiles", kRequired, 1, 99, "%", "percentile densities (metric pNN_hu)", [](Protocol& p) -> std::vector<double>& { return p.densitometry.percentiles; }),
    // [calibration]: optional section, documented defaults (the ACR phantom criterion for air).
    band("calibration", "outside_air_hu", kOptional, -1100, -800, "mean HU of outside air must lie here (inclusive)", [](Protocol& p) -> HuBand& { return p.air_check.outside_air; }),
    band("calibration", "trachea_air_hu", kOptional, -1100, -800, "mean HU of tracheal air must lie here (inclusive)", [](Protocol& p) -> HuBand& { return p.air_check.trachea; }),
    text("calibration", "source", kOptional, "where the ranges come from", [](Protocol& p) -> std::string& { return p.air_check.source; }),
  };
  return keys;
}
// clang-format on

// Keys of one [[classes]] entry.
struct ClassKey {
  const char* key;
  Presence presence;
};
const std::vector<ClassKey>& class_schema() {
  static const std::vector<ClassKey> keys = {
      {"name", kRequired}, {"lo_hu", kRequired}, {"hi_hu", kRequired}, {"description", kOptional}};
  return keys;
}

const std::vector<const char*>& table_names() {
  static const std::vector<const char*> t = {"lung", "lesion", "densitometry", "calibration"};
  return t;
}

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw Error(ExitCode::kProtocol, "protocol '" + origin + "': " + what);
}

[[noreturn]] void fail_at(const std::string& origin, const toml::source_region& where,
                          const std::string& what) {
  if (where.begin.line > 0) fail(origin, "line " + std::to_string(where.begin.line) + ": " + what);
  fail(origin, what);
}

std::string dotted(const char* table, const std::string& key) {
  return *table ? std::string(table) + "." + key : key;
}

std::string fmt_number(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string range_text(const KeySpec& s) {
  std::string r = "[" + fmt_number(s.lo) + ", " + fmt_number(s.hi) + "]";
  if (*s.unit) r += std::string(" ") + s.unit;
  return r;
}

// The value of one number node, checked: a number, finite, in range, whole when required.
double checked_number(const toml::node& n, const KeySpec& s, const std::string& origin,
                      const std::string& what) {
  const auto v = n.value<double>();
  if (!v || n.is_boolean()) fail_at(origin, n.source(), "'" + what + "' must be a number");
  if (!std::isfinite(*v)) {
    fail_at(origin, n.source(),
            "'" + what + "' = " + fmt_number(*v) + " must be a finite number in " + range_text(s));
  }
  if (*v < s.lo || *v > s.hi) {
    fail_at(origin, n.source(), "'" + what + "' = " + fmt_number(*v) + " is outside " + range_text(s));
  }
  if (s.whole && *v != std::floor(*v)) {
    fail_at(origin, n.source(),
            "'" + what + "' = " + fmt_number(*v) + " must be a whole number (it names a metric)");
  }
  return *v;
}

void apply(const KeySpec& s, const toml::node& n, Protocol& p, const std::string& origin) {
  const std::string what = dotted(s.table, s.key);
  switch (s.kind) {
    case Kind::kString: {
      const auto v = n.value<std::string>();
      if (!v) fail_at(origin, n.source(), "'" + what + "' must be a string");
      if (s.presence == kRequired && v->empty()) fail_at(origin, n.source(), "'" + what + "' is empty");
      s.str(p) = *v;
      return;
    }
    case Kind::kStrings: {
      std::vector<std::string> out;
      if (const auto v = n.value<std::string>()) {
        out.push_back(*v);
      } else if (const auto* arr = n.as_array()) {
        for (const auto& e : *arr) {
          const auto sv = e.value<std::string>();
          if (!sv) fail_at(origin, e.source(), "'" + what + "' must be an array of strings");
          out.push_back(*sv);
        }
      } else {
        fail_at(origin, n.source(), "'" + what + "' must be a string or an array of strings");
      }
      s.strs(p) = std::move(out);
      return;
    }
    case Kind::kNumber:
      s.num(p) = checked_number(n, s, origin, what);
      return;
    case Kind::kNumbers: {
      const auto* arr = n.as_array();
      if (!arr) fail_at(origin, n.source(), "'" + what + "' must be an array of numbers");
      std::vector<double> out;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const double v = checked_number((*arr)[i], s, origin, what + "[" + std::to_string(i) + "]");
        if (std::find(out.begin(), out.end(), v) != out.end()) {
          fail_at(origin, (*arr)[i].source(),
                  "'" + what + "' lists " + fmt_number(v) + " twice" +
                      (s.whole ? " (each names a metric)" : ""));
        }
        out.push_back(v);
      }
      if (out.empty() || out.size() > 10) {
        fail_at(origin, n.source(), "'" + what + "' must list 1 to 10 values");
      }
      s.nums(p) = std::move(out);
      return;
    }
    case Kind::kBand: {
      const auto* arr = n.as_array();
      if (!arr || arr->size() != 2) {
        fail_at(origin, n.source(), "'" + what + "' must be [lo, hi] with lo < hi");
      }
      const double lo = checked_number((*arr)[0], s, origin, what + "[0]");
      const double hi = checked_number((*arr)[1], s, origin, what + "[1]");
      if (!(lo < hi)) fail_at(origin, n.source(), "'" + what + "' must be [lo, hi] with lo < hi");
      s.band(p) = {lo, hi};
      return;
    }
  }
}

std::string known_keys(const char* table) {
  std::string out;
  for (const auto& s : schema()) {
    if (std::string(s.table) == table) out += (out.empty() ? "" : ", ") + std::string(s.key);
  }
  return out;
}

bool is_table_name(const std::string& k) {
  for (const char* t : table_names()) {
    if (k == t) return true;
  }
  return false;
}

// Unknown keys and sections anywhere in the file: a misspelt key must never leave the default
// (or nothing) in force without a word.
void reject_unknown(const toml::table& t, const std::string& origin) {
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    if (key == "classes") {
      const auto* arr = v.as_array();
      if (!arr || !arr->is_array_of_tables()) {
        fail_at(origin, k.source(), "'classes' must be an array of tables ([[classes]])");
      }
      for (const auto& entry : *arr) {
        for (auto&& [ck, cv] : *entry.as_table()) {
          const std::string cname(ck.str());
          const bool known = std::any_of(class_schema().begin(), class_schema().end(),
                                         [&](const ClassKey& c) { return cname == c.key; });
          if (!known) {
            fail_at(origin, ck.source(),
                    "unknown key 'classes." + cname + "' (a [[classes]] entry has name, lo_hu, "
                    "hi_hu, description)");
          }
          (void)cv;
        }
      }
      continue;
    }
    if (is_table_name(key)) {
      const auto* sub = v.as_table();
      if (!sub) fail_at(origin, k.source(), "'" + key + "' must be a section ([" + key + "])");
      for (auto&& [sk, sv] : *sub) {
        const std::string skey(sk.str());
        const bool known = std::any_of(schema().begin(), schema().end(), [&](const KeySpec& s) {
          return key == s.table && skey == s.key;
        });
        if (!known) {
          fail_at(origin, sk.source(),
                  "unknown key '" + key + "." + skey + "' (the keys of [" + key + "] are " +
                      known_keys(key.c_str()) + ")");
        }
        (void)sv;
      }
      continue;
    }
    const bool known = std::any_of(schema().begin(), schema().end(), [&](const KeySpec& s) {
      return !*s.table && key == s.key;
    });
    if (!known) {
      if (v.is_table()) {
        std::string sections;
        for (const char* n : table_names()) sections += (sections.empty() ? "" : ", ") + std::string(n);
        fail_at(origin, k.source(),
                "unknown section [" + key + "] (sections: " + sections + ", [[classes]])");
      }
      fail_at(origin, k.source(),
              "unknown key '" + key + "' (top-level keys: " + known_keys("") + ")");
    }
  }
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

std::string toml_string(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
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
  reject_unknown(tbl, origin);
  Protocol p;
  p.sha256 = sha256_hex(text);
  p.source_path = origin;
  for (const KeySpec& s : schema()) {
    const toml::node* section = *s.table ? tbl.get(s.table) : &tbl;
    const toml::node* n = section && section->is_table() ? section->as_table()->get(s.key) : nullptr;
    if (!n) {
      if (s.presence == kRequired) {
        const std::string where =
            !*s.table ? "" : section ? " in [" + std::string(s.table) + "]"
                                     : " (no [" + std::string(s.table) + "] section)";
        if (section) {
          fail_at(origin, section->source(), "missing key '" + dotted(s.table, s.key) + "'" + where +
                                                 " (required; see docs/protocols.md)");
        }
        fail(origin, "missing key '" + dotted(s.table, s.key) + "'" + where +
                         " (required; see docs/protocols.md)");
      }
      p.defaulted.push_back(dotted(s.table, s.key));
      continue;
    }
    apply(s, *n, p, origin);
  }

  const auto* classes = tbl["classes"].as_array();
  if (!classes || classes->empty()) fail(origin, "needs at least one [[classes]] entry");
  KeySpec hu{"classes", "", Kind::kNumber, kRequired, kHuLo, kHuHi};
  hu.unit = "HU";
  for (const auto& node : *classes) {
    const toml::table& ct = *node.as_table();
    HuClass hc;
    const auto name = ct["name"].value<std::string>();
    if (!name || name->empty()) fail_at(origin, node.source(), "a [[classes]] entry has no name");
    hc.name = *name;
    for (const char* k : {"lo_hu", "hi_hu"}) {
      const toml::node* v = ct.get(k);
      const std::string what = "classes." + hc.name + "." + k;
      if (!v) fail_at(origin, node.source(), "missing key '" + what + "'");
      (std::string(k) == "lo_hu" ? hc.band.lo_hu : hc.band.hi_hu) = checked_number(*v, hu, origin, what);
    }
    if (const toml::node* d = ct.get("description")) {
      const auto dv = d->value<std::string>();
      if (!dv) fail_at(origin, d->source(), "'classes." + hc.name + ".description' must be a string");
      hc.description = *dv;
    }
    if (!(hc.band.lo_hu < hc.band.hi_hu)) {
      fail_at(origin, node.source(), "class '" + hc.name + "' needs lo_hu < hi_hu");
    }
    for (const auto& other : p.classes) {
      if (other.name == hc.name) fail_at(origin, node.source(), "class '" + hc.name + "' defined twice");
    }
    p.classes.push_back(hc);
  }

  p.lesion.ground_glass = union_of(p, p.lesion.ground_glass_classes, origin, "lesion.ground_glass");
  p.lesion.solid = union_of(p, p.lesion.solid_classes, origin, "lesion.solid");
  if (p.lesion.ground_glass.hi_hu != p.lesion.solid.lo_hu) {
    fail(origin, "lesion.ground_glass must end where lesion.solid starts (the split)");
  }
  return p;
}

std::string describe_protocol(const Protocol& p_in) {
  Protocol p = p_in;  // the accessors take a mutable protocol
  std::ostringstream out;
  out << "# Every setting in effect for protocol '" << p.name << "' " << p.version << "\n";
  out << "# file: " << p.source_path << "\n# sha256: " << p.sha256 << "\n";
  out << "# '(default)' marks an optional key the file does not set: the documented default.\n";
  std::string table = "";
  auto note = [&](const KeySpec& s) {
    std::string n;
    if (*s.doc) n += s.doc;
    if (s.kind == Kind::kNumber || s.kind == Kind::kNumbers || s.kind == Kind::kBand) {
      n += std::string(n.empty() ? "" : "; ") + "allowed " + range_text(s);
    }
    const std::string key = dotted(s.table, s.key);
    if (std::find(p.defaulted.begin(), p.defaulted.end(), key) != p.defaulted.end()) {
      n += " (default)";
    }
    return n.empty() ? std::string() : "  # " + n;
  };
  auto emit_table = [&](const char* t) {
    if (table == t) return;
    table = t;
    out << "\n[" << t << "]\n";
  };
  for (const KeySpec& s : schema()) {
    if (s.superseded && std::find(p.defaulted.begin(), p.defaulted.end(),
                                  dotted(s.table, s.key)) != p.defaulted.end()) {
      continue;  // not in the file and not used: printing it would suggest it matters
    }
    if (*s.table) emit_table(s.table);
    out << s.key << " = ";
    switch (s.kind) {
      case Kind::kString:
        out << toml_string(s.str(p));
        break;
      case Kind::kStrings: {
        out << "[";
        const auto& v = s.strs(p);
        for (std::size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << toml_string(v[i]);
        out << "]";
        break;
      }
      case Kind::kNumber:
        out << fmt_number(s.num(p));
        break;
      case Kind::kNumbers: {
        out << "[";
        const auto& v = s.nums(p);
        for (std::size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << fmt_number(v[i]);
        out << "]";
        break;
      }
      case Kind::kBand:
        out << "[" << fmt_number(s.band(p).lo_hu) << ", " << fmt_number(s.band(p).hi_hu) << "]";
        break;
    }
    out << note(s) << "\n";
  }
  for (const auto& c : p.classes) {
    out << "\n[[classes]]\nname = " << toml_string(c.name) << "\nlo_hu = " << fmt_number(c.band.lo_hu)
        << "\nhi_hu = " << fmt_number(c.band.hi_hu) << "\n";
    if (!c.description.empty()) out << "description = " << toml_string(c.description) << "\n";
  }
  out << "\n# derived: lesion band [" << fmt_number(p.lesion.low_hu()) << ", "
      << fmt_number(p.lesion.high_hu()) << ") HU, ground-glass [" << fmt_number(p.lesion.low_hu())
      << ", " << fmt_number(p.lesion.split_hu()) << "), solid [" << fmt_number(p.lesion.split_hu())
      << ", " << fmt_number(p.lesion.high_hu()) << ")\n";
  return out.str();
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
