#include <fmt/format.h>

#include <iostream>

#include "apps/command.hpp"
#include "core/cancel.hpp"
#include "pipeline/analyze.hpp"

namespace lungvol::app {

Action add_analyze_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "analyze", "segment lungs and lesions of one CT, measure volumes and densities");
  auto opt = std::make_shared<pipeline::AnalyzeOptions>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("input", opt->input, "DICOM folder or file, or a NIfTI/NRRD/MHA volume")
      ->required();
  cmd->add_option("-o,--output", opt->outdir,
                  "output folder: new, empty, or an earlier lungvol output (then replaced "
                  "whole); a folder holding other files is refused")
      ->required();
  cmd->add_option("--protocol", opt->protocol, "built-in protocol name or TOML file")
      ->capture_default_str();
  cmd->add_option("--series", opt->read.series_uid, "SeriesInstanceUID to analyze");
  cmd->add_flag("--resample-nonuniform", opt->read.resample_nonuniform,
                "resample a series with gaps or uneven spacing instead of refusing it");
  cmd->add_flag("--no-label-maps", [opt](std::int64_t) { opt->write_label_maps = false; },
                "do not write lungs.nii.gz / lesions.nii.gz");
  cmd->add_flag("--no-qc", [opt](std::int64_t) { opt->write_qc_images = false; },
                "do not write QC PNG images");
  cmd->add_option_function<std::string>(
         "--calibrate",
         [opt](const std::string&) { opt->calibrate_air = true; },
         "'air': correct HU so that outside air reads -1000 HU before measuring")
      ->check(CLI::IsMember({"air"}));
  cmd->add_option("--lungs-mask", opt->lungs_mask,
                  "use this lung mask instead of segmenting (NIfTI/NRRD/MHA: 0/1 or 1 right, "
                  "2 left, 3 airway; or a DICOM SEG written by lungvol). A 0/1 mask of one "
                  "region (one lung, a region of interest) is measured as 'lungs' with "
                  "right/left empty and a warning")
      ->check(CLI::ExistingFile);
  cmd->add_option("--lesions-mask", opt->lesions_mask,
                  "use this lesion mask; needs --lungs-mask (the lungs it was drawn in; lungvol's "
                  "own lungs.nii.gz will do). 0/1: only lung voxels in the protocol's lesion band "
                  "count, split by the protocol; 1 ground-glass, 2 solid: counted as labelled. "
                  "What was dropped or contradicts its label is reported in mL in metrics.json "
                  "(segmentation.lesions_mask.use) and as warnings")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--no-dicom", [opt](std::int64_t) { opt->write_dicom = false; },
                "do not write the DICOM SEG and SR objects");
  cmd->add_flag("--meshes", opt->write_meshes,
                "also write surface meshes (meshes/*.vtp, *.stl, LPS mm) and the 3D QC render "
                "qc_3d.png (needs an X display or xvfb-run; skipped with a warning otherwise)");
  cmd->add_flag("--json", *json, "print metrics.json to stdout instead of the summary");
  return [opt, json]() {
    // Ctrl-C: the analysis stops at its next stage and removes its temporary output folder.
    InterruptHandler on_interrupt("\nlungvol analyze: interrupted; stopping\n");
    const pipeline::Analysis a = pipeline::analyze(*opt);
    if (*json) {
      std::cout << pipeline::metrics_json(a).dump(2) << "\n";
      return 0;
    }
    const auto& l = a.region("lungs");
    const auto& r = a.region("right");
    const auto& lf = a.region("left");
    std::cout << fmt::format(
        "lungs {:.1f} mL (right {:.1f}, left {:.1f}); lesion {:.1f} mL = {:.2f}% "
        "(ground-glass {:.2f}%, solid {:.2f}%); mean {:.0f} HU, PD15 {:.0f} HU; {:.2f} s\n",
        l.volumes.volume_ml, r.volumes.volume_ml, lf.volumes.volume_ml, l.volumes.lesion_ml,
        l.volumes.lesion_pct, l.volumes.ggo_pct, l.volumes.solid_pct, l.density.mean_hu,
        l.density.percentiles.size() > 1 ? l.density.percentiles[1].second : l.density.median_hu,
        a.timings.total_s);
    for (const auto& w : a.warnings) std::cout << "warning: " << w << "\n";
    if (a.meshes && !a.meshes->rendered) {
      std::cout << "warning: 3D QC render skipped: " << a.meshes->render_skipped << "\n";
    }
    std::cout << "outputs in " << opt->outdir << "\n";
    return 0;
  };
}

}  // namespace lungvol::app
