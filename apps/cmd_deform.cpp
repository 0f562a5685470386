#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "apps/command.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "pipeline/analyze.hpp"
#include "registration/synthetic.hpp"

namespace lungvol::app {

// `lungvol deform INPUT -o DIR`: the scan re-rendered at another inspiration level by a known
// breathing-like motion (registration/synthetic.hpp), for validating and benchmarking the
// registration on real anatomy (docs/validation.md, "Registration").
Action add_deform_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "deform",
      "re-render a scan at another inspiration level with a known smooth motion (validation "
      "and benchmarks of `register`): DIR/ct.nii.gz, truth_lungs.nii.gz, motion.json");
  struct Args {
    std::string input, out, series;
    registration::BreathingParams p;
    std::vector<double> shift;
    bool no_mass = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("INPUT", a->input, "DICOM folder or image file")->required();
  cmd->add_option("-o,--output", a->out, "output folder")->required();
  cmd->add_option("--series", a->series, "SeriesInstanceUID when the folder holds several");
  cmd->add_option("--diaphragm-mm", a->p.diaphragm_mm, "lung bases lower by this much (mm)")
      ->capture_default_str();
  cmd->add_option("--ap-expansion", a->p.ap_expansion, "relative AP expansion at the bases")
      ->capture_default_str();
  cmd->add_option("--lateral-expansion", a->p.lateral_expansion,
                  "relative left-right expansion at the bases")
      ->capture_default_str();
  cmd->add_option("--wobble-mm", a->p.wobble_mm, "amplitude of the smooth non-separable part (mm)")
      ->capture_default_str();
  cmd->add_option("--shift", a->shift, "table offset X,Y,Z in mm (default 4,-3,-6)")->delimiter(',');
  cmd->add_option("--rotate", a->p.rotation_deg, "turn about the craniocaudal axis (degrees)")
      ->capture_default_str();
  cmd->add_option("--noise", a->p.noise_hu, "Gaussian noise SD (HU)")->capture_default_str();
  cmd->add_option("--seed", a->p.seed, "noise seed")->capture_default_str();
  cmd->add_flag("--no-mass-preserving", a->no_mass,
                "keep the lung's HU instead of scaling its density with the air content");
  return [a, &global]() {
    (void)global;
    if (!a->shift.empty()) {
      if (a->shift.size() != 3) throw Error(ExitCode::kUsage, "--shift needs X,Y,Z");
      a->p.translation_mm = {a->shift[0], a->shift[1], a->shift[2]};
    }
    a->p.mass_preserving = !a->no_mass;
    pipeline::Analysis an;
    an.protocol = load_protocol(kDefaultProtocol);
    io::ReadOptions ro;
    ro.series_uid = a->series;
    an.input = io::load_ct(a->input, ro);
    pipeline::segment_and_measure(an);
    const registration::BreathingMotion motion(an.lungs.lungs, a->p);
    const registration::RenderedScan r =
        registration::render_breathing(an.input.image, an.lungs.lungs, an.lesions.lesions, motion);
    ensure_directory(a->out);
    const std::filesystem::path d(a->out);
    io::write_ct_image(r.ct, (d / "ct.nii.gz").string());
    io::write_label_image(r.lungs, (d / "truth_lungs.nii.gz").string());
    double nb = 0, nf = 0;
    for (auto v : an.lungs.lungs.data) nb += v == labels::kRightLung || v == labels::kLeftLung;
    for (auto v : r.lungs.data) nf += v == labels::kRightLung || v == labels::kLeftLung;
    const nlohmann::json j = {{"schema", "lungvol.deform/1"},
                              {"input", a->input},
                              {"input_sha256", an.input.sha256},
                              {"motion", a->p.to_json()},
                              {"direction", "new scan point y -> original point x = psi(y)"},
                              {"true_lung_volume_ratio", nb > 0 ? nf / nb : 0.0}};
    write_text_atomic((d / "motion.json").string(), j.dump(2) + "\n");
    std::cout << fmt::format("deform: {} written; true lung volume ratio {:.3f}\n",
                             (d / "ct.nii.gz").string(), nb > 0 ? nf / nb : 0.0);
    return 0;
  };
}

}  // namespace lungvol::app
