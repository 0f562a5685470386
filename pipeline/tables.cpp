#include "pipeline/tables.hpp"

#include <cmath>

#include "core/fs.hpp"
#include "core/version.hpp"
#include "pipeline/analyze.hpp"
#include "report/csv.hpp"

namespace lungvol::pipeline {

std::vector<Measurement> region_measurements(const RegionResult& r) {
  const auto& v = r.volumes;
  const auto& d = r.density;
  std::vector<Measurement> m = {
      {"volume_ml", v.volume_ml, "mL"},   {"lesion_ml", v.lesion_ml, "mL"},
      {"ggo_ml", v.ggo_ml, "mL"},         {"solid_ml", v.solid_ml, "mL"},
      {"lesion_pct", v.lesion_pct, "%"},  {"ggo_pct", v.ggo_pct, "%"},
      {"solid_pct", v.solid_pct, "%"},
  };
  if (!d.empty) {
    m.push_back({"mean_hu", d.mean_hu, "HU"});
    m.push_back({"median_hu", d.median_hu, "HU"});
    m.push_back({"sd_hu", d.sd_hu, "HU"});
    m.push_back({"skewness", d.skewness, "1"});
    m.push_back({"kurtosis", d.kurtosis, "1"});
    for (const auto& [q, hu] : d.percentiles) {
      m.push_back({"p" + std::to_string(int(std::lround(q))) + "_hu", hu, "HU"});
    }
    for (const auto& [t, pct] : d.laa_pct) {
      m.push_back({"laa" + std::to_string(int(std::lround(-t))) + "_pct", pct, "%"});
    }
    m.push_back({"haa_pct", d.haa_pct, "%"});
    m.push_back({"mass_g", d.mass_g, "g"});
  }
  for (const auto& c : v.classes) {
    m.push_back({"class_" + c.name + "_ml", c.volume_ml, "mL"});
    m.push_back({"class_" + c.name + "_pct", c.pct, "%"});
  }
  return m;
}

void write_measurements_csv(const Analysis& a, const std::string& path) {
  write_stream_atomic(path, [&](std::ostream& out) {
    report::CsvWriter w(out);
    w.row({"series_instance_uid", "input_sha256", "protocol", "protocol_version",
           "protocol_sha256", "software_version", "analyzed_at", "region", "metric", "value",
           "unit"});
    for (const auto& r : a.regions) {
      for (const auto& m : region_measurements(r)) {
        w.row({a.input.series.series_instance_uid, a.input.sha256, a.protocol.name,
               a.protocol.version, a.protocol.sha256, kSoftwareVersion, a.analyzed_at, r.name,
               m.metric, m.value, m.unit});
      }
    }
    if (!a.meshes) return;
    // Surface areas of the meshes (analyze --meshes): lungs per side, lesion classes together.
    for (const auto& s : a.meshes->surfaces) {
      if (s.vtp.empty()) continue;
      const bool lung = s.name == "right_lung" || s.name == "left_lung";
      const std::string region = s.name == "right_lung" ? "right"
                                 : s.name == "left_lung" ? "left"
                                                         : "lungs";
      const std::string metric = lung ? "surface_area_mm2" : s.name == "ground_glass"
                                                                 ? "ggo_surface_area_mm2"
                                                                 : "solid_surface_area_mm2";
      w.row({a.input.series.series_instance_uid, a.input.sha256, a.protocol.name,
             a.protocol.version, a.protocol.sha256, kSoftwareVersion, a.analyzed_at, region,
             metric, s.area_mm2, "mm2"});
    }
  });
}

void write_histograms_csv(const Analysis& a, const std::string& path) {
  write_stream_atomic(path, [&](std::ostream& out) {
    report::CsvWriter w(out);
    w.row({"region", "kind", "hu", "count"});
    for (const auto& r : a.regions) {
      for (const auto* kind : {"lung", "suppressed"}) {
        const HuHistogram& h =
            std::string(kind) == "lung" ? r.histograms.lung : r.histograms.suppressed;
        for (int b = 0; b < HuHistogram::kBins; ++b) {
          if (h.counts[b]) w.row({r.name, kind, b + HuHistogram::kMinHu, h.counts[b]});
        }
      }
    }
  });
}

}  // namespace lungvol::pipeline
