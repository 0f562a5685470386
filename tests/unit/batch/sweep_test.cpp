#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "batch/store.hpp"
#include "batch/sweep.hpp"
#include "batch/svg.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/protocol.hpp"
#include "report/csv.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::batch {
namespace {

TEST(SweepRange, ParsesInclusiveRanges) {
  const auto v = parse_range("-400:-200:25", "--split");
  ASSERT_EQ(v.size(), 9u);
  EXPECT_EQ(v.front(), -400);
  EXPECT_EQ(v.back(), -200);
  EXPECT_EQ(parse_range("-300", "--split"), std::vector<double>{-300});
  EXPECT_EQ(parse_range("0:0.3:0.1", "--x").size(), 4u);  // rounding keeps the end
  EXPECT_THROW(parse_range("-200:-400:25", "--split"), Error);
  EXPECT_THROW(parse_range("-400:-200:0", "--split"), Error);
  EXPECT_THROW(parse_range("-400:-200", "--split"), Error);
  EXPECT_THROW(parse_range("abc", "--split"), Error);
}

SweepScan scan_with(std::uint64_t lung_other, std::vector<std::pair<int, std::uint64_t>> cand,
                    std::vector<std::pair<int, std::uint64_t>> suppressed = {}) {
  HuHistogram lung, supp;
  lung.counts[HuHistogram::bin(-850)] = lung_other;
  for (auto [hu, n] : cand) lung.counts[HuHistogram::bin(hu)] += n;
  for (auto [hu, n] : suppressed) {
    lung.counts[HuHistogram::bin(hu)] += n;
    supp.counts[HuHistogram::bin(hu)] += n;
  }
  SweepScan s;
  s.cumulative.assign(HuHistogram::kBins + 1, 0);
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    s.lung_total += lung.counts[b];
    s.cumulative[b + 1] = s.cumulative[b] + std::int64_t(lung.counts[b]) - std::int64_t(supp.counts[b]);
  }
  return s;
}

TEST(SweepProportions, AnalyticCounts) {
  // 1000 lung voxels: 850 normal, 100 at -500 HU, 50 at -100 HU, plus 0 suppressed.
  const SweepScan s = scan_with(850, {{-500, 100}, {-100, 50}});
  auto p = proportions_at(s, -700, -300, 100);
  EXPECT_DOUBLE_EQ(p.lesion_pct, 15.0);
  EXPECT_DOUBLE_EQ(p.ggo_pct, 10.0);
  EXPECT_DOUBLE_EQ(p.solid_pct, 5.0);
  p = proportions_at(s, -700, -600, 100);  // both now solid
  EXPECT_DOUBLE_EQ(p.ggo_pct, 0.0);
  EXPECT_DOUBLE_EQ(p.solid_pct, 15.0);
  p = proportions_at(s, -499, -300, 100);  // -500 excluded: bands are half-open [lo, hi)
  EXPECT_DOUBLE_EQ(p.lesion_pct, 5.0);
  p = proportions_at(s, -700, -500, 100);  // -500 is the first solid HU
  EXPECT_DOUBLE_EQ(p.solid_pct, 15.0);
  // Suppressed voxels (vessels) count in the lung but never as lesion.
  const SweepScan v = scan_with(850, {{-500, 50}}, {{-500, 100}});
  EXPECT_DOUBLE_EQ(proportions_at(v, -700, -300, 100).ggo_pct, 5.0);
  EXPECT_EQ(v.lung_total, 1000u);
}

TEST(Svg, NiceTicks) {
  EXPECT_EQ(nice_ticks(-400, -200, 4), (std::vector<double>{-400, -350, -300, -250, -200}));
  const auto t = nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t[1], 0.2, 1e-12);
  EXPECT_NEAR(t.back(), 1.0, 1e-12);
}

