#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "apps/command.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"

namespace lungvol::app {

Action add_convert_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "convert", "write the assembled HU volume exactly as the pipeline sees it");
  auto path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto opt = std::make_shared<io::ReadOptions>();
  cmd->add_option("path", *path, "DICOM folder or file, or a NIfTI/NRRD/MHA volume")->required();
  cmd->add_option("-o,--output", *out, "output volume (.nii.gz, .nrrd, .mha)")->required();
  cmd->add_option("--series", opt->series_uid, "SeriesInstanceUID to convert");
  cmd->add_flag("--resample-nonuniform", opt->resample_nonuniform,
                "resample a series with gaps or uneven spacing instead of refusing it");
  return [path, out, opt]() {
    const io::LoadedCt ct = io::load_ct(*path, *opt);
    io::write_ct_image(ct.image, *out);
    const auto& g = ct.image.geom;
    const auto [lo, hi] = std::minmax_element(ct.image.data.begin(), ct.image.data.end());
    std::cout << fmt::format("{}: {}x{}x{} voxels, {:.4g} x {:.4g} x {:.4g} mm, HU {}..{}, series {}, {} warning(s) -> {}\n",
                             *path, g.size[0], g.size[1], g.size[2], g.spacing[0], g.spacing[1],
                             g.spacing[2], *lo, *hi, ct.series.series_instance_uid.empty() ? "-" : ct.series.series_instance_uid,
                             ct.warnings.size(), *out);
    return 0;
  };
}

}  // namespace lungvol::app
