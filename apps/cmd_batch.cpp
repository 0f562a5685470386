#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "apps/command.hpp"
#include "batch/runner.hpp"

namespace lungvol::app {

Action add_batch_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "batch",
      "analyze every scan of a manifest into OUTDIR/scans/<subject>/<visit>/ and "
      "OUTDIR/results.sqlite; resumable; writes OUTDIR/measurements.csv and visits_wide.csv");
  auto o = std::make_shared<batch::BatchOptions>();
  cmd->add_option("MANIFEST", o->manifest,
                  "CSV: subject_id, arm, visit, path (+ optional visit_day, series_uid, site, "
                  "population)")
      ->required();
  cmd->add_option("-o,--output", o->outdir, "output folder")->required();
  cmd->add_option("--jobs", o->jobs, "scans analyzed in parallel (threads are split between them)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--protocol", o->protocol, "built-in protocol name or TOML file")
      ->capture_default_str();
  cmd->add_option("--schedule", o->schedule,
                  "visit schedule TOML ([[visit]] name, day, baseline, window_days); default "
                  "baseline day 0, day10, day28");
  cmd->add_flag("--force", o->force, "re-analyze every scan, even those already done");
  cmd->add_flag("--no-label-maps", [o](std::int64_t) { o->write_label_maps = false; },
                "do not write lungs.nii.gz / lesions.nii.gz per scan");
  cmd->add_flag("--no-qc", [o](std::int64_t) { o->write_qc_images = false; },
                "do not write QC PNG images per scan");
  return [o, &global]() {
    o->threads = global.threads;
    const batch::BatchSummary s = batch::run_batch(*o);
    std::cerr << fmt::format(
        "lungvol batch: {} scans: {} analyzed, {} skipped (already done), {} failed; {:.1f} s; "
        "results in {}/results.sqlite, measurements.csv, visits_wide.csv\n",
        s.counts.total, s.counts.analyzed, s.counts.skipped, s.counts.failed, s.seconds,
        o->outdir);
    if (s.counts.failed > 0) {
      std::cerr << "lungvol batch: " << s.counts.failed
                << " scan(s) failed; see the failures table of results.sqlite\n";
    }
    return s.exit_status();
  };
}

}  // namespace lungvol::app
