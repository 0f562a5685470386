#include "qcreport/flags.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/log.hpp"
#include "io/image_io.hpp"

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

void flag_lung_volume(Subject& s, double limit_pct) {
  const Visit* previous = nullptr;
  for (auto& v : s.visits) {
    const auto it = v.lungs.find("volume_ml");
    if (it == v.lungs.end()) continue;
    if (previous) {
      const double before = previous->lungs.at("volume_ml");
      const double change = before > 0 ? 100.0 * (it->second - before) / before : NAN;
      if (!std::isfinite(change) || std::abs(change) > limit_pct) {
        v.flags.push_back({"lung_volume_change",
                           fmt::format("lung volume {:.0f} mL at {} -> {:.0f} mL ({:+.1f} %, limit "
                                       "{:g} %)",
                                       before, previous->visit, it->second, change, limit_pct)});
      }
    }
    previous = &v;
  }
}

std::optional<Flag> border_flag(const Visit& v) {
  if (v.scan_dir.empty()) return std::nullopt;
  const fs::path file = fs::path(v.scan_dir) / "lesions.nii.gz";
  if (!fs::exists(file)) return std::nullopt;
  try {
    const std::size_t n = lesion_voxels_on_end_slices(file.string());
    if (n == 0) return std::nullopt;
    return Flag{"lesion_at_border",
                fmt::format("{} lesion voxels on the first/last slice: the lesion may extend "
                            "beyond the scanned range",
                            n)};
  } catch (const std::exception& e) {
    return Flag{"lesion_at_border", "lesions.nii.gz cannot be read: " + std::string(e.what())};
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
  const std::string baseline = view.visit_names.empty() ? "" : view.visit_names.front();
  const auto border =
      options.check_border ? border_flags(view) : std::vector<std::optional<Flag>>();
  std::size_t n = 0;
  for (auto& s : view.subjects) {
    flag_lung_volume(s, options.lung_change_pct);
    for (auto& v : s.visits) {
      if (n < border.size() && border[n]) v.flags.push_back(*border[n]);
      ++n;
      for (const auto& w : v.warnings) v.flags.push_back({"input_warning", w});
      if (v.calibration_ok && !*v.calibration_ok) {
        std::string why;
        for (const auto& f : v.calibration_flags) why += (why.empty() ? "" : "; ") + f;
        v.flags.push_back({"calibration", "HU calibration out of tolerance" +
                                              (why.empty() ? std::string() : ": " + why)});
      }
      const auto lesion = v.lungs.find("lesion_pct");
      if (v.visit == baseline && lesion != v.lungs.end() &&
          lesion->second < options.min_baseline_lesion_pct) {
        v.flags.push_back(
            {"low_baseline_lesion", fmt::format("baseline lesion {:.2f} % of lung is below {:g} %: "
                                                "relative changes are unstable",
                                                lesion->second, options.min_baseline_lesion_pct)});
      }
    }
  }
}

}  // namespace lungvol::qcreport
