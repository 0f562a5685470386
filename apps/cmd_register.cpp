#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "apps/command.hpp"
#include "core/error.hpp"
#include "io/image_io.hpp"
#include "registration/followup.hpp"
#include "registration/transform_io.hpp"

namespace lungvol::app {

// `lungvol register BASELINE_DIR FOLLOWUP_DIR -o OUTDIR`: two outputs of `lungvol analyze`, the
// follow-up registered to the baseline, with its change map, inspiration level, volume-adjusted
// densitometry and mask consistency (the files of one batch follow-up, docs/outputs.md).
Action add_register_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "register",
      "register a follow-up scan to its baseline (both outputs of `lungvol analyze`): "
      "transforms, lesion change map, inspiration level, volume-adjusted densitometry");
  struct Args {
    std::string baseline, followup, out;
    double grid_mm = 0;
    bool no_qc = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("BASELINE_DIR", a->baseline, "output folder of `lungvol analyze` for the baseline")
      ->required();
  cmd->add_option("FOLLOWUP_DIR", a->followup, "output folder of `lungvol analyze` for the follow-up")
      ->required();
  cmd->add_option("-o,--output", a->out, "output folder (replaced whole)")->required();
  cmd->add_option("--grid-mm", a->grid_mm,
                  "finest grid of the deformable step in mm (default 3; see docs/validation.md)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-qc", a->no_qc, "do not write the QC PNGs");
  return [a, &global]() {
    (void)global;
    registration::SubjectJob job;
    job.subject_id = "subject";
    job.baseline = registration::visit_scan_from_analysis(a->baseline, "baseline");
    job.followups.push_back(registration::visit_scan_from_analysis(a->followup, "followup"));
    job.to_register = {"followup"};
    job.outdir = a->out;
    job.flat = true;
    job.settings.write_qc_images = !a->no_qc;
    if (a->grid_mm > 0) job.settings.params.grid_mm = a->grid_mm;
    registration::register_transform_io();
    const registration::SubjectOutcome o = registration::run_subject(job);
    const auto& f = o.followups.at(0);
    if (f.status != "ok") throw Error(static_cast<ExitCode>(f.exit_code ? f.exit_code : 6), f.error);
    const auto& r = f.record;
    const auto& ch = r["change"]["lungs"];
    const auto num = [](const nlohmann::json& x) { return x.is_number() ? x.get<double>() : std::nan(""); };
    std::cout << fmt::format(
        "registration: {:.1f} s (deformable {:.1f} s); lung volume ratio {:.3f}, Jacobian {:.3f}{}\n"
        "change (mL, baseline space): resolved {:.2f}, persistent {:.2f}, new {:.2f}, progressed "
        "{:.2f}, regressed {:.2f}; resolved {:.1f} % of the baseline lesion\n"
        "baseline lung mask in the follow-up: Dice {:.4f}{}\n"
        "outputs in {}\n",
        f.seconds, num(r["quality"]["timing_s"]["deformable"]), num(r["inspiration"]["volume_ratio"]),
        num(r["jacobian"]["mean"]), f.inspiration_flagged ? " (outside +-10 %: flagged)" : "",
        num(ch["resolved_ml"]), num(ch["persistent_ml"]), num(ch["new_ml"]),
        num(ch["progressed_ml"]), num(ch["regressed_ml"]), num(ch["resolved_pct"]),
        num(r["baseline_mask_consistency"]["dice"]), f.consistency_flagged ? " (flagged)" : "",
        a->out);
    return 0;
  };
}

}  // namespace lungvol::app