TEST(SweepLoad, RefusesMixedProtocols) {
  const std::string dir = test::temp_dir("sweep_mixed");
  Store store(dir + "/results.sqlite");
  RunInfo info;
  info.started_at = "2020-01-01T00:00:00Z";
  const auto run = store.begin_run(info);
  Manifest m;
  for (const char* visit : {"baseline", "day28"}) {
    ManifestEntry e;
    e.subject_id = "S1";
    e.arm = "A";
    e.visit = visit;
    e.path = e.full_path = "/x";
    m.entries.push_back(e);
    vol::RegionHistograms h;
    h.name = "lungs";
    h.lung.counts[HuHistogram::bin(-850)] = 100;
    ScanRecord rec;
    rec.subject_id = "S1";
    rec.arm = "A";
    rec.visit = visit;
    rec.path = "/x";
    rec.status = "ok";
    rec.protocol_sha256 = visit;  // two different protocols
    rec.run_id = run;
    store.save_scan(rec, pipeline::measure_regions({h}, load_protocol("covid-ggo-solid"), 0.001));
  }
  store.set_manifest(m);
  EXPECT_THROW(load_sweep_scans(store), Error);
}

// A small store: 4 subjects x the schedule's visits, synthetic histograms with lung voxels at
// -750 HU (below the protocol's lesion band: never seen by vessel suppression) and lesion
// candidates in the band, measured under covid-ggo-solid ([-700, 100), split -300).
std::string small_store(const std::string& tag, const std::string& schedule_toml,
                        const std::vector<std::string>& visits) {
  const std::string dir = test::temp_dir(tag);
  const Protocol protocol = load_protocol("covid-ggo-solid");
  Store store(dir + "/results.sqlite");
  RunInfo info;
  info.started_at = "2020-01-01T00:00:00Z";
  info.protocol_name = protocol.name;
  info.protocol_version = protocol.version;
  info.lesion_low_hu = protocol.lesion.low_hu();
  info.lesion_split_hu = protocol.lesion.split_hu();
  info.lesion_high_hu = protocol.lesion.high_hu();
  info.schedule_toml = schedule_toml;
  const auto run = store.begin_run(info);
  Manifest m;
  for (int subj = 0; subj < 4; ++subj) {
    for (std::size_t v = 0; v < visits.size(); ++v) {
      ManifestEntry e;
      e.line = m.entries.size() + 2;
      e.subject_id = "S" + std::to_string(subj);
      e.arm = subj % 2 ? "MSC" : "placebo";
      e.visit = visits[v];
      e.path = e.full_path = "/synthetic";
      m.entries.push_back(e);
      vol::RegionHistograms h;
      h.name = "lungs";
      h.lung.counts[HuHistogram::bin(-850)] = 10000;
      h.lung.counts[HuHistogram::bin(-750)] = 3000;
      h.lung.counts[HuHistogram::bin(-500)] = 400 + 50 * subj - (subj % 2 ? 100 * v : 0);
      h.lung.counts[HuHistogram::bin(-100)] = 150 + 10 * subj;
      h.lung.counts[HuHistogram::bin(20)] = 80;
      h.suppressed.counts[HuHistogram::bin(20)] = 80;  // vessels, suppressed in the band
      ScanRecord rec;
      rec.subject_id = e.subject_id;
      rec.arm = e.arm;
      rec.visit = e.visit;
      rec.path = e.path;
      rec.status = "ok";
      rec.protocol_sha256 = "p";
      rec.run_id = run;
      store.save_scan(rec, pipeline::measure_regions({h}, protocol, 0.001));
    }
  }
  store.set_manifest(m);
  store.update_timing(schedule_toml.empty() ? trial::default_visit_schedule()
                                            : trial::parse_visit_schedule(schedule_toml, "s.toml"));
  return dir;
}

