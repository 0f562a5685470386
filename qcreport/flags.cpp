#include "qcreport/flags.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/log.hpp"
#include "batch/qc.hpp"
#include "io/image_io.hpp"
#include <map>

namespace fs = std::filesystem;

namespace lungvol::qcreport {

std::size_t lesion_voxels_on_end_slices(const std::string& lesions_path) {
  const LabelImage labels = io::read_label_image(lesions_path);
  const std::size_t nz = labels.geom.size[2];
  const std::size_t slice = labels.geom.slice_voxels();
  if (nz == 0 || labels.data.size() < slice * nz) return 0;
  std::size_t n = 0;
  for (const std::size_t k : {std::size_t{0}, nz - 1}) {
    const std::uint8_t* p = labels.data.data() + k * slice;
    for (std::size_t i = 0; i < slice; ++i) n += p[i] != 0;
    if (nz == 1) break;
  }
  return n;
}

namespace {

std::optional<Flag> border_flag(const Visit& v) {
  if (v.scan_dir.empty() || v.metrics_end_slices || !v.scan || v.scan->status != "ok") {
    return std::nullopt;
  }
  const fs::path file = fs::path(v.scan_dir) / "lesions.nii.gz";
  if (!fs::exists(file)) return std::nullopt;
  try {
    const std::size_t n = lesion_voxels_on_end_slices(file.string());
    if (n == 0) return std::nullopt;
    return pipeline::make_flag("lesion_at_border", static_cast<double>(n), "voxels",
                               fmt::format("{} lesion voxels on the first/last slice: the lesion "
                                           "may extend beyond the scanned range",
                                           n));
  } catch (const std::exception& e) {
    return pipeline::make_flag("lesion_at_border", std::nullopt, "",
                               "lesions.nii.gz cannot be read: " + std::string(e.what()));
  }
}

// Decompressing a label map dominates the report's run time on a large batch (about 0.5 s
// for 512 x 512 x 600), so the files are read in parallel, one per thread.
std::vector<std::optional<Flag>> border_flags(const BatchView& view) {
  std::vector<const Visit*> visits;
  for (const auto& s : view.subjects) {
    for (const auto& v : s.visits) visits.push_back(&v);
  }
  std::vector<std::optional<Flag>> out(visits.size());
  const auto n = static_cast<std::int64_t>(visits.size());
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] = border_flag(*visits[static_cast<std::size_t>(i)]);
  return out;
}

}  // namespace

void add_flags(BatchView& view, const FlagOptions& options) {
  batch::QcOptions o;
  o.lung_change_pct = options.lung_change_pct;
  o.inspiration_mass_pct = options.inspiration_mass_pct;
  o.min_baseline_lesion_pct = options.min_baseline_lesion_pct;
  std::map<batch::QcKey, batch::ScanQc> qc;
  {
    batch::Store store((fs::path(view.outdir) / "results.sqlite").string(),
                       batch::Store::Mode::kReadOnly);
    qc = batch::compute_qc(store, view.visit_names, o);
  }
  const auto border =
      options.check_border ? border_flags(view) : std::vector<std::optional<Flag>>();
  std::size_t n = 0;
  for (auto& s : view.subjects) {
    for (auto& v : s.visits) {
      v.flags.clear();
      if (const auto it = qc.find({s.id, v.visit}); it != qc.end()) v.flags = it->second.flags;
      if (n < border.size() && border[n]) pipeline::add_flag(v.flags, *border[n]);
      pipeline::sort_flags(v.flags);
      ++n;
      v.qc_score = pipeline::qc_score(v.flags);
    }
  }
}

}  // namespace lungvol::qcreport
