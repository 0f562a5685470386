#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "apps/command.hpp"
#include "io/image_io.hpp"
#include "core/error.hpp"
#include "io/series.hpp"

namespace lungvol::app {
namespace {

nlohmann::json to_json(const io::Discovery& d, const std::string& chosen, const std::string& why) {
  nlohmann::json j;
  j["series"] = nlohmann::json::array();
  for (const auto& s : d.series) {
    j["series"].push_back({{"series_instance_uid", s.series_instance_uid},
                           {"study_instance_uid", s.study_instance_uid},
                           {"study_date", s.study_date},
                           {"patient_id", s.patient_id},
                           {"description", s.description},
                           {"modality", s.modality},
                           {"kernel", s.kernel},
                           {"image_type", s.image_type},
                           {"manufacturer", s.manufacturer},
                           {"transfer_syntax", s.transfer_syntax},
                           {"rows", s.rows},
                           {"columns", s.columns},
                           {"n_files", s.n_files},
                           {"n_slices", s.n_slices},
                           {"spacing_mm", s.spacing_mm},
                           {"slice_thickness_mm", s.slice_thickness_mm},
                           {"axial", s.axial},
                           {"orientation", s.orientation},
                           {"original", s.original},
                           {"usable", s.usable()},
                           {"chosen", s.series_instance_uid == chosen},
                           {"problems", s.problems},
                           {"warnings", s.warnings}});
  }
  j["selection_reason"] = why;
  j["skipped"] = nlohmann::json::array();
  for (const auto& s : d.skipped) j["skipped"].push_back({{"path", s.path}, {"reason", s.reason}});
  return j;
}

void print_table(const io::Discovery& d, const std::string& chosen, const std::string& why) {
  std::cout << fmt::format("{} CT series, {} files skipped\n", d.series.size(), d.skipped.size());
  for (const auto& s : d.series) {
    std::cout << fmt::format(
        "{} {}\n    '{}'  {}  kernel '{}'  {} slices ({} files)  {:g} x {:g} x {:g} mm  thickness "
        "{:g} mm  {}{}  {}\n",
        s.series_instance_uid == chosen ? "*" : " ",
        s.series_instance_uid.empty() ? std::string("(blank SeriesInstanceUID)") : s.series_instance_uid,
        s.description,
        s.modality, s.kernel, s.n_slices, s.n_files, s.spacing_mm[0], s.spacing_mm[1],
        s.spacing_mm[2], s.slice_thickness_mm, s.orientation.empty() ? "orientation unknown" : s.orientation,
        s.original ? ", ORIGINAL" : "", s.transfer_syntax);
    for (const auto& p : s.problems) std::cout << "    PROBLEM: " << p << "\n";
    for (const auto& w : s.warnings) std::cout << "    warning: " << w << "\n";
  }
  if (!chosen.empty()) std::cout << "* chosen: " << why << "\n";
  if (!d.skipped.empty()) {
    std::map<std::string, std::vector<std::string>> by_reason;
    for (const auto& s : d.skipped) by_reason[s.reason].push_back(s.path);
    std::cout << "skipped:\n";
    for (const auto& [reason, paths] : by_reason) {
      std::cout << fmt::format("  {} file(s): {}\n", paths.size(), reason);
      for (std::size_t i = 0; i < paths.size() && i < 3; ++i) std::cout << "    " << paths[i] << "\n";
      if (paths.size() > 3) std::cout << "    ...\n";
    }
  }
}

}  // namespace

Action add_inspect_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("inspect", "list the DICOM series found under PATH and what was skipped");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("path", *path, "DICOM folder or file")->required();
  cmd->add_flag("--json", *json, "machine-readable output");
  return [path, json]() {
    // An image file (NIfTI, NRRD, MHA) holds no DICOM series: say what to do with it.
    std::error_code ec;
    if (std::filesystem::is_regular_file(*path, ec) && io::is_image_file(*path)) {
      std::cerr << "lungvol: error: '" << *path << "' is not DICOM but an image file (NIfTI / "
                << "NRRD / MHA): there is no series to inspect; use `lungvol analyze` or `lungvol "
                << "convert` on it directly\n";
      return static_cast<int>(ExitCode::kDicom);
    }
    const io::Discovery d = io::discover_dicom(*path);  // kInput when PATH is missing
    std::string chosen, why;
    try {
      chosen = io::choose_series(d, "", &why).series_instance_uid;
    } catch (const Error& e) {
      why = e.what();
    }
    if (*json) {
      std::cout << to_json(d, chosen, why).dump(2) << "\n";
    } else {
      print_table(d, chosen, why);
      if (chosen.empty() && !d.series.empty()) std::cout << "no series can be assembled: " << why << "\n";
    }
    if (d.series.empty()) {
      std::cerr << "lungvol: error: no CT series under '" << *path << "'\n";
      return static_cast<int>(ExitCode::kDicom);
    }
    if (chosen.empty()) {
      // Series were found but none can be assembled: what analyze would refuse.
      std::cerr << "lungvol: error: no series under '" << *path << "' can be assembled: " << why << "\n";
      return static_cast<int>(ExitCode::kDicom);
    }
    return 0;
  };
}

}  // namespace lungvol::app
