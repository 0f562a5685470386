#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "apps/command.hpp"
#include "batch/sweep.hpp"

namespace lungvol::app {

Action add_sweep_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "sweep",
      "endpoint sensitivity to the lesion thresholds: recompute every scan's proportions from "
      "the stored histograms for each (low, split) and rerun the arm comparison; writes "
      "OUTDIR/sweep/{sweep.csv, sweep.svg}");
  auto o = std::make_shared<batch::SweepOptions>();
  cmd->add_option("OUTDIR", o->outdir, "batch output folder (holds results.sqlite)")->required();
  cmd->add_option("-o,--output", o->out_dir,
                  "folder for sweep.csv, sweep.svg, provenance.json (default OUTDIR/sweep; "
                  "elsewhere for a batch on read-only storage)");
  cmd->add_option("--split", o->split,
                  "ground-glass / solid split, FROM:TO:STEP or one value in HU (default: the "
                  "protocol's)");
  cmd->add_option("--lesion-low", o->lesion_low,
                  "lower lesion threshold, FROM:TO:STEP or one value in HU (default: the "
                  "protocol's)");
  cmd->add_option("--arms", o->arms, "A,B: report A minus B (default: the two arms, sorted)");
  cmd->add_option("--schedule", o->schedule,
                  "visit schedule TOML (default: the one the batch ran with)");
  cmd->add_option("--plot-visit", o->plot_visit, "visit shown in sweep.svg")->capture_default_str();
  return [o]() {
    const batch::SweepOutput out = batch::run_sweep(*o);
    std::cerr << fmt::format(
        "lungvol sweep: {} settings x {} scans in {:.2f} s; wrote {}/sweep.csv, sweep.svg and "
        "provenance.json from results state {}\n",
        out.settings.size(), out.n_scans, out.seconds, out.out_dir, out.results_state.substr(0, 16));
    return 0;
  };
}

}  // namespace lungvol::app
