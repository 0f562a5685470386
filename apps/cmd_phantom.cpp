#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>

#include "apps/command.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "phantom/phantom.hpp"

namespace lungvol::app {
namespace {

struct PhantomArgs {
  std::string out;
  phantom::PhantomOptions options;
  std::vector<double> size, spacing;
  std::string lesions;
  bool no_lesions = false;
  io::CtSeriesMeta meta;
};

template <class T>
std::array<T, 3> triple(const std::vector<double>& v, const char* name) {
  if (v.size() != 3)
    throw Error(ExitCode::kUsage, fmt::format("{} needs three comma-separated values", name));
  std::array<T, 3> out{};
  for (int a = 0; a < 3; ++a) {
    if (!(v[a] > 0)) throw Error(ExitCode::kUsage, fmt::format("{} values must be positive", name));
    out[a] = static_cast<T>(v[a]);
    if (static_cast<double>(out[a]) != v[a]) {
      throw Error(ExitCode::kUsage, fmt::format("{} values must be whole numbers", name));
    }
  }
  return out;
}

}  // namespace

Action add_phantom_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "phantom", "write a synthetic chest CT DICOM series with known lung and lesion truth");
  auto a = std::make_shared<PhantomArgs>();
  cmd->add_option("-o,--output", a->out, "output folder (dicom/, truth.json, truth_*.nii.gz)")
      ->required();
  cmd->add_option("--seed", a->options.seed, "subject: noise and small anatomical variation")
      ->capture_default_str();
  cmd->add_option("--size", a->size, "voxels NX,NY,NZ (default 192,192,80)")->delimiter(',');
  cmd->add_option("--spacing", a->spacing, "voxel size SX,SY,SZ in mm (default 1.8,1.8,4)")
      ->delimiter(',');
  cmd->add_option("--noise", a->options.noise_hu, "Gaussian noise SD in HU")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lesion-scale", a->options.lesion_scale,
                  "multiply every lesion semi-axis (0 removes them; positions stay fixed)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--lesions", a->lesions,
                  "custom lesions TYPE:SIDE:U,V,W:A,B,C[;...] (TYPE ggo|solid|pleural, SIDE "
                  "right|left, U medial-lateral -1..1, V anterior-posterior -1..1, W base-apex "
                  "0..1, semi-axes in mm); see docs/phantom.md");
  cmd->add_flag("--no-lesions", a->no_lesions, "healthy lungs");
  cmd->add_flag("--touching", a->options.touching,
                "lungs meet at an anterior junction line (hard left/right split)");
  cmd->add_option("--patient-id", a->meta.patient_id, "PatientID (default PHANTOM-<seed>)");
  cmd->add_option("--study-date", a->meta.study_date, "StudyDate YYYYMMDD");
  cmd->add_option("--series-description", a->meta.series_description, "SeriesDescription");
  cmd->add_flag("--unsigned-pixels", a->meta.unsigned_pixels,
                "store unsigned 16-bit pixels with RescaleIntercept -1024");
  a->meta.patient_id.clear();
  return [a]() {
    phantom::PhantomOptions o = a->options;
    if (!a->size.empty()) o.size = triple<std::size_t>(a->size, "--size");
    if (!a->spacing.empty()) {
      if (a->spacing.size() != 3)
        throw Error(ExitCode::kUsage, "--spacing needs three comma-separated values");
      for (int k = 0; k < 3; ++k) o.spacing[k] = a->spacing[k];
    }
    if (!a->lesions.empty()) o.lesions = phantom::parse_lesion_spec(a->lesions);
    o.with_lesions = !a->no_lesions;
    io::CtSeriesMeta meta = a->meta;
    const std::string& d = meta.study_date;
    if (!d.empty() && (d.size() != 8 || !std::all_of(d.begin(), d.end(), ::isdigit))) {
      throw Error(ExitCode::kUsage, "--study-date must be YYYYMMDD, got '" + d + "'");
    }
    if (meta.patient_id.empty()) meta.patient_id = fmt::format("PHANTOM-{}", o.seed);
    meta.patient_name = fmt::format("Phantom^{}", meta.patient_id);
    if (meta.series_description.empty()) {
      meta.series_description = fmt::format("lungvol phantom seed {} lesion scale {:g}", o.seed,
                                            o.with_lesions ? o.lesion_scale : 0.0);
    }
    meta.study_description = "lungvol synthetic chest CT";
    meta.kernel = "PHANTOM";
    Stopwatch clock;
    const phantom::Phantom p = phantom::make_phantom(o);
    const double t_make = clock.lap();
    phantom::write_phantom(p, a->out, meta);
    const double t_write = clock.lap();
    const auto& v = p.truth.at("volumes");
    const auto& g = p.ct.geom;
    std::cout << fmt::format(
        "{}: {}x{}x{} voxels of {:g} x {:g} x {:g} mm; lungs {:.1f} mL (right {:.1f}, left "
        "{:.1f}), "
        "ground-glass {:.2f} mL, solid {:.2f} mL, lesion {:.2f} % ({:.2f} s generate, {:.2f} s "
        "write)\n",
        a->out, g.size[0], g.size[1], g.size[2], g.spacing[0], g.spacing[1], g.spacing[2],
        v.at("lung_ml").get<double>(), v.at("right_lung_ml").get<double>(),
        v.at("left_lung_ml").get<double>(), v.at("ggo_ml").get<double>(),
        v.at("solid_ml").get<double>(), v.at("lesion_pct").get<double>(), t_make, t_write);
    return 0;
  };
}

}  // namespace lungvol::app