std::string usage_error(const SweepOptions& o) {
  try {
    run_sweep(o);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "sweep accepted --lesion-low '" << o.lesion_low << "' --plot-visit '"
                << o.plot_visit << "'";
  return {};
}

// Below the protocol's lower lesion threshold the stored histograms hold every lung voxel,
// vessels and normal lung included (here 3000 voxels at -750 HU): no analysis at that threshold
// would count them, so the sweep refuses, saying why, and writes nothing.
TEST(SweepLimits, LesionLowBelowTheProtocolIsRefusedWithTheReason) {
  const std::string dir = small_store("sweep_low", "", {"baseline", "day10", "day28"});
  SweepOptions o;
  o.outdir = dir;
  for (const char* low : {"-1200:-700:100", "-750", "-701:-650:49"}) {
    o.lesion_low = low;
    const std::string msg = usage_error(o);
    EXPECT_NE(msg.find("below the protocol's lower lesion threshold (-700 HU"), std::string::npos) << msg;
    EXPECT_NE(msg.find("suppression was computed only for voxels in [-700, 100) HU"), std::string::npos)
        << msg;
    EXPECT_FALSE(fs::exists(dir + "/sweep")) << low;
  }
  o.lesion_low = "-1200:-700:100";
  EXPECT_NE(usage_error(o).find("--lesion-low -1200 HU (and 4 more of '-1200:-700:100')"),
            std::string::npos);
  // Out of order or past the band: refused too.
  o.lesion_low = "-300:-200:50";
  EXPECT_NE(usage_error(o).find("low < split < 100"), std::string::npos);
  o.lesion_low = "";
  o.split = "-700:100:100";
  EXPECT_NE(usage_error(o).find("low < split < 100"), std::string::npos);
  // From the protocol's own low upwards: answered, and at -700 equal to the batch's numbers.
  o.split = "";
  o.lesion_low = "-700:-600:50";
  const SweepOutput out = run_sweep(o);
  ASSERT_EQ(out.settings.size(), 3u);
  Store store(dir + "/results.sqlite");
  const std::vector<SweepScan> scans = load_sweep_scans(store);
  // 400 + 150 candidates (S0 baseline) of 10000 + 3000 + 400 + 150 + 80 lung voxels.
  EXPECT_DOUBLE_EQ(proportions_at(scans[0], -700, -300, 100).lesion_pct,
                   100.0 * 550.0 / 13630.0);
}

// The plotted visit must be a follow-up visit of the batch's schedule: by default its last one
// (week4 here, no day28 in this schedule); anything else is an error, not an empty plot.
TEST(SweepLimits, PlotVisitMustBeInTheSchedule) {
  const std::string schedule =
      "[[visit]]\nname = \"baseline\"\nday = 0\nbaseline = true\n"
      "[[visit]]\nname = \"week1\"\nday = 7\n[[visit]]\nname = \"week4\"\nday = 28\n";
  const std::string dir = small_store("sweep_visit", schedule, {"baseline", "week1", "week4"});
  SweepOptions o;
  o.outdir = dir;
  o.plot_visit = "day28";
  std::string msg = usage_error(o);
  EXPECT_NE(msg.find("--plot-visit 'day28' is not a follow-up visit"), std::string::npos) << msg;
  EXPECT_NE(msg.find("week1, week4"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/sweep/sweep.svg"));
  o.plot_visit = "baseline";
  usage_error(o);
  o.plot_visit = "";
  run_sweep(o);
  const std::string svg = read_text_file(dir + "/sweep/sweep.svg");
  // By default the two endpoints that depend on the split, as small multiples: each row the
  // estimate with its band and, beside it, the p-value.
  EXPECT_NE(svg.find("ggo_pct_change at week4 (mITT)"), std::string::npos);
  EXPECT_NE(svg.find("solid_pct_change at week4 (mITT)"), std::string::npos);
  EXPECT_EQ(svg.find("lesion_pct_change at"), std::string::npos);
  EXPECT_NE(svg.find(": p-value"), std::string::npos);
  // 2 endpoints x 1 line x (estimate, p-value) cells, nested in one picture.
  std::size_t n_svg = 0;
  for (auto at = svg.find("<svg "); at != std::string::npos; at = svg.find("<svg ", at + 1)) ++n_svg;
  EXPECT_EQ(n_svg, 1u + 2u * 2u);
  o.plot_endpoint = "lesion_pct_change";
  run_sweep(o);
  EXPECT_NE(read_text_file(dir + "/sweep/sweep.svg").find("lesion_pct_change at week4 (mITT)"),
            std::string::npos);
  // The plot has data: the Hodges-Lehmann estimate's point and its CI band, not empty series.
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  EXPECT_NE(svg.find("<polygon"), std::string::npos);
  o.plot_visit = "week1";
  run_sweep(o);
  EXPECT_NE(read_text_file(dir + "/sweep/sweep.svg").find("at week1 (mITT)"), std::string::npos);
}

// 300 scans (100 subjects x 3 visits) with synthetic histograms, 50 threshold settings: the
// whole sweep (load from SQLite, recompute, 50 endpoint analyses) must take seconds.
TEST(SweepBench, ThreeHundredScansFiftySettings) {
  const std::string dir = test::temp_dir("sweep_bench");
  const Protocol protocol = load_protocol("covid-ggo-solid");
  {
    Store store(dir + "/results.sqlite");
    store.exec("PRAGMA synchronous=OFF");  // setup speed only
    RunInfo info;
    info.started_at = "2020-01-01T00:00:00Z";
    info.software_version = "bench";
    info.lesion_low_hu = protocol.lesion.low_hu();
    info.lesion_split_hu = protocol.lesion.split_hu();
    info.lesion_high_hu = protocol.lesion.high_hu();
    const auto run = store.begin_run(info);
    Manifest m;
    std::uint64_t state = 12345;
    auto next = [&](std::uint64_t mod) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return (state >> 33) % mod;
    };
    for (int subj = 0; subj < 100; ++subj) {
      const char* visits[] = {"baseline", "day10", "day28"};
      // Per subject: a random lesion HU profile that the treated arm scales down to 3/3, 2/3,
      // 1/3 over the visits (relative change at day 28 exactly -66.67 %), placebo keeps.
      std::vector<std::uint64_t> profile;
      for (int hu = -800; hu < 100; ++hu) profile.push_back(20 + next(40));
      for (int v = 0; v < 3; ++v) {
        ManifestEntry e;
        e.line = m.entries.size() + 2;
        e.subject_id = "S" + std::to_string(subj);
        e.arm = subj % 2 ? "MSC" : "placebo";
        e.visit = visits[v];
        e.path = e.full_path = "/synthetic";
        m.entries.push_back(e);
        vol::RegionHistograms h;
        h.name = "lungs";
        for (int hu = -1000; hu < -800; ++hu) h.lung.counts[HuHistogram::bin(hu)] = 2000;
        const std::uint64_t shrink = subj % 2 ? 3 - v : 3;
        // Healed voxels return to normal lung, so the lung volume stays the same.
        std::uint64_t healed = 0;
        for (auto b : profile) healed += (3 - shrink) * b;
        h.lung.counts[HuHistogram::bin(-900)] += healed;
        for (int hu = -800; hu < 100; ++hu) {
          const std::uint64_t base = profile[static_cast<std::size_t>(hu + 800)];
          h.lung.counts[HuHistogram::bin(hu)] = shrink * base;
          h.suppressed.counts[HuHistogram::bin(hu)] = shrink * 2;  // vessels scale too
        }
        ScanRecord rec;
        rec.subject_id = e.subject_id;
        rec.arm = e.arm;
        rec.visit = e.visit;
        rec.path = e.path;
        rec.status = "ok";
        rec.run_id = run;
        store.save_scan(rec, pipeline::measure_regions({h}, protocol, 0.001));
      }
    }
    store.set_manifest(m);
    store.update_timing(trial::default_visit_schedule());
  }
  SweepOptions o;
  o.outdir = dir;
  o.lesion_low = "-700:-600:25";  // 5 values, from the protocol's own low
  o.split = "-400:-175:25";       // 10 values
  const auto t0 = std::chrono::steady_clock::now();
  const SweepOutput out = run_sweep(o);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(out.settings.size(), 50u);
  EXPECT_EQ(out.n_scans, 300u);
  std::printf("[ sweep bench ] 300 scans x 50 settings: %.3f s (sweep core), %.3f s with files\n",
              out.seconds, total);
  EXPECT_LT(total, 20.0);
  const report::CsvTable csv = report::read_csv(dir + "/sweep/sweep.csv");
  // 50 settings x 3 endpoints x 2 follow-up visits x 2 populations.
  EXPECT_EQ(csv.rows.size(), 50u * 3u * 2u * 2u);
  const std::string svg = read_text_file(dir + "/sweep/sweep.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("split ground-glass / solid (HU)"), std::string::npos);
  EXPECT_NE(svg.find("p = 0.05"), std::string::npos);
  // Every treated subject changes by -200/3 % at day 28, every placebo subject by 0: the HL
  // difference is -200/3 percentage points at every setting.
  const auto ep = csv.column("endpoint"), vis = csv.column("visit"), pop = csv.column("population"),
             hl = csv.column("hl_estimate");
  int checked = 0;
  for (const auto& r : csv.rows) {
    if (r[ep] == "lesion_pct_change" && r[vis] == "day28" && r[pop] == "mITT") {
      EXPECT_NEAR(std::stod(r[hl]), -200.0 / 3.0, 1e-9);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 50);
}

}  // namespace
}  // namespace lungvol::batch
