#pragma once
// `lungvol report`: a static, self-contained HTML QC report of a batch folder.
//   REPORTDIR/index.html            subjects x visits status grid, trajectories, cohort box
//                                   plots, QC flags, all scans
//   REPORTDIR/scans/<subject>-<visit>.html   one page per stored scan
//   REPORTDIR/images/<subject>-<visit>/*.png copies of the QC overlays (not with embed_images)
// Inline CSS and SVG only: no script, no network resource, no absolute link, so the folder
// can be zipped and moved. Every file is written atomically.
#include <string>
#include <vector>

#include "qcreport/batch_view.hpp"
#include "qcreport/flags.hpp"

namespace lungvol::qcreport {

struct QcReportOptions {
  std::string title = "lungvol QC report";
  bool embed_images = false;  // data: URIs instead of copied PNGs (one file per page)
  FlagOptions flags;
};

struct QcReportSummary {
  std::vector<std::string> files;  // every file written, index.html first
  std::size_t subjects = 0, scan_pages = 0, images = 0, flags = 0;
};

// Loads the batch (load_batch_view), computes the flags and writes the report.
QcReportSummary write_qc_report(const std::string& batch_outdir, const std::string& report_dir,
                                const QcReportOptions& options = {});
// Writes the report of an already loaded view whose flags are computed.
QcReportSummary write_qc_report(const BatchView& view, const std::string& report_dir,
                                const QcReportOptions& options = {});

}  // namespace lungvol::qcreport
