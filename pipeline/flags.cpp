#include "pipeline/flags.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.hpp"

namespace lungvol::pipeline {

const std::vector<FlagSpec>& flag_table() {
  // code, cause, severity, weight, meaning. Weights: a failed scan outranks everything; what
  // changes the measured lesion burden itself (segmentation) outranks what limits comparability
  // (calibration, coverage), which outranks what a reader merely should know.
  static const std::vector<FlagSpec> kTable = {
      {"scan_failed", "failure", "fail", 100, "the scan could not be analyzed (reason and exit code given)"},
      {"identity", "identity", "fail", 50, "the scan may not be this subject's or this visit's (docs/batch.md, identity checks)"},
      {"dense_left_out", "dense_tissue", "warn", 30, "dense tissue next to the lungs was left out of the lung mask (lesions may be missed)"},
      {"lung_volume_jump", "volume_jump", "warn", 25, "lung volume changed between visits by more than inspiration explains"},
      {"segmentation_disagreement", "segmentation_disagreement", "warn", 25, "the lung mask disagrees with the baseline's (or the best-aerated visit's) carried into this scan by the registration"},
      {"calibration", "calibration", "warn", 20, "HU calibration (air) out of tolerance: densities not comparable"},
      {"coverage_cut", "coverage", "warn", 20, "the lungs are cut at the first or last slice: part of the lung is not scanned"},
      {"lesion_at_border", "coverage", "info", 10, "lesion voxels on the first or last slice: the lesion may continue outside the scan"},
      {"given_masks", "given_masks", "info", 5, "measured with reviewer-given masks instead of lungvol's segmentation"},
      {"input_warning", "input", "info", 5, "reading or segmentation warnings (listed in the message)"},
      {"low_baseline_lesion", "baseline", "info", 5, "baseline lesion burden near zero: relative changes are unstable"},
  };
  return kTable;
}

const FlagSpec* find_flag_spec(const std::string& code) {
  for (const auto& f : flag_table()) {
    if (code == f.code) return &f;
  }
  return nullptr;
}

QcFlag make_flag(const std::string& code, std::optional<double> value, const std::string& unit,
                 const std::string& message) {
  const FlagSpec* spec = find_flag_spec(code);
  if (!spec) throw Error(ExitCode::kProcessing, "unknown QC flag code '" + code + "'");
  if (value && !std::isfinite(*value)) value.reset();
  return QcFlag{code, spec->cause, spec->severity, value, unit, message};
}

void add_flag(std::vector<QcFlag>& flags, QcFlag f) {
  for (auto& g : flags) {
    if (g.code == f.code) {
      if (!f.message.empty() && g.message.find(f.message) == std::string::npos) {
        g.message += (g.message.empty() ? "" : "; ") + f.message;
      }
      return;
    }
  }
  flags.push_back(std::move(f));
}

int qc_score(const std::vector<QcFlag>& flags) {
  std::map<std::string, int> by_cause;
  for (const auto& f : flags) {
    const FlagSpec* spec = find_flag_spec(f.code);
    const int w = spec ? spec->weight : 0;
    auto& slot = by_cause[f.cause];
    slot = std::max(slot, w);
  }
  int score = 0;
  for (const auto& [cause, w] : by_cause) score += w;
  return score;
}

namespace {

const nlohmann::json* path(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  const nlohmann::json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object()) return nullptr;
    const auto it = p->find(k);
    if (it == p->end()) return nullptr;
    p = &*it;
  }
  return p;
}

