#include "batch/sweep.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "batch/derived.hpp"
#include "batch/svg.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "report/csv.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {
namespace {

double parse_number(const std::string& s, const std::string& option) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || !std::isfinite(v)) {
    throw Error(ExitCode::kUsage, option + ": '" + s + "' is not a number");
  }
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) {
    const auto b = item.find_first_not_of(' ');
    const auto e = item.find_last_not_of(' ');
    out.push_back(b == std::string::npos ? "" : item.substr(b, e - b + 1));
  }
  return out;
}

// Candidates with lo <= HU < hi from the cumulative counts, with HuHistogram::count_in's bin
// rule (integer HU h counts when ceil(lo) <= h <= ceil(hi) - 1, clamped to the end bins).
std::int64_t candidates_in(const SweepScan& s, double lo, double hi) {
  const double first = std::max<double>(HuHistogram::kMinHu, std::ceil(lo));
  const double last = std::min<double>(HuHistogram::kMaxHu, std::ceil(hi) - 1);
  if (last < first) return 0;
  const auto b = static_cast<std::size_t>(first - HuHistogram::kMinHu);
  const auto e = static_cast<std::size_t>(last - HuHistogram::kMinHu) + 1;
  return s.cumulative[e] - s.cumulative[b];
}

}  // namespace

std::vector<double> parse_range(const std::string& text, const std::string& option) {
  const auto parts = split(text, ':');
  if (parts.size() == 1) return {parse_number(parts[0], option)};
  if (parts.size() != 3) {
    throw Error(ExitCode::kUsage, option + ": want FROM:TO:STEP or one value, got '" + text + "'");
  }
  const double from = parse_number(parts[0], option), to = parse_number(parts[1], option),
               step = parse_number(parts[2], option);
  if (!(step > 0) || from > to) {
    throw Error(ExitCode::kUsage, option + ": want FROM <= TO and STEP > 0, got '" + text + "'");
  }
  std::vector<double> out;
  // Index-based so rounding never drops the last value (-400:-200:25 ends at -200).
  const auto n = static_cast<long>(std::floor((to - from) / step + 1e-9));
  if (n > 10000) throw Error(ExitCode::kUsage, option + ": more than 10000 values");
  for (long i = 0; i <= n; ++i) out.push_back(from + static_cast<double>(i) * step);
  return out;
}

