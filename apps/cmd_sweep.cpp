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
      "the stored histograms for each (low, split) within the protocol's lesion band (vessel "
      "suppression held as the batch computed it) and rerun the arm comparison; writes "
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
                  "lower lesion threshold, FROM:TO:STEP or one value in HU, from the protocol's "
                  "own (default) up to below the split: below it the stored histograms hold "
                  "voxels that never went through vessel and speck suppression, so such values "
                  "are refused (re-analyse with another protocol instead)");
  cmd->add_option("--arms", o->arms, "A,B: report A minus B (default: the two arms, sorted)");
  cmd->add_option("--schedule", o->schedule,
                  "visit schedule TOML (default: the one the batch ran with)");
  cmd->add_option("--plot-visit", o->plot_visit,
                  "follow-up visit of the schedule shown in sweep.svg (default: the schedule's "
                  "last; a visit not in the schedule is an error)");
  cmd->add_option("--plot-endpoints", o->plot_endpoint,
                  "endpoints drawn in sweep.svg, comma-separated (default "
                  "ggo_pct_change,solid_pct_change: the two that depend on the split; "
                  "lesion_pct_change does not)");
  cmd->add_option("--digits-rank", o->digits_rank,
                  "ties convention of the comparisons, as for 'lungvol endpoint': N significant "
                  "digits (default 10, R's digits.rank = 10) or 'inf' (R's default)");
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