double number_at(const nlohmann::json& j, std::initializer_list<const char*> keys, double fallback) {
  const nlohmann::json* p = path(j, keys);
  return p && p->is_number() ? p->get<double>() : fallback;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::vector<QcFlag> scan_flags(const nlohmann::json& m, const ScanFlagLimits& limits) {
  std::vector<QcFlag> out;
  // Dense tissue left out of the lung mask: `lungs.dense` (the segmentation's report), also
  // accepted under regions.lungs and segmentation; absent = nothing left out.
  const nlohmann::json* dense = nullptr;
  for (auto keys : {std::initializer_list<const char*>{"lungs", "dense"},
                    std::initializer_list<const char*>{"regions", "lungs", "dense"},
                    std::initializer_list<const char*>{"segmentation", "dense"}}) {
    if ((dense = path(m, keys)) && dense->is_object()) break;
    dense = nullptr;
  }
  if (dense && dense->contains("flagged") && (*dense)["flagged"].is_boolean()) {
    // The segmentation's own verdict, under the protocol's threshold (lung.left_out_flag_pct):
    // one source of truth for what counts as too much dense tissue left out or admitted.
    if ((*dense)["flagged"].get<bool>()) {
      const double ml = number_at(*dense, {"left_out_ml"}, 0);
      const double pct = number_at(*dense, {"left_out_pct"}, 0);
      std::string why;
      if (dense->value("left_out_flagged", false)) why += fmt::format("{:.1f} mL ({:.2f} %) left out", ml, pct);
      if (dense->value("blobs_flagged", false)) {
        why += fmt::format("{}{:.1f} mL admitted away from the chest wall", why.empty() ? "" : "; ",
                           number_at(*dense, {"blobs_added_ml"}, 0));
      }
      if (dense->value("right_share_flagged", false)) {
        why += fmt::format("{}right lung {:.1f} % of the lungs", why.empty() ? "" : "; ",
                           100 * number_at(*dense, {"right_share"}, 0));
      }
      if (dense->value("base_flagged", false)) {
        why += fmt::format("{}lung base higher at the back than its lowest part by {:.0f} mm "
                           "(right) and {:.0f} mm (left), limit {:.0f} mm",
                           why.empty() ? "" : "; ", number_at(*dense, {"base_rise_right_mm"}, 0),
                           number_at(*dense, {"base_rise_left_mm"}, 0),
                           number_at(*dense, {"base_rise_limit_mm"}, 0));
      }
      out.push_back(make_flag("dense_left_out", pct, "%",
                              "dense tissue at the lung boundary needs review: " + why +
                                  fmt::format(" (threshold {:g} % of the lung volume)",
                                              number_at(*dense, {"flag_threshold_pct"}, 0))));
    }
  } else if (dense) {
    const double ml = number_at(*dense, {"left_out_ml"}, 0);
    const double pct = number_at(*dense, {"left_out_pct"}, 0);
    if (pct >= limits.dense_left_out_pct || ml >= limits.dense_left_out_ml) {
      out.push_back(make_flag("dense_left_out", pct, "%",
                              fmt::format("{:.1f} mL of dense tissue ({:.2f} % of lung volume) left "
                                          "out of the lung mask (limits {:g} % or {:g} mL)",
                                          ml, pct, limits.dense_left_out_pct,
                                          limits.dense_left_out_ml)));
    }
  }
  // Calibration: one flag whatever the number of references out of tolerance.
  if (const nlohmann::json* cal = path(m, {"calibration"}); cal && cal->is_object()) {
    const auto ok = cal->find("within_tolerance");
    if (cal->value("checked", false) && ok != cal->end() && ok->is_boolean() && !ok->get<bool>()) {
      std::string why;
      std::optional<double> worst;
      const double expected = number_at(*cal, {"expected_air_hu"}, -1000);
      if (const auto fl = cal->find("flags"); fl != cal->end() && fl->is_array()) {
        for (const auto& f : *fl) {
          if (f.is_string()) why += (why.empty() ? "" : "; ") + f.get<std::string>();
        }
      }
      for (const char* ref : {"outside_air", "trachea"}) {
        const nlohmann::json* mean = path(*cal, {ref, "mean_hu"});
        if (mean && mean->is_number()) {
          const double d = mean->get<double>() - expected;
          if (!worst || std::abs(d) > std::abs(*worst)) worst = d;
        }
      }
      out.push_back(make_flag("calibration", worst, "HU",
                              "air reads off its expected " + fmt::format("{:g}", expected) +
                                  " HU" + (why.empty() ? std::string() : ": " + why) +
                                  " (value: the largest deviation of a reference's mean)"));
    }
  }
  // Coverage: input.coverage (the reader's report of the scanned range) when present, else the
  // lung voxels on the end slices that analyze counts.
  if (const nlohmann::json* cov = path(m, {"input", "coverage"}); cov && cov->is_object()) {
    const bool first = cov->value("cut_at_first_slice", false);
    const bool last = cov->value("cut_at_last_slice", false);
    const double fraction = number_at(*cov, {"boundary_fraction"}, 0);
    if (first || last || fraction > limits.boundary_fraction) {
      std::string where = first && last ? "first and last" : first ? "first" : last ? "last" : "";
      out.push_back(make_flag(
          "coverage_cut", fraction, "1",
          (where.empty() ? std::string("the lungs reach the scan's end slices")
                         : "the lungs are cut at the " + where + " slice") +
              fmt::format(" (boundary fraction {:.3f}, limit {:g})", fraction,
                          limits.boundary_fraction)));
    }
  } else if (const nlohmann::json* ends = path(m, {"segmentation", "end_slices"});
             ends && ends->is_object()) {
    const double fraction = number_at(*ends, {"lung_fraction"}, 0);
    if (fraction > limits.boundary_fraction) {
      out.push_back(make_flag("coverage_cut", fraction, "1",
                              fmt::format("{:.1f} % of the lung voxels lie on the first or last "
                                          "slice (limit {:g} %): the lungs are cut",
                                          100 * fraction, 100 * limits.boundary_fraction)));
    }
  }
  if (const nlohmann::json* n = path(m, {"segmentation", "end_slices", "lesion_voxels"});
      n && n->is_number() && n->get<double>() > 0) {
    out.push_back(make_flag("lesion_at_border", n->get<double>(), "voxels",
                            fmt::format("{:g} lesion voxels on the first/last slice: the lesion may "
                                        "extend beyond the scanned range",
                                        n->get<double>())));
  }
  // Reviewer-given masks.
  std::string given;
  for (const char* which : {"lungs", "lesions"}) {
    const nlohmann::json* g = path(m, {"segmentation", which});
    if (g && g->is_string() && g->get<std::string>() == "given") {
      const nlohmann::json* p = path(m, {"segmentation", (std::string(which) + "_mask").c_str(), "path"});
      given += (given.empty() ? "" : "; ") + std::string(which) + " mask " +
               (p && p->is_string() ? p->get<std::string>() : std::string("given"));
    }
  }
  if (!given.empty()) out.push_back(make_flag("given_masks", std::nullopt, "", "measured with " + given));
  // Other warnings: one flag, the count as its value. Calibration warnings belong to the
  // calibration flag above; the DICOM SEG/SR note is about outputs, not the numbers.
  std::vector<std::string> warnings;
  if (const nlohmann::json* w = path(m, {"input", "warnings"}); w && w->is_array()) {
    for (const auto& s : *w) {
      if (!s.is_string()) continue;
      const std::string t = s.get<std::string>();
      // The dense-tissue warnings belong to the dense_left_out flag.
      if (starts_with(t, "calibration: ") || starts_with(t, "DICOM SEG/SR not written") ||
          starts_with(t, "dense tissue ")) {
        continue;
      }
      if (std::find(warnings.begin(), warnings.end(), t) == warnings.end()) warnings.push_back(t);
    }
  }
  if (!warnings.empty()) {
    std::string msg;
    for (const auto& w : warnings) msg += (msg.empty() ? "" : " | ") + w;
    out.push_back(make_flag("input_warning", static_cast<double>(warnings.size()), "warnings", msg));
  }
  return out;
}

void sort_flags(std::vector<QcFlag>& flags) {
  const auto pos = [](const std::string& code) {
    const auto& t = flag_table();
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (code == t[i].code) return i;
    }
    return t.size();
  };
  std::stable_sort(flags.begin(), flags.end(),
                   [&](const QcFlag& a, const QcFlag& b) { return pos(a.code) < pos(b.code); });
}