std::vector<SweepScan> load_sweep_scans(Store& store) {
  std::map<std::int64_t, std::pair<HuHistogram, HuHistogram>> hist;  // scan -> lung, suppressed
  for (auto& h : store.histograms("lungs")) {
    auto& slot = hist[h.scan_id];
    (h.kind == "lung" ? slot.first : slot.second) = std::move(h.histogram);
  }
  std::map<std::pair<std::string, std::string>, ScanRecord> scans;
  for (auto& s : store.scans()) scans[{s.subject_id, s.visit}] = std::move(s);

  std::vector<SweepScan> out;
  std::set<std::string> protocols;  // of the usable scans: a sweep must not mix protocols
  for (const auto& e : store.manifest()) {
    const auto it = scans.find({e.subject_id, e.visit});
    if (it == scans.end()) continue;
    const ScanRecord& rec = it->second;
    SweepScan s;
    s.subject_id = e.subject_id;
    s.arm = e.arm;
    s.visit = e.visit;
    s.visit_day = rec.days_from_baseline;
    s.in_window = rec.in_window;
    s.failed = rec.status != "ok";
    if (!s.failed) {
      protocols.insert(rec.protocol_sha256);
      if (protocols.size() > 1) {
        throw Error(ExitCode::kInput,
                    "results store " + store.path() + " holds scans measured with different "
                    "protocols (an interrupted batch?); finish the batch before sweeping");
      }
      const auto h = hist.find(rec.scan_id);
      if (h == hist.end()) {
        throw Error(ExitCode::kInput, "results store: scan " + e.subject_id + " " + e.visit +
                                          " has no 'lungs' histograms");
      }
      const HuHistogram& lung = h->second.first;
      const HuHistogram& supp = h->second.second;
      s.cumulative.assign(HuHistogram::kBins + 1, 0);
      for (int b = 0; b < HuHistogram::kBins; ++b) {
        s.lung_total += lung.counts[b];
        s.cumulative[b + 1] = s.cumulative[b] + static_cast<std::int64_t>(lung.counts[b]) -
                              static_cast<std::int64_t>(supp.counts[b]);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

Proportions proportions_at(const SweepScan& s, double low_hu, double split_hu, double high_hu) {
  Proportions p;
  if (s.lung_total == 0) return p;
  // The arithmetic of vol::measure_volumes, so the protocol's own thresholds reproduce the
  // batch's numbers bit for bit.
  const double total = static_cast<double>(s.lung_total);
  const double ggo = static_cast<double>(candidates_in(s, low_hu, split_hu));
  const double solid = static_cast<double>(candidates_in(s, split_hu, high_hu));
  p.ggo_pct = 100.0 * ggo / total;
  p.solid_pct = 100.0 * solid / total;
  p.lesion_pct = 100.0 * (ggo + solid) / total;
  return p;
}

trial::VisitTable sweep_visit_table(const std::vector<SweepScan>& scans, double low_hu,
                                    double split_hu, double high_hu) {
  trial::VisitTable t;
  t.source = "<sweep>";
  t.metrics = {"lesion_pct", "ggo_pct", "solid_pct"};
  t.rows.reserve(scans.size());
  for (const auto& s : scans) {
    trial::VisitRow r;
    r.subject_id = s.subject_id;
    r.arm = s.arm;
    r.visit = s.visit;
    r.visit_day = s.visit_day;
    r.in_window = s.in_window;
    r.failed = s.failed;
    if (s.failed) {
      r.values.assign(3, std::nullopt);
    } else {
      const Proportions p = proportions_at(s, low_hu, split_hu, high_hu);
      r.values = {p.lesion_pct, p.ggo_pct, p.solid_pct};
    }
    t.rows.push_back(std::move(r));
  }
  return t;
}

SweepOutput run_sweep(const SweepOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  Store store(results_store_path(options.outdir), Store::Mode::kReadOnly);
  // What the batch stored: the thresholds of the protocol its scans were measured with, its
  // schedule (unless --schedule), and the state the sweep is computed from.
  const BatchState state = read_batch_state(store, options.outdir, options.schedule);
  const auto& run = state.run;
  const double high = run->lesion_high_hu;
  const std::vector<double> lows = options.lesion_low.empty()
                                       ? std::vector<double>{run->lesion_low_hu}
                                       : parse_range(options.lesion_low, "--lesion-low");
  const std::vector<double> splits = options.split.empty()
                                         ? std::vector<double>{run->lesion_split_hu}
                                         : parse_range(options.split, "--split");
  // What the stored histograms can answer: segmentation suppressed vessels and specks among
  // the voxels of the protocol's lesion band [low, high) only. Below the protocol's low, no
  // voxel went through that step, so the histograms would count every lung voxel there,
  // vessels and normal parenchyma included: a number no analysis at that threshold gives.
  const double protocol_low = run->lesion_low_hu;
  std::vector<double> below;
  for (double lo : lows) {
    if (lo < protocol_low) below.push_back(lo);
  }
  if (!below.empty()) {
    throw Error(
        ExitCode::kUsage,
        fmt::format("sweep: --lesion-low {} HU{} is below the protocol's lower lesion threshold "
                    "({:g} HU, protocol {} {}). Vessel and speck suppression was computed only "
                    "for voxels in [{:g}, {:g}) HU, so the stored histograms cannot tell which "
                    "voxels below {:g} HU an analysis would count (all of them would be counted, "
                    "vessels and normal lung included). Sweep --lesion-low from {:g} upwards, or "
                    "re-analyse with a protocol whose lesion band starts lower (lungvol batch "
                    "--protocol FILE)",
                    below.front(),
                    below.size() > 1 ? fmt::format(" (and {} more of '{}')", below.size() - 1,
                                                   options.lesion_low)
                                     : std::string(),
                    protocol_low, state.protocol_name, state.protocol_version, protocol_low, high,
                    protocol_low, protocol_low));
  }
  for (double lo : lows) {
    for (double sp : splits) {
      if (!(lo < sp && sp < high)) {
        throw Error(ExitCode::kUsage, fmt::format("sweep: thresholds must satisfy low < split < "
                                                  "{} (the protocol's upper bound); got low {} "
                                                  "and split {}",
                                                  high, lo, sp));
      }
    }
  }
  const trial::VisitSchedule& schedule = state.schedule;
  // The plotted visit must be a follow-up visit of that schedule (default: its last one).
  SweepOptions plot = options;
  std::vector<std::string> follow_ups;
  for (const auto& v : schedule.visits) {
    if (!v.baseline) follow_ups.push_back(v.name);
  }
  if (follow_ups.empty()) throw Error(ExitCode::kUsage, "sweep: the visit schedule has no follow-up visit");
  if (plot.plot_visit.empty()) plot.plot_visit = follow_ups.back();
  if (std::find(follow_ups.begin(), follow_ups.end(), plot.plot_visit) == follow_ups.end()) {
    std::string list;
    for (const auto& v : follow_ups) list += (list.empty() ? "" : ", ") + v;
    throw Error(ExitCode::kUsage,
                fmt::format("sweep: --plot-visit '{}' is not a follow-up visit of {} (follow-up "
                            "visits: {})",
                            plot.plot_visit, state.schedule_source, list));
  }
  SweepOutput out;
  out.results_state = state.results_state;
  const std::vector<SweepScan> scans = load_sweep_scans(store);
  out.n_scans = scans.size();
  {
    trial::VisitTable visits;
    visits.source = state.db_path;
    for (const auto& sc : scans) {
      trial::VisitRow r;
      r.visit = sc.visit;
      visits.rows.push_back(r);
    }
    check_visits_in_schedule(visits, schedule, state.schedule_source);
  }
  trial::EndpointOptions eo;
  if (!options.digits_rank.empty()) eo.wilcoxon.digits_rank = trial::parse_digits_rank(options.digits_rank);
  {
    const trial::VisitTable probe = sweep_visit_table(scans, lows[0], splits[0], high);
    if (!options.arms.empty()) {
      const auto arms = split(options.arms, ',');
      if (arms.size() != 2) throw Error(ExitCode::kUsage, "sweep: --arms wants two names, A,B");
      eo.arm_a = arms[0];
      eo.arm_b = arms[1];
    } else {
      const auto arms = trial::arms_in(probe);
      if (arms.size() != 2) {
        throw Error(ExitCode::kUsage, fmt::format("sweep: {} arms in the batch; choose two with "
                                                  "--arms A,B",
                                                  arms.size()));
      }
      eo.arm_a = arms[0];
      eo.arm_b = arms[1];
    }
    eo.endpoints = trial::default_endpoints(probe);
  }
  for (double lo : lows) {
    for (double sp : splits) {
      SweepSetting s;
      s.low_hu = lo;
      s.split_hu = sp;
      s.high_hu = high;
      s.result = trial::run_endpoints(sweep_visit_table(scans, lo, sp, high), schedule, eo);
      out.settings.push_back(std::move(s));
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const std::string dir =
      options.out_dir.empty() ? (fs::path(options.outdir) / "sweep").string() : options.out_dir;
  ensure_directory(dir);
  out.out_dir = dir;
  write_text_atomic(dir + "/sweep.csv",
                    append_csv_columns(sweep_csv(out.settings), provenance_columns(state)));
  write_text_atomic(dir + "/sweep.svg", sweep_svg(out.settings, plot));
  nlohmann::json p = provenance_json(state, "lungvol sweep");
  p["options"] = {{"split", options.split},
                  {"lesion_low", options.lesion_low},
                  {"arms", options.arms},
                  {"schedule", options.schedule},
                  {"plot_visit", plot.plot_visit},
                  {"digits_rank", trial::digits_rank_text(eo.wilcoxon.digits_rank)}};
  write_text_atomic(dir + "/provenance.json", p.dump(2) + "\n");
  return out;
}

std::string sweep_csv(const std::vector<SweepSetting>& settings) {
  std::ostringstream out;
  report::CsvWriter w(out);
  w.row({"low_hu", "split_hu", "high_hu", "endpoint", "visit", "population", "arm_a", "arm_b",
         "n_a", "median_a", "n_b", "median_b", "hl_estimate", "ci_low", "ci_high", "conf_level",
         "p_value", "method"});
  for (const auto& s : settings) {
    for (const auto& c : s.result.comparisons) {
      const auto& t = c.test;
      w.row({s.low_hu, s.split_hu, s.high_hu, c.endpoint, c.visit, c.population, c.arm_a,
             c.arm_b, c.a.n, c.a.median, c.b.n, c.b.median,
             t ? t->estimate : std::nullopt, t ? t->ci_low : std::nullopt,
             t ? t->ci_high : std::nullopt,
             t ? std::optional<double>(t->achieved_conf_level) : std::nullopt,
             t ? t->p_value : std::nullopt, t ? t->method() : std::string{}});
    }
  }
  return out.str();
}

// Small multiples: one row per plotted endpoint x line (value of the threshold not on the x
// axis), the Hodges-Lehmann difference with its 95% CI band on the left and the Wilcoxon p-value
// of the same settings beside it, so no band hides another.
std::string sweep_svg(const std::vector<SweepSetting>& settings, const SweepOptions& o) {
  std::set<double> lows, splits;
  for (const auto& s : settings) {
    lows.insert(s.low_hu);
    splits.insert(s.split_hu);
  }
  // x = the threshold with more values; one row per value of the other.
  const bool x_is_split = splits.size() >= lows.size();
  const std::string x_label =
      x_is_split ? "split ground-glass / solid (HU)" : "lesion low threshold (HU)";
  std::vector<std::string> endpoints;
  {
    std::stringstream in(o.plot_endpoint);
    std::string e;
    while (std::getline(in, e, ',')) {
      e.erase(0, e.find_first_not_of(' '));
      e.erase(e.find_last_not_of(' ') + 1);
      if (!e.empty()) endpoints.push_back(e);
    }
  }
  std::string arms;
  if (!settings.empty()) arms = settings[0].result.arm_a + " minus " + settings[0].result.arm_b;
  std::vector<std::string> cells;
  for (const std::string& endpoint : endpoints) {
    std::map<double, std::pair<PlotSeries, PlotSeries>> rows;  // key -> (HL, p)
    for (const auto& s : settings) {
      const double x = x_is_split ? s.split_hu : s.low_hu;
      const double key = x_is_split ? s.low_hu : s.split_hu;
      auto& [hl, p] = rows[key];
      hl.label = p.label = fmt::format("{} {:g} HU", x_is_split ? "low" : "split", key);
      const trial::ComparisonRow* c = s.result.find(endpoint, o.plot_visit, o.plot_population);
      const auto& t = c ? c->test : std::nullopt;
      hl.x.push_back(x);
      hl.y.push_back(t ? t->estimate : std::nullopt);
      hl.band_lo.push_back(t ? t->ci_low : std::nullopt);
      hl.band_hi.push_back(t ? t->ci_high : std::nullopt);
      p.x.push_back(x);
      p.y.push_back(t ? t->p_value : std::nullopt);
    }
    for (auto& [key, series] : rows) {
      PlotPanel estimate, p_value;
      estimate.y_label = "HL difference (" + arms + ")";
      estimate.reference_y = 0.0;
      estimate.series.push_back(std::move(series.first));
      p_value.y_label = "Wilcoxon p-value";
      p_value.reference_y = 0.05;
      p_value.reference_label = "p = 0.05";
      p_value.log_y = true;
      const std::string line = p_value.series.empty() ? series.second.label : "";
      p_value.series.push_back(std::move(series.second));
      const std::string where = fmt::format("{} at {} ({}), {}", endpoint, o.plot_visit,
                                            o.plot_population, line);
      cells.push_back(svg_plot(where + ": difference, 95% CI", x_label, {estimate}));
      cells.push_back(svg_plot(where + ": p-value", x_label, {p_value}));
    }
  }
  return svg_grid(fmt::format("Threshold sweep at {} ({}): Hodges-Lehmann difference ({}) with "
                              "95% CI, and the Wilcoxon p-value beside it",
                              o.plot_visit, o.plot_population, arms),
                  cells, 2);
}

}  // namespace lungvol::batch
