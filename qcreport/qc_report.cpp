#include "qcreport/qc_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/provenance.hpp"
#include "core/version.hpp"
#include "qcreport/charts.hpp"
#include "report/html.hpp"

namespace fs = std::filesystem;

namespace lungvol::qcreport {
namespace {

using report::html_escape;
using report::slug;

constexpr const char* kCss = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222;background:#fafafa;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;background:#fff;font-size:.88em;margin:.4em 0}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:middle}
th{background:#eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.st{font-weight:600;padding:.1em .45em;border-radius:.3em;color:#fff;white-space:nowrap;font-size:.9em}
.st-done{background:#2e7d32}.st-failed{background:#c62828}.st-imputed{background:#6a1b9a}
.st-out-of-window{background:#ef6c00}.st-missing{background:#9e9e9e}
a .st{text-decoration:underline}
.flag{color:#b71c1c}.flagcount{font-weight:600;color:#b71c1c}
.msg{color:#c62828;white-space:pre-wrap}
.note{color:#555;font-size:.88em}
.charts{display:flex;flex-wrap:wrap;gap:1em}
figure{display:inline-block;margin:.5em;vertical-align:top;text-align:center}
figure img{max-width:420px;border:1px solid #999;image-rendering:pixelated}
figcaption{font-size:.8em;color:#555}
.legend span{display:inline-block;margin-right:1.2em;font-size:.85em}
.swatch{display:inline-block;width:1em;height:1em;vertical-align:middle;margin-right:.3em;border:1px solid #666}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;font-size:.88em}
dl.meta dt{color:#555}dl.meta dd{margin:0;word-break:break-all}
)css";

const char* kStatusClasses[] = {"st-done", "st-failed", "st-imputed", "st-out-of-window",
                                "st-missing"};

std::string badge(const Visit& v) {
  std::string text = status_name(v.status);
  if (v.status == VisitStatus::kImputed) text += " (LOCF " + v.imputed_from + ")";
  std::string h = "<span class=\"st " + std::string(kStatusClasses[static_cast<int>(v.status)]) +
                  "\">" + html_escape(text) + "</span>";
  // A failed scan that the endpoint carried forward is both.
  if (v.status == VisitStatus::kFailed && !v.imputed_from.empty()) {
    h += " <span class=\"st st-imputed\">" + html_escape("LOCF " + v.imputed_from) + "</span>";
  }
  return h;
}


std::string page_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         html_escape(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
}

std::string num(double v, const char* f = "{:.4g}") {
  return std::isfinite(v) ? fmt::format(fmt::runtime(f), v) : std::string("&mdash;");
}

std::string metric_cell(const Visit& v, const char* metric, const char* f = "{:.3g}") {
  const auto it = v.lungs.find(metric);
  return "<td class=\"num\">" +
         (it == v.lungs.end() ? std::string("&mdash;") : num(it->second, f)) + "</td>";
}

// Page file stems, unique even when two subject/visit names slug to the same text.
std::map<std::pair<std::string, std::string>, std::string> page_stems(const BatchView& view) {
  std::map<std::pair<std::string, std::string>, std::string> stems;
  std::set<std::string> used;
  for (const auto& s : view.subjects) {
    for (const auto& v : s.visits) {
      if (!v.scan) continue;
      // Each part at most 80 bytes: a file name must stay below 255 bytes whatever the ids.
      const std::string base = slug(s.id).substr(0, 80) + "-" + slug(v.visit).substr(0, 80);
      std::string stem = base;
      for (int n = 2; used.count(stem); ++n) stem = base + "-" + std::to_string(n);
      used.insert(stem);
      stems[{s.id, v.visit}] = stem;
    }
  }
  return stems;
}

std::string trajectory(const BatchView& view, const Subject& s, int width, int height,
                       bool legend) {
  const std::pair<const char*, const char*> metrics[] = {
      {"lesion_pct", "lesion"}, {"ggo_pct", "ground glass"}, {"solid_pct", "solid"}};
  const char* colours[] = {"#222222", "#E69F00", "#C62828"};
  std::vector<LineSeries> series;
  for (std::size_t m = 0; m < 3; ++m) {
    LineSeries ls{metrics[m].second, colours[m], {}};
    for (const auto& v : s.visits) {
      const auto it = v.lungs.find(metrics[m].first);
      ls.y.push_back(it == v.lungs.end() ? std::nullopt : std::optional<double>(it->second));
    }
    series.push_back(std::move(ls));
  }
  return line_chart_svg(view.visit_names, series, "% of lung", width, height, legend);
}

std::vector<std::string> arms_of(const BatchView& view) {
  std::vector<std::string> arms;
  for (const auto& s : view.subjects) {
    if (std::find(arms.begin(), arms.end(), s.arm) == arms.end()) arms.push_back(s.arm);
  }
  std::sort(arms.begin(), arms.end());
  return arms;
}

// Fig. 2b style: relative change from baseline per follow-up visit, one box per arm. From the
// endpoint analysis (mITT, LOCF) when endpoint/changes.csv exists, else from the observed scans.
std::string cohort_section(const BatchView& view) {
  const std::vector<std::string> arms = arms_of(view);
  const std::vector<std::string> follow_up(
      view.visit_names.size() > 1 ? view.visit_names.begin() + 1 : view.visit_names.end(),
      view.visit_names.end());
  const std::pair<const char*, const char*> endpoints[] = {
      {"lesion_pct", "lesion"}, {"ggo_pct", "ground glass"}, {"solid_pct", "solid"}};
  std::string charts;
  for (const auto& [metric, label] : endpoints) {
    std::vector<BoxGroup> boxes;
    for (const auto& visit : follow_up) {
      for (std::size_t a = 0; a < arms.size(); ++a) {
        BoxGroup b{visit, arms[a], palette_colour(a), {}};
        if (view.has_changes) {
          for (const auto& c : view.changes) {
            if (c.endpoint == std::string(metric) + "_change" && c.visit == visit &&
                c.population == "mITT" && c.arm == arms[a] && c.rel_change &&
                std::isfinite(*c.rel_change)) {
              b.values.push_back(*c.rel_change);
            }
          }
        } else {
          for (const auto& s : view.subjects) {
            if (s.arm != arms[a] || s.visits.empty()) continue;
            const auto base = s.visits.front().lungs.find(metric);
            const auto& v = *std::find_if(s.visits.begin(), s.visits.end(),
                                          [&](const Visit& x) { return x.visit == visit; });
            const auto now = v.lungs.find(metric);
            if (base == s.visits.front().lungs.end() || now == v.lungs.end() || base->second <= 0) {
              continue;
            }
            b.values.push_back(100.0 * (now->second - base->second) / base->second);
          }
        }
        if (!b.values.empty()) boxes.push_back(std::move(b));
      }
    }
    if (boxes.empty()) continue;
    charts += box_plot_svg(std::string(label) + " % of lung: change from baseline", boxes,
                           "relative change (%)", 420, 300) +
              "\n";
  }
  std::string h = "<h2 id=\"cohort\">Cohort: relative change from baseline by arm</h2>\n";
  if (charts.empty()) return h + "<p class=\"note\">No follow-up measurements to plot.</p>\n";
  h += std::string("<p class=\"note\">") +
       (view.has_changes
            ? "From endpoint/changes.csv (mITT: failed or missed visits carried forward, LOCF)."
            : "From the observed scans only (no endpoint/changes.csv: run <code>lungvol "
              "endpoint</code> for the mITT analysis with LOCF).") +
       " Boxes: quartiles and median; whiskers: 1.5 IQR; points: subjects.</p>\n";
  return h + "<div class=\"charts\">\n" + charts + "</div>\n";
}

std::string flags_cell(const Visit& v) {
  if (v.flags.empty()) return "<td></td>";
  std::string kinds;
  for (const auto& f : v.flags) {
    if (kinds.find(f.kind) == std::string::npos) kinds += (kinds.empty() ? "" : ", ") + f.kind;
  }
  return "<td class=\"flag\">" + html_escape(kinds) + "</td>";
}

std::string index_page(const BatchView& view, const QcReportOptions& options,
                       const std::map<std::pair<std::string, std::string>, std::string>& stems) {
  std::string h = page_head(options.title);
  h += "<h1>" + html_escape(options.title) + "</h1>\n<dl class=\"meta\">\n";
  auto meta = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) h += "<dt>" + html_escape(k) + "</dt><dd>" + html_escape(v) + "</dd>\n";
  };
  meta("batch folder", view.outdir);
  meta("results state", view.results_state.substr(0, 16) + " (of results.sqlite when this report was written)");
  if (!view.changes_note.empty()) meta("endpoint changes", view.changes_note);
  if (view.run) {
    meta("latest run", view.run->started_at);
    meta("software", view.run->software_version);
    meta("protocol", view.run->protocol_name + " " + view.run->protocol_version);
    meta("lesion HU band", fmt::format("[{:g}, {:g}) ground glass, [{:g}, {:g}) solid",
                                       view.run->lesion_low_hu, view.run->lesion_split_hu,
                                       view.run->lesion_split_hu, view.run->lesion_high_hu));
  }
  std::map<VisitStatus, std::size_t> counts;
  std::size_t n_flags = 0, flagged_visits = 0;
  for (const auto& s : view.subjects) {
    for (const auto& v : s.visits) {
      if (v.in_manifest || v.status != VisitStatus::kMissing) ++counts[v.status];
      n_flags += v.flags.size();
      flagged_visits += !v.flags.empty();
    }
  }
  std::string tally;
  for (const auto& [st, n] : counts)
    tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", n, status_name(st));
  std::size_t expected = view.subjects.size() * view.visit_names.size();
  meta("subjects x visits", fmt::format("{} x {} = {}: {}", view.subjects.size(),
                                        view.visit_names.size(), expected, tally));
  meta("QC flags", fmt::format("{} on {} visits", n_flags, flagged_visits));
  h += "</dl>\n<p><a href=\"#subjects\">subjects</a> &middot; <a href=\"#flags\">QC flags</a> "
       "&middot; <a href=\"#cohort\">cohort plots</a> &middot; <a href=\"#scans\">all "
       "scans</a></p>\n";

  // Subjects x visits grid with trajectories.
  h += "<h2 id=\"subjects\">Subjects</h2>\n<table "
       "class=\"subjects\">\n<tr><th>subject</th><th>arm</th>";
  for (const auto& name : view.visit_names) h += "<th>" + html_escape(name) + "</th>";
  h += "<th>flags</th><th>lesion / ground glass / solid, % of lung</th></tr>\n";
  for (const auto& s : view.subjects) {
    h += "<tr><td id=\"subject-" + html_escape(slug(s.id)) + "\">" + html_escape(s.id) +
         "</td><td>" + html_escape(s.arm) + "</td>";
    std::size_t nf = 0;
    for (const auto& v : s.visits) {
      nf += v.flags.size();
      const auto stem = stems.find({s.id, v.visit});
      h += "<td>" +
           (stem == stems.end()
                ? badge(v)
                : "<a href=\"scans/" + html_escape(stem->second) + ".html\">" + badge(v) + "</a>") +
           "</td>";
    }
    h += nf ? fmt::format("<td class=\"flagcount\">{}</td>", nf) : std::string("<td>0</td>");
    h += "<td>" + trajectory(view, s, 260, 90, false) + "</td></tr>\n";
  }
  h += "</table>\n<p class=\"note\">Trajectory lines: <b style=\"color:#222\">lesion</b>, "
       "<b style=\"color:#E69F00\">ground glass</b>, <b style=\"color:#C62828\">solid</b>.</p>\n";

  // Flags.
  h += "<h2 id=\"flags\">QC flags</h2>\n";
  if (n_flags == 0) {
    h += "<p>No QC flags.</p>\n";
  } else {
    h += "<table "
         "class=\"flags\">\n<tr><th>subject</th><th>visit</th><th>flag</th><th>detail</th></tr>\n";
    for (const auto& s : view.subjects) {
      for (const auto& v : s.visits) {
        const auto stem = stems.find({s.id, v.visit});
        for (const auto& f : v.flags) {
          h += "<tr><td>" + html_escape(s.id) + "</td><td>" +
               (stem == stems.end() ? html_escape(v.visit)
                                    : "<a href=\"scans/" + html_escape(stem->second) + ".html\">" +
                                          html_escape(v.visit) + "</a>") +
               "</td><td class=\"flag\">" + html_escape(f.kind) + "</td><td>" +
               html_escape(f.message) + "</td></tr>\n";
        }
      }
    }
    h += "</table>\n";
  }
  h += fmt::format(
      "<p class=\"note\">Flags: lung volume change above {:g} % between visits; lesion voxels on "
      "the first/last slice (from lesions.nii.gz, when the batch wrote label maps); reading "
      "warnings; HU calibration out of tolerance; baseline lesion below {:g} % of lung.</p>\n",
      options.flags.lung_change_pct, options.flags.min_baseline_lesion_pct);

  h += cohort_section(view);

  // Every subject x visit with its main numbers.
  h += "<h2 id=\"scans\">All scans</h2>\n<table class=\"scans\">\n<tr><th>subject</th><th>arm</th>"
       "<th>visit</th><th>status</th><th>day</th><th>lung (mL)</th><th>lesion (%)</th>"
       "<th>ground glass (%)</th><th>solid (%)</th><th>mean HU</th><th>flags</th></tr>\n";
  for (const auto& s : view.subjects) {
    for (const auto& v : s.visits) {
      if (!v.in_manifest && v.status == VisitStatus::kMissing) continue;
      const auto stem = stems.find({s.id, v.visit});
      const std::string day = v.scan && v.scan->days_from_baseline
                                  ? fmt::format("{:g}", *v.scan->days_from_baseline)
                                  : std::string("&mdash;");
      h += "<tr><td>" + html_escape(s.id) + "</td><td>" + html_escape(s.arm) + "</td><td>" +
           (stem == stems.end() ? html_escape(v.visit)
                                : "<a href=\"scans/" + html_escape(stem->second) + ".html\">" +
                                      html_escape(v.visit) + "</a>") +
           "</td><td>" + badge(v) + "</td><td class=\"num\">" + day + "</td>" +
           metric_cell(v, "volume_ml", "{:.0f}") + metric_cell(v, "lesion_pct") +
           metric_cell(v, "ggo_pct") + metric_cell(v, "solid_pct") +
           metric_cell(v, "mean_hu", "{:.1f}") + flags_cell(v) + "</tr>\n";
    }
  }
  h += "</table>\n<p class=\"note\">Written by lungvol report. Self-contained: no scripts, no "
       "network resources.</p>\n</body>\n</html>\n";
  return h;
}

struct PageImages {
  std::vector<std::pair<std::string, std::string>> src_caption;  // src attribute, caption
};

std::string scan_page(const BatchView& view, const Subject& s, const Visit& v,
                      const PageImages& images, const PageImages& registration_images,
                      const std::string& prev, const std::string& next,
                      const QcReportOptions& options) {
  const batch::ScanRecord& r = *v.scan;
  const std::string name = s.id + " / " + v.visit;
  std::string h = page_head(name + " - " + options.title);
  h += "<p><a href=\"../index.html\">&larr; index</a>";
  if (!prev.empty()) h += " &middot; <a href=\"" + html_escape(prev) + ".html\">previous scan</a>";
  if (!next.empty()) h += " &middot; <a href=\"" + html_escape(next) + ".html\">next scan</a>";
  h += "</p>\n<h1>" + html_escape(name) + " " + badge(v) + "</h1>\n";
  if (!r.error.empty()) h += "<p class=\"msg\">" + html_escape(r.error) + "</p>\n";

  h += "<dl class=\"meta\">\n";
  auto meta = [&](const std::string& k, const std::string& val) {
    if (!val.empty()) h += "<dt>" + html_escape(k) + "</dt><dd>" + html_escape(val) + "</dd>\n";
  };
  meta("arm", s.arm);
  meta("days from baseline",
       r.days_from_baseline ? fmt::format("{:g}", *r.days_from_baseline) : "");
  meta("in visit window", r.in_window ? (*r.in_window ? "yes" : "no") : "no window");
  meta("study date", r.study_date);
  meta("input", r.path);
  meta("series instance UID", r.series_uid);
  meta("input sha256", r.input_sha256);
  meta("protocol", r.protocol_name + " " + r.protocol_version);
  meta("software", r.software_version);
  meta("analyzed at", r.analyzed_at);
  if (r.timing_s > 0) meta("analysis time", fmt::format("{:.1f} s", r.timing_s));
  if (v.metrics_json) {
    meta("HU calibration", !v.calibration_checked ? "not checked"
                           : v.calibration_ok
                               ? (*v.calibration_ok ? "within tolerance" : "OUT OF TOLERANCE")
                               : "unknown");
  }
  h += "</dl>\n";

  h += "<h2>QC flags</h2>\n";
  if (v.flags.empty()) {
    h += "<p>None.</p>\n";
  } else {
    h += "<ul>\n";
    for (const auto& f : v.flags) {
      h += "<li><span class=\"flag\">" + html_escape(f.kind) +
           "</span>: " + html_escape(f.message) + "</li>\n";
    }
    h += "</ul>\n";
  }
  if (!v.calibration_flags.empty()) {
    h += "<p>Calibration notes:</p><ul>";
    for (const auto& f : v.calibration_flags) h += "<li>" + html_escape(f) + "</li>";
    h += "</ul>\n";
  }

  h += "<h2>QC images</h2>\n";
  if (images.src_caption.empty()) {
    h += "<p class=\"note\">No QC images (failed scan, or the batch ran with --no-qc).</p>\n";
  } else {
    h += report::qc_image_legend_html();
    for (const auto& [src, caption] : images.src_caption) {
      h += "<figure><img src=\"" + html_escape(src) + "\" alt=\"" + html_escape(caption) +
           "\"><figcaption>" + html_escape(caption) + "</figcaption></figure>\n";
    }
  }
  if (v.registration) {
    // The follow-up registered to the baseline (docs/outputs.md, "Registration").
    const batch::RegistrationRecord& g = *v.registration;
    h += "<h2>Registration to " + html_escape(g.baseline_visit) + "</h2>\n";
    if (g.status != "ok") {
      h += "<p class=\"msg\">Registration failed: " + html_escape(g.error) + "</p>\n";
    } else {
      h += "<p>Inspiration level: " +
           std::string(g.inspiration_flagged ? "<span class=\"flag\">outside &plusmn;10 %</span>"
                                             : "within &plusmn;10 %") +
           "; baseline lung mask carried into this scan: " +
           (g.consistency_flagged ? "<span class=\"flag\">disagrees with this scan's</span>"
                                  : "agrees") +
           ". Change map colours: resolved green, persistent yellow, new red, progressed "
           "magenta, regressed cyan; the checkerboard alternates the baseline and this scan "
           "registered to it.</p>\n";
      for (const auto& [src, caption] : registration_images.src_caption) {
        h += "<figure><img src=\"" + html_escape(src) + "\" alt=\"" + html_escape(caption) +
             "\"><figcaption>" + html_escape(caption) + "</figcaption></figure>\n";
      }
    }
  }
  h += "<h2>Subject trajectory</h2>\n" + trajectory(view, s, 480, 220, true) + "\n";
  if (!v.measurements.empty()) {
    // Regions as rows, the main metrics as columns; then every metric of the lungs region.
    const char* cols[] = {"volume_ml", "lesion_ml", "lesion_pct", "ggo_pct",
                          "solid_pct", "mean_hu",   "p15_hu"};
    std::vector<std::string> regions;
    for (const auto& m : v.measurements) {
      if (std::find(regions.begin(), regions.end(), m.region) == regions.end())
        regions.push_back(m.region);
    }
    h += "<div class=\"charts\"><div><h2>Regions</h2>\n<table>\n<tr><th>region</th>";
    for (const char* c : cols) h += std::string("<th>") + c + "</th>";
    h += "</tr>\n";
    for (const auto& region : regions) {
      h += "<tr><td>" + html_escape(region) + "</td>";
      for (const char* c : cols) {
        const auto it =
            std::find_if(v.measurements.begin(), v.measurements.end(),
                         [&](const auto& m) { return m.region == region && m.metric == c; });
        h += "<td class=\"num\">" +
             (it == v.measurements.end() || !it->value ? std::string("&mdash;") : num(*it->value)) +
             "</td>";
      }
      h += "</tr>\n";
    }
    h += "</table></div>\n<div><h2>Metrics "
         "(lungs)</h2>\n<table>\n<tr><th>metric</th><th>value</th><th>unit</th></tr>\n";
    for (const auto& m : v.measurements) {
      if (m.region != "lungs") continue;
      h += "<tr><td>" + html_escape(m.metric) + "</td><td class=\"num\">" +
           (m.value ? num(*m.value, "{:.6g}") : std::string("&mdash;")) + "</td><td>" +
           html_escape(m.unit) + "</td></tr>\n";
    }
    h += "</table></div></div>\n";
  }

  h += "</body>\n</html>\n";
  return h;
}

}  // namespace

QcReportSummary write_qc_report(const std::string& batch_outdir, const std::string& report_dir,
                                const QcReportOptions& options) {
  BatchView view = load_batch_view(batch_outdir);
  add_flags(view, options.flags);
  return write_qc_report(view, report_dir, options);
}

QcReportSummary write_qc_report(const BatchView& view, const std::string& report_dir,
                                const QcReportOptions& options) {
  // qc_3d.png (the anterior surface render) exists when the scan ran with --meshes.
  static const char* kImages[] = {"qc_axial.png", "qc_coronal.png", "qc_sagittal.png",
                                  "qc_axial_max_lesion.png", "qc_3d.png"};
  // A follow-up's registration QC (registration/qc_images.hpp), when the batch registered it.
  static const char* kRegistrationImages[] = {"qc_change_axial.png", "qc_change_coronal.png",
                                              "qc_checker_axial.png", "qc_checker_coronal.png"};
  const fs::path root(report_dir);
  ensure_directory((root / "scans").string());
  QcReportSummary summary;
  summary.files.push_back((root / "index.html").string());
  summary.subjects = view.subjects.size();
  const auto stems = page_stems(view);

  std::vector<std::pair<const Subject*, const Visit*>> pages;
  for (const auto& s : view.subjects) {
    for (const auto& v : s.visits) {
      summary.flags += v.flags.size();
      if (v.scan) pages.emplace_back(&s, &v);
    }
  }
  for (std::size_t n = 0; n < pages.size(); ++n) {
    const Subject& s = *pages[n].first;
    const Visit& v = *pages[n].second;
    const std::string& stem = stems.at({s.id, v.visit});
    PageImages images, registration_images;
    std::vector<std::pair<std::string, PageImages*>> wanted;  // (source file, page images)
    if (!v.scan_dir.empty()) {
      for (const char* file : kImages) wanted.emplace_back((fs::path(v.scan_dir) / file).string(), &images);
    }
    if (!v.registration_dir.empty()) {
      for (const char* file : kRegistrationImages) {
        wanted.emplace_back((fs::path(v.registration_dir) / file).string(), &registration_images);
      }
    }
    for (const auto& [src_name, target] : wanted) {
      const fs::path src(src_name);
      const std::string file = src.filename().string();
      if (!fs::is_regular_file(src)) continue;
      if (options.embed_images) {
        target->src_caption.emplace_back(
            "data:image/png;base64," + report::base64_encode(read_text_file(src.string())), file);
      } else {
        // Copied, so the report folder stands alone (zip it, move it, mail it).
        const fs::path dst = root / "images" / stem / file;
        ensure_directory(dst.parent_path().string());
        write_file_atomic(dst.string(), [&](const std::string& tmp) {
          std::error_code ec;
          fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
          if (ec) {
            throw Error(ExitCode::kOutput,
                        "cannot copy " + src.string() + " to " + tmp + ": " + ec.message());
          }
        });
        summary.files.push_back(dst.string());
        target->src_caption.emplace_back("../images/" + stem + "/" + file, file);
      }
      ++summary.images;
    }
    const std::string prev =
        n > 0 ? stems.at({pages[n - 1].first->id, pages[n - 1].second->visit}) : "";
    const std::string next =
        n + 1 < pages.size() ? stems.at({pages[n + 1].first->id, pages[n + 1].second->visit}) : "";
    const fs::path page = root / "scans" / (stem + ".html");
    write_text_atomic(page.string(), scan_page(view, s, v, images, registration_images, prev, next, options));
    summary.files.push_back(page.string());
    ++summary.scan_pages;
  }
  write_text_atomic(summary.files.front(), index_page(view, options, stems));
  // Which state of results.sqlite the report shows (batch/derived.hpp).
  const nlohmann::json provenance = {{"format", "lungvol.provenance/1"},
                                     {"what", "lungvol report"},
                                     {"created_at", utc_timestamp()},
                                     {"software", {{"name", kSoftwareName}, {"version", kSoftwareVersion}}},
                                     {"results_store", view.outdir + "/results.sqlite"},
                                     {"results_state", view.results_state},
                                     {"endpoint_changes", view.changes_note.empty() ? "as in endpoint/" : view.changes_note}};
  write_text_atomic((root / "provenance.json").string(), provenance.dump(2) + "\n");
  summary.files.push_back((root / "provenance.json").string());
  return summary;
}

}  // namespace lungvol::qcreport