nlohmann::json flags_json(const std::vector<QcFlag>& flags) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& f : flags) {
    a.push_back({{"code", f.code},
                 {"cause", f.cause},
                 {"severity", f.severity},
                 {"value", f.value ? nlohmann::json(*f.value) : nlohmann::json(nullptr)},
                 {"unit", f.unit},
                 {"message", f.message}});
  }
  return a;
}

std::vector<QcFlag> flags_from_json(const nlohmann::json& j) {
  std::vector<QcFlag> out;
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("code") || !e["code"].is_string()) continue;
    QcFlag f;
    f.code = e["code"].get<std::string>();
    const FlagSpec* spec = find_flag_spec(f.code);
    f.cause = e.value("cause", spec ? std::string(spec->cause) : f.code);
    f.severity = e.value("severity", spec ? std::string(spec->severity) : std::string("warn"));
    if (e.contains("value") && e["value"].is_number()) f.value = e["value"].get<double>();
    f.unit = e.value("unit", std::string());
    f.message = e.value("message", std::string());
    out.push_back(std::move(f));
  }
  return out;
}

std::string flag_codes(const std::vector<QcFlag>& flags) {
  std::string out;
  for (const auto& spec : flag_table()) {
    for (const auto& f : flags) {
      if (f.code == spec.code) {
        out += (out.empty() ? "" : ";") + f.code;
        break;
      }
    }
  }
  for (const auto& f : flags) {
    if (!find_flag_spec(f.code) && out.find(f.code) == std::string::npos) {
      out += (out.empty() ? "" : ";") + f.code;
    }
  }
  return out;
}

}  // namespace lungvol::pipeline
