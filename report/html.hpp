#pragma once
// Static QC report for a batch (issue #5): index.html with one row per scan and one page per
// scan with its metrics and QC images. Self-contained: inline CSS, no scripts, no network;
// images are linked by relative path, or embedded as data: URIs when asked.
#include <cmath>
#include <string>
#include <vector>

namespace lungvol::report {

struct HtmlMetric {
  std::string name;    // e.g. "lesion_fraction_total"
  double value = NAN;  // NaN shows as an em dash
  std::string unit;    // e.g. "mL", "%", "" (dimensionless)
};

struct ScanRecord {
  std::string subject;
  std::string visit;
  std::string status;               // "ok" shows green; "failed"/"error" red; anything else amber
  std::string message;              // e.g. the error of a failed scan; may be empty
  std::vector<HtmlMetric> metrics;  // in display order
  std::vector<std::string> qc_images;  // PNG paths (absolute or relative to the cwd)
};

struct HtmlReportOptions {
  std::string title = "lungvol QC report";
  // false: <img src> is the path relative to outdir (keep the report beside the images);
  // true: each image is base64-embedded, so every page is one portable file.
  bool embed_images = false;
};

// Writes OUTDIR/index.html and OUTDIR/scans/<n>-<subject>-<visit>.html (atomic each; OUTDIR
// created if needed). Index columns: subject, visit, status, then every metric name seen in
// any record, in first-seen order. Returns the paths written, index first.
// Throws Error(kOutput) when a file cannot be written, Error(kInput) when an image to embed
// cannot be read.
std::vector<std::string> write_html_report(const std::vector<ScanRecord>& scans,
                                           const std::string& outdir,
                                           const HtmlReportOptions& options = {});

// Exposed for tests and other writers.
// Portable file-name stem of any subject / visit text ([A-Za-z0-9._-], no leading dot).
std::string slug(const std::string& s);
std::string html_escape(const std::string& text);
std::string base64_encode(const std::string& bytes);
// The colour key of the QC overlays (report/qc_images.hpp colours) as an HTML paragraph.
std::string qc_image_legend_html();

}  // namespace lungvol::report
