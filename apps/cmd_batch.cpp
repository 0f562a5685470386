#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "apps/command.hpp"
#include "batch/runner.hpp"
#include "batch/slurm.hpp"
#include "core/error.hpp"

namespace lungvol::app {

Action add_batch_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "batch",
      "analyze every scan of a manifest into OUTDIR/scans/<subject>/<visit>/ and "
      "OUTDIR/results.sqlite; resumable; writes OUTDIR/measurements.csv and visits_wide.csv");
  {
    // Every manifest column, from the same lists the manifest reader checks against.
    std::string footer =
        "Manifest columns (CSV with a header; docs/batch.md):\n"
        "  subject_id     required; names a folder\n"
        "  arm            required; treatment arm\n"
        "  visit          required; a visit of the schedule (baseline, day10, day28 by default)\n"
        "  path           required; DICOM folder or file, or NIfTI / NRRD / MHA (relative to the manifest)\n"
        "  visit_day      days since baseline (instead of the StudyDate difference)\n"
        "  series_uid     the series to analyze when the folder holds several\n"
        "  site           carried into the outputs\n"
        "  population     carried into the outputs\n"
        "  lungs_mask     reviewer-corrected lung label map used instead of segmenting\n"
        "  lesions_mask   reviewer-corrected lesion mask (with lungs_mask)\n"
        "Any other column is an error unless named with --ignore-column. Decisions recorded with "
        "`lungvol review` (corrected masks, exclusions) are honoured on the next run.";
    for (const auto& c : batch::manifest_required_columns()) {
      if (footer.find("  " + c + " ") == std::string::npos) footer += "\n  " + c + " (required)";
    }
    for (const auto& c : batch::manifest_optional_columns()) {
      if (footer.find("  " + c + " ") == std::string::npos) footer += "\n  " + c;
    }
    cmd->footer(footer);
  }
  auto o = std::make_shared<batch::BatchOptions>();
  auto slurm = std::make_shared<batch::slurm::SlurmOptions>();
  auto executor = std::make_shared<std::string>("local");
  auto status_dir = std::make_shared<std::string>();
  auto task = std::make_shared<long>(-1);
  auto merge = std::make_shared<bool>(false);
  auto register_task = std::make_shared<long>(-1);
  auto register_merge = std::make_shared<bool>(false);
  // MANIFEST and -o are checked in the action: --status needs neither, the hidden Slurm job
  // steps only -o.
  cmd->add_option("MANIFEST", o->manifest,
                  "CSV: subject_id, arm, visit, path (+ optional visit_day, series_uid, site, "
                  "population, lungs_mask, lesions_mask)");
  cmd->add_option("-o,--output", o->outdir, "output folder");
  cmd->add_option("--executor", *executor,
                  "local (this machine) or slurm (one Slurm job array + a merge job; see "
                  "docs/reliability.md)")
      ->check(CLI::IsMember({"local", "slurm"}))
      ->capture_default_str();
  cmd->add_option("--partition", slurm->partition, "slurm: partition of the jobs");
  cmd->add_option("--array-limit", slurm->array_limit,
                  "slurm: at most K scans running at once (sbatch --array=...%K); 0 = no limit")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--slurm-opt", slurm->sbatch_args,
                  "slurm: one extra sbatch argument, e.g. --slurm-opt=--time=02:00:00 "
                  "(repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--status", *status_dir,
                  "slurm: print the progress of the submission in OUTDIR (done, failed, "
                  "running, pending) and exit");
  // The Slurm job steps (written into OUTDIR/slurm/*.sbatch by the controller).
  cmd->add_option("--slurm-task", *task, "run one Slurm array task")->group("");
  cmd->add_flag("--slurm-merge", *merge, "merge the Slurm task results")->group("");
  cmd->add_option("--slurm-register-task", *register_task,
                  "register one subject's follow-ups (Slurm array task)")
      ->group("");
  cmd->add_flag("--slurm-register-merge", *register_merge,
                "store the Slurm registration task results")
      ->group("");
  cmd->add_option("--jobs", o->jobs,
                  "scans analyzed in parallel (threads are split between them; at most the "
                  "number of cores)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--protocol", o->protocol, "built-in protocol name or TOML file")
      ->capture_default_str();
  cmd->add_option("--schedule", o->schedule,
                  "visit schedule TOML ([[visit]] name, day, baseline, window_days); default "
                  "baseline day 0, day10, day28");
  cmd->add_flag("--force", o->force, "re-analyze every scan, even those already done");
  cmd->add_option("--ignore-column", o->ignore_columns,
                  "a manifest column lungvol does not use, kept in the file (repeatable); any "
                  "other unknown column is an error")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--no-label-maps", [o](std::int64_t) { o->write_label_maps = false; },
                "do not write lungs.nii.gz / lesions.nii.gz per scan");
  cmd->add_flag("--no-qc", [o](std::int64_t) { o->write_qc_images = false; },
                "do not write QC PNG images per scan");
  cmd->add_flag("--no-registration", [o](std::int64_t) { o->register_followups = false; },
                "do not register the follow-ups to their baseline (no change maps, inspiration "
                "or cross-visit mask checks; see docs/batch.md, \"Registration\")");
  cmd->add_flag("--meshes", o->write_meshes,
                "also write surface meshes and the 3D QC render per scan (see analyze --meshes; "
                "the render needs an X display or xvfb-run)");
  return [o, slurm, executor, status_dir, task, merge, register_task, register_merge,
          &global]() {
    o->threads = global.threads;
    if (!status_dir->empty()) {
      const auto st = batch::slurm::read_status(*status_dir, *slurm);
      std::cout << batch::slurm::format_status(st, *status_dir);
      return 0;
    }
    if ((*task >= 0 || *merge || *register_task >= 0 || *register_merge) && o->outdir.empty()) {
      throw Error(ExitCode::kUsage,
                  "batch: --slurm-task / --slurm-merge / --slurm-register-task / "
                  "--slurm-register-merge need -o OUTDIR");
    }
    if (*register_task >= 0) {
      return batch::slurm::run_registration_task(o->outdir, static_cast<std::size_t>(*register_task));
    }
    if (*register_merge) {
      const auto m = batch::slurm::merge_registrations(o->outdir);
      std::cerr << fmt::format(
          "lungvol batch: stored the registrations of {} subject(s): {} registered, {} already "
          "done, {} failed; change maps in {}/registrations/\n",
          m.subjects, m.registered, m.skipped, m.failed, o->outdir);
      return m.exit_status();
    }
    if (*task >= 0) return batch::slurm::run_task(o->outdir, static_cast<std::size_t>(*task));
    if (*merge) {
      const batch::BatchSummary s = batch::slurm::merge_results(o->outdir);
      std::cerr << fmt::format(
          "lungvol batch: merged {} scans: {} analyzed, {} failed, {} skipped (already done); "
          "results in {}/results.sqlite\n",
          s.counts.total, s.counts.analyzed, s.counts.failed, s.counts.skipped, o->outdir);
      return s.exit_status();
    }
    if (o->manifest.empty() || o->outdir.empty()) {
      throw Error(ExitCode::kUsage, "batch: MANIFEST and -o OUTDIR are required");
    }
    if (*executor == "slurm") {
      const auto sub = batch::slurm::submit_batch(*o, *slurm);
      std::string registrations;
      if (!sub.registration_job_id.empty()) {
        registrations = fmt::format(
            "; registrations of {} subject(s) as job array {} (merge job {})",
            sub.registration_subjects, sub.registration_job_id, sub.registration_merge_job_id);
      }
      if (sub.finished) {
        std::cerr << fmt::format(
            "lungvol batch: {} scans, all already done: nothing submitted to Slurm; "
            "measurements.csv and visits_wide.csv rewritten in {}\n",
            sub.total, o->outdir);
        return 0;
      }
      if (sub.arrays.empty()) {
        std::cerr << fmt::format(
            "lungvol batch: {} scans, all already done{}\n", sub.total, registrations);
        return 0;
      }
      std::string ids;
      for (const auto& a : sub.arrays) ids += (ids.empty() ? "" : ", ") + a.job_id;
      std::cerr << fmt::format(
          "lungvol batch: submitted {} of {} scans to Slurm as job array {} (merge job {}){}; "
          "{} already done. Progress: lungvol batch --executor slurm --status {}\n",
          sub.submitted, sub.total, ids, sub.merge_job_id, registrations, sub.skipped, o->outdir);
      return 0;
    }
    const batch::BatchSummary s = batch::run_batch(*o);
    std::cerr << fmt::format(
        "lungvol batch: {} scans: {} analyzed, {} skipped (already done), {} failed; {:.1f} s; "
        "results in {}/results.sqlite, measurements.csv, visits_wide.csv\n",
        s.counts.total, s.counts.analyzed, s.counts.skipped, s.counts.failed, s.seconds,
        o->outdir);
    if (s.registered + s.registrations_skipped + s.registrations_failed > 0) {
      std::cerr << fmt::format(
          "lungvol batch: follow-ups registered to their baseline: {} now, {} already done, {} "
          "failed; change maps in {}/registrations/\n",
          s.registered, s.registrations_skipped, s.registrations_failed, o->outdir);
    }
    if (s.counts.failed > 0) {
      std::cerr << "lungvol batch: " << s.counts.failed
                << " scan(s) failed; see the failures table of results.sqlite\n";
    }
    if (s.registrations_failed > 0) {
      std::cerr << "lungvol batch: " << s.registrations_failed
                << " registration(s) failed; see the registrations table of results.sqlite\n";
    }
    return s.exit_status();
  };
}

}  // namespace lungvol::app
