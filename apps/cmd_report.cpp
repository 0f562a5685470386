#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/command.hpp"
#include "qcreport/qc_report.hpp"

namespace lungvol::app {

Action add_report_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "report",
      "static, self-contained HTML QC report of a batch folder: subject x visit status, "
      "per-scan pages with the QC overlays, trajectories, cohort box plots, QC flags");
  struct Args {
    std::string outdir, report_dir;
    qcreport::QcReportOptions options;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("OUTDIR", a->outdir, "batch output folder (holds results.sqlite)")->required();
  cmd->add_option("-o,--output", a->report_dir, "report folder (default OUTDIR/report)");
  cmd->add_flag("--embed-images", a->options.embed_images,
                "embed the QC PNGs in the pages (data: URIs) instead of copying them");
  cmd->add_option("--lung-change-pct", a->options.flags.lung_change_pct,
                  "flag a lung volume change between a subject's visits above this %")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--min-baseline-lesion-pct", a->options.flags.min_baseline_lesion_pct,
                  "flag a baseline lesion fraction below this % of lung")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--title", a->options.title, "report title")->capture_default_str();
  return [a]() {
    const std::string dir = a->report_dir.empty()
                                ? (std::filesystem::path(a->outdir) / "report").string()
                                : a->report_dir;
    const auto s = qcreport::write_qc_report(a->outdir, dir, a->options);
    std::cerr << fmt::format(
        "lungvol report: {} subjects, {} scan pages, {} images, {} QC flags; open {}/index.html\n",
        s.subjects, s.scan_pages, s.images, s.flags, dir);
    return 0;
  };
}

}  // namespace lungvol::app
