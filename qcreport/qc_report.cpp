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
img.thumb{width:96px;height:96px;object-fit:contain;background:#000;border:1px solid #999;image-rendering:auto;max-width:none}
.sev-fail{color:#fff;background:#c62828;padding:0 .3em;border-radius:.2em}
.sev-warn{color:#000;background:#ffb300;padding:0 .3em;border-radius:.2em}
.sev-info{color:#000;background:#cfd8dc;padding:0 .3em;border-radius:.2em}
.score{font-weight:700;text-align:right}
.given{color:#fff;background:#1565c0;padding:0 .3em;border-radius:.2em;font-size:.85em}
.dec-accepted{color:#2e7d32;font-weight:600}.dec-excluded{color:#c62828;font-weight:600}
.dec-corrected{color:#1565c0;font-weight:600}.dec-none{color:#777}
pre.cmd{background:#f1f1f1;padding:.5em;font-size:.85em;overflow-x:auto}
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

std::string flag_badge(const Flag& f) {
  return "<span class=\"sev-" + html_escape(f.severity) + "\" title=\"" + html_escape(f.message) +
         "\">" + html_escape(f.code) + "</span>";
}

std::string flags_cell(const Visit& v) {
  if (v.flags.empty()) return "<td class=\"flags\"></td>";
  std::string h;
  for (const auto& f : v.flags) h += (h.empty() ? "" : " ") + flag_badge(f);
  return "<td class=\"flags\">" + h + "</td>";
}

// The reader's decision as text: "accepted by R 2026-...", with its state when not valid.
std::string decision_text(const Visit& v) {
  if (!v.review) return "";
  std::string t = v.review->decision + " by " + v.review->reader + " " + v.review->decided_at;
  if (!v.review->reason.empty()) t += " (" + v.review->reason + ")";
  if (v.review_state == batch::DecisionState::kPending) t += " [pending: re-run the batch]";
  if (v.review_state == batch::DecisionState::kStale) t += " [stale: analyzed again since]";
  return t;
}

std::string decision_cell(const Visit& v) {
  if (!v.review) return "<td class=\"decision dec-none\">none</td>";
  return "<td class=\"decision dec-" + html_escape(v.review->decision) + "\">" +
         html_escape(decision_text(v)) + "</td>";
}

using Stems = std::map<std::pair<std::string, std::string>, std::string>;

// Every manifest scan, the riskiest first (QC score, then failed before the rest, then subject
// and visit order): a thumbnail of its max-lesion axial slice linked to the full image, its
// flags, the reader's decision.
std::string scans_by_risk(const BatchView& view, const Stems& stems, const Stems& thumbs) {
  struct Row {
    const Subject* s;
    const Visit* v;
    std::size_t order;
  };
  std::vector<Row> rows;
  std::size_t order = 0;
  for (const auto& s : view.subjects) {
    for (const auto& v : s.visits) {
      if (!v.in_manifest && v.status == VisitStatus::kMissing) continue;
      rows.push_back({&s, &v, order++});
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.v->qc_score != b.v->qc_score) return a.v->qc_score > b.v->qc_score;
    return a.order < b.order;
  });
  std::string h =
      "<h2 id=\"scans\">Scans by risk</h2>\n<p class=\"note\">Highest QC score first (the score "
      "adds each cause's weight once: failed 100, identity 50, dense tissue left out 30, lung "
      "volume jump 25, calibration 20, coverage 20, border lesion 10, given masks 5, other "
      "warnings 5, low baseline 5; docs/outputs.md). Click a thumbnail to enlarge it, a visit for "
      "its page.</p>\n<table class=\"scans\">\n<tr><th>image</th><th>QC score</th><th>subject</th>"
      "<th>arm</th><th>visit</th><th>status</th><th>flags</th><th>decision</th><th>day</th>"
      "<th>lung (mL)</th><th>lesion (%)</th><th>ground glass (%)</th><th>solid (%)</th>"
      "<th>mean HU</th></tr>\n";
  for (const auto& r : rows) {
    const Subject& s = *r.s;
    const Visit& v = *r.v;
    const auto stem = stems.find({s.id, v.visit});
    const auto thumb = thumbs.find({s.id, v.visit});
    std::string image = "<td class=\"thumbcell\"></td>";
    if (thumb != thumbs.end()) {
      image = "<td class=\"thumbcell\"><a href=\"" + html_escape(thumb->second) +
              "\"><img class=\"thumb\" src=\"" + html_escape(thumb->second) + "\" alt=\"" +
              html_escape(s.id + " " + v.visit) + "\"></a></td>";
    }
    const std::string day = v.scan && v.scan->days_from_baseline
                                ? fmt::format("{:g}", *v.scan->days_from_baseline)
                                : std::string("&mdash;");
    std::string status = badge(v);
    if (v.status == VisitStatus::kFailed && v.scan) {
      status += fmt::format("<br><span class=\"msg\">exit {}: {}</span>", v.exit_code,
                            html_escape(v.scan->error));
    }
    if (v.given_masks) status += " <span class=\"given\">reviewer-given masks</span>";
    h += "<tr data-score=\"" + std::to_string(v.qc_score) + "\">" + image +
         "<td class=\"score\">" + std::to_string(v.qc_score) + "</td><td>" + html_escape(s.id) +
         "</td><td>" + html_escape(s.arm) + "</td><td>" +
         (stem == stems.end() ? html_escape(v.visit)
                              : "<a href=\"scans/" + html_escape(stem->second) + ".html\">" +
                                    html_escape(v.visit) + "</a>") +
         "</td><td>" + status + "</td>" + flags_cell(v) + decision_cell(v) +
         "<td class=\"num\">" + day + "</td>" + metric_cell(v, "volume_ml", "{:.0f}") +
         metric_cell(v, "lesion_pct") + metric_cell(v, "ggo_pct") + metric_cell(v, "solid_pct") +
         metric_cell(v, "mean_hu", "{:.1f}") + "</tr>\n";
  }
  return h + "</table>\n";
}

std::string review_help(const BatchView& view) {
  const std::string dir = view.outdir;
  return "<h2 id=\"review\">Recording decisions</h2>\n<p>" + html_escape(view.review_sentence) +
         "</p>\n<p>Record one decision per scan with <code>lungvol review</code> (stored in "
         "results.sqlite with who and when; the report shows it after the next <code>lungvol "
         "report</code>):</p>\n<pre class=\"cmd\">lungvol review " + html_escape(dir) +
         " SUBJECT VISIT --accept [--reader NAME]\nlungvol review " + html_escape(dir) +
         " SUBJECT VISIT --exclude \"REASON\"     # missing for the endpoints: LOCF in mITT, absent in PP\n"
         "lungvol review " + html_escape(dir) +
         " SUBJECT VISIT --lungs-mask F [--lesions-mask F]   # re-measured by the next lungvol batch\n"
         "lungvol review " + html_escape(dir) + "                 # every decision and the lock status\n"
         "lungvol review " + html_escape(dir) +
         " --lock          # once every scan has a valid decision</pre>\n";
}

std::string index_page(const BatchView& view, const QcReportOptions& options, const Stems& stems,
                       const Stems& thumbs) {
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
  meta("review", view.review_sentence);
  h += "</dl>\n<p><a href=\"#scans\">scans by risk</a> &middot; <a href=\"#subjects\">subjects</a> "
       "&middot; <a href=\"#flags\">QC flags</a> &middot; <a href=\"#review\">recording decisions</a> "
       "&middot; <a href=\"#cohort\">cohort plots</a></p>\n";
  h += scans_by_risk(view, stems, thumbs);

  // Subjects x visits grid with trajectories.
  h += "<h2 id=\"subjects\">Subjects</h2>\n<table "
       "class=\"subjects\">\n<tr><th>subject</th><th>arm</th>";
  for (const auto& name : view.visit_names) h += "<th>" + html_escape(name) + "</th>";
  h += "<th>highest QC score</th><th>lesion / ground glass / solid, % of lung</th></tr>\n";
  for (const auto& s : view.subjects) {
    h += "<tr><td id=\"subject-" + html_escape(slug(s.id)) + "\">" + html_escape(s.id) +
         "</td><td>" + html_escape(s.arm) + "</td>";
    int worst = 0;
    for (const auto& v : s.visits) {
      worst = std::max(worst, v.qc_score);
      const auto stem = stems.find({s.id, v.visit});
      h += "<td>" +
           (stem == stems.end()
                ? badge(v)
                : "<a href=\"scans/" + html_escape(stem->second) + ".html\">" + badge(v) + "</a>") +
           "</td>";
    }
    h += worst ? fmt::format("<td class=\"flagcount\">{}</td>", worst) : std::string("<td>0</td>");
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
         "class=\"flags\">\n<tr><th>subject</th><th>visit</th><th>flag</th><th>severity</th>"
         "<th>value</th><th>detail</th></tr>\n";
    for (const auto& s : view.subjects) {
      for (const auto& v : s.visits) {
        const auto stem = stems.find({s.id, v.visit});
        for (const auto& f : v.flags) {
          h += "<tr><td>" + html_escape(s.id) + "</td><td>" +
               (stem == stems.end() ? html_escape(v.visit)
                                    : "<a href=\"scans/" + html_escape(stem->second) + ".html\">" +
                                          html_escape(v.visit) + "</a>") +
               "</td><td>" + flag_badge(f) + "</td><td>" + html_escape(f.severity) +
               "</td><td class=\"num\">" +
               (f.value ? num(*f.value, "{:.4g}") + " " + html_escape(f.unit) : std::string()) +
               "</td><td>" + html_escape(f.message) + "</td></tr>\n";
        }
      }
    }
    h += "</table>\n";
  }
  h += fmt::format(
      "<p class=\"note\">Each cause is flagged once per scan. Lung volume jump: above {:g} % "
      "between measured visits while the lung tissue mass changes more than {:g} % (a breath "
      "changes air, not tissue); low baseline: lesion below {:g} % of lung; the other flags and "
      "their weights: docs/outputs.md.</p>\n",
      options.flags.lung_change_pct, options.flags.inspiration_mass_pct,
      options.flags.min_baseline_lesion_pct);
  h += review_help(view);
  h += cohort_section(view);

  h += "<p class=\"note\">Written by lungvol report. Self-contained: no scripts, no "
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

  h += "<h2>QC flags</h2>\n<p>QC score <b class=\"score\">" + std::to_string(v.qc_score) +
       "</b>" + (v.given_masks ? " <span class=\"given\">measured with reviewer-given masks</span>" : "") +
       "</p>\n";
  if (v.flags.empty()) {
    h += "<p>None.</p>\n";
  } else {
    h += "<table class=\"flags\">\n<tr><th>flag</th><th>cause</th><th>severity</th><th>value</th>"
         "<th>detail</th></tr>\n";
    for (const auto& f : v.flags) {
      h += "<tr><td>" + flag_badge(f) + "</td><td>" + html_escape(f.cause) + "</td><td>" +
           html_escape(f.severity) + "</td><td class=\"num\">" +
           (f.value ? num(*f.value, "{:.4g}") + " " + html_escape(f.unit) : std::string()) +
           "</td><td>" + html_escape(f.message) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  h += "<h2 id=\"decision\">Reader's decision</h2>\n";
  if (!v.review) {
    h += "<p class=\"decision dec-none\">No decision yet.</p>\n";
  } else {
    h += "<p class=\"decision dec-" + html_escape(v.review->decision) + "\">" +
         html_escape(decision_text(v)) + "</p>\n";
    if (!v.review->lungs_mask.empty()) {
      h += "<p>Masks: " + html_escape(v.review->lungs_mask) +
           (v.review->lesions_mask.empty() ? "" : ", " + html_escape(v.review->lesions_mask)) +
           "</p>\n";
    }
  }
  if (v.review_history.size() > 1) {
    h += "<p class=\"note\">Earlier decisions:</p><ul class=\"note\">";
    for (std::size_t i = 0; i + 1 < v.review_history.size(); ++i) {
      const auto& d = v.review_history[i];
      h += "<li>" + html_escape(d.decision + " by " + d.reader + " " + d.decided_at +
                                (d.reason.empty() ? "" : " (" + d.reason + ")")) + "</li>";
    }
    h += "</ul>\n";
  }
  h += "<pre class=\"cmd\">lungvol review " + html_escape(view.outdir + " " + s.id + " " + v.visit) +
       " --accept | --exclude \"REASON\" | --lungs-mask F [--lesions-mask F]</pre>\n";
  if (!v.calibration_flags.empty()) {
    h += "<p>Calibration notes:</p><ul>";
    for (const auto& f : v.calibration_flags) h += "<li>" + html_escape(f) + "</li>";
    h += "</ul>\n";
  }

  h += "<h2>QC images</h2>\n";
  if (images.src_caption.empty()) {
    h += "<p class=\"note\">No QC images (" +
         html_escape(v.images_note.empty() ? "the batch ran with --no-qc" : v.images_note) +
         ").</p>\n";
  } else {
    if (v.given_masks) {
      h += "<p><span class=\"given\">reviewer-given masks</span> the contours are the reader's "
           "masks, not lungvol's segmentation.</p>\n";
    }
    h += report::qc_image_legend_html() + "<p class=\"note\">Click an image to enlarge it.</p>\n";
    for (const auto& [src, caption] : images.src_caption) {
      const bool wide = caption.find("levels") != std::string::npos;
      h += std::string("<figure") + (wide ? " class=\"wide\"" : "") + "><a href=\"" +
           html_escape(src) + "\"><img src=\"" + html_escape(src) + "\" alt=\"" +
           html_escape(caption) + "\"" + (wide ? " style=\"max-width:100%\"" : "") +
           "></a><figcaption>" + html_escape(caption) + "</figcaption></figure>\n";
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
  // qc_sagittal.png: the midline view of scans analyzed before the per-lung views.
  static const std::pair<const char*, const char*> kImages[] = {
      {"qc_axial_max_lesion.png", "axial, slice with the most lesion"},
      {"qc_axial_lesion_levels.png", "axial slices through the lesion-bearing levels"},
      {"qc_axial.png", "axial through the lungs' centre"},
      {"qc_coronal.png", "coronal through the lungs' centre"},
      {"qc_sagittal_right.png", "sagittal through the right lung"},
      {"qc_sagittal_left.png", "sagittal through the left lung"},
      {"qc_sagittal.png", "sagittal (midline)"},
      {"qc_3d.png", "3D surfaces, anterior view"}};
  // A follow-up's registration QC (registration/qc_images.hpp), when the batch registered it.
  static const char* kRegistrationImages[] = {"qc_change_axial.png", "qc_change_coronal.png",
                                              "qc_checker_axial.png", "qc_checker_coronal.png"};
  const fs::path root(report_dir);
  ensure_directory((root / "scans").string());
  QcReportSummary summary;
  summary.files.push_back((root / "index.html").string());
  summary.subjects = view.subjects.size();
  const auto stems = page_stems(view);
  Stems thumbs;  // subject x visit -> thumbnail src relative to index.html

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
    struct Wanted {
      fs::path src;
      PageImages* target;
      std::string caption;
      bool thumb;  // may be the index's thumbnail
    };
    std::vector<Wanted> wanted;
    // Never an image of another analysis than the stored one (BatchView::images_current).
    if (!v.scan_dir.empty() && v.images_current) {
      for (const auto& [file, what] : kImages) {
        const bool thumb = std::string(file) == "qc_axial_max_lesion.png" ||
                           std::string(file) == "qc_axial.png";
        wanted.push_back({fs::path(v.scan_dir) / file, &images,
                          std::string(what) + " (" + file + ")", thumb});
      }
    }
    // registration_dir is set only for a registration of the scan stored now.
    if (!v.registration_dir.empty()) {
      for (const char* file : kRegistrationImages) {
        wanted.push_back({fs::path(v.registration_dir) / file, &registration_images, file, false});
      }
    }
    for (const auto& w : wanted) {
      const fs::path& src = w.src;
      const std::string file = src.filename().string();
      if (!fs::is_regular_file(src)) continue;
      const bool thumb = w.thumb && !thumbs.count({s.id, v.visit});
      if (options.embed_images) {
        const std::string uri =
            "data:image/png;base64," + report::base64_encode(read_text_file(src.string()));
        w.target->src_caption.emplace_back(uri, w.caption);
        if (thumb) thumbs[{s.id, v.visit}] = uri;
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
        w.target->src_caption.emplace_back("../images/" + stem + "/" + file, w.caption);
        if (thumb) thumbs[{s.id, v.visit}] = "images/" + stem + "/" + file;
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
  write_text_atomic(summary.files.front(), index_page(view, options, stems, thumbs));
  // Which state of results.sqlite the report shows (batch/derived.hpp).
  const nlohmann::json provenance = {{"format", "lungvol.provenance/1"},
                                     {"what", "lungvol report"},
                                     {"created_at", utc_timestamp()},
                                     {"software", {{"name", kSoftwareName}, {"version", kSoftwareVersion}}},
                                     {"results_store", view.outdir + "/results.sqlite"},
                                     {"results_state", view.results_state},
                                     {"review", view.review_sentence},
                                     {"endpoint_changes", view.changes_note.empty() ? "as in endpoint/" : view.changes_note}};
  write_text_atomic((root / "provenance.json").string(), provenance.dump(2) + "\n");
  summary.files.push_back((root / "provenance.json").string());
  return summary;
}

}  // namespace lungvol::qcreport
