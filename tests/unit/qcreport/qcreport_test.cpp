// A synthetic batch folder built through the results store API: three subjects whose visit
// statuses, lung volumes, calibration and lesion label maps are chosen so that each status and
// each flag is known in advance.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "batch/store.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/protocol.hpp"
#include "io/image_io.hpp"
#include "qcreport/qc_report.hpp"
#include "report/html.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::qcreport {
namespace {

// Lungs region of `lung` non-lesion voxels plus `ggo` ground-glass voxels, 1 mL per voxel.
pipeline::RegionResult lungs(std::uint64_t lung, std::uint64_t ggo) {
  vol::RegionHistograms h;
  h.name = "lungs";
  h.lung.counts[HuHistogram::bin(-850)] = lung;
  h.lung.counts[HuHistogram::bin(-500)] = ggo;
  return pipeline::measure_regions({h}, load_protocol("covid-ggo-solid"), 1.0)[0];
}

const std::string kPng = std::string("\x89PNG\r\n\x1a\n", 8) + "not really a png";

struct Batch {
  std::string dir;
};

// A1 (MSC):     baseline ok 1000 mL, day10 ok 800 mL (-20 %: lung volume flag), day28 failed
// A2 (placebo): baseline ok, day10 ok but out of window, day28 not in the manifest (missing;
//               imputed when changes.csv carries day10 forward)
// A3 (MSC):     baseline ok with 0.2 % lesion (low baseline flag), calibration out of tolerance
//               and one reading warning in metrics.json; lesion label map touching slice 0
Batch make_batch(const std::string& tag, bool with_changes) {
  Batch b{test::temp_dir(tag)};
  batch::Store store(b.dir + "/results.sqlite");
  batch::RunInfo info;
  info.started_at = "2020-05-01T00:00:00Z";
  info.software_version = "test";
  info.protocol_name = "covid-ggo-solid";
  const auto run = store.begin_run(info);

  batch::Manifest m;
  m.source = "manifest.csv";
  const std::vector<std::array<std::string, 3>> rows = {
      {"A1", "MSC", "baseline"},     {"A1", "MSC", "day10"},     {"A1", "MSC", "day28"},
      {"A2", "placebo", "baseline"}, {"A2", "placebo", "day10"}, {"A3", "MSC", "baseline"}};
  for (std::size_t n = 0; n < rows.size(); ++n) {
    batch::ManifestEntry e;
    e.line = n + 2;
    e.subject_id = rows[n][0];
    e.arm = rows[n][1];
    e.visit = rows[n][2];
    e.path = e.full_path = "/data/" + e.subject_id + "/" + e.visit;
    m.entries.push_back(e);
  }
  store.set_manifest(m);

  auto record = [&](const std::string& s, const std::string& arm, const std::string& v) {
    batch::ScanRecord r;
    r.subject_id = s;
    r.arm = arm;
    r.visit = v;
    r.path = "/data/" + s + "/" + v;
    r.status = "ok";
    r.run_id = run;
    r.outdir = b.dir + "/scans/" + s + "/" + v;
    ensure_directory(r.outdir);
    return r;
  };
  auto r = record("A1", "MSC", "baseline");
  store.save_scan(r, {lungs(950, 50)});  // 1000 mL, 5 % lesion
  write_text_atomic(r.outdir + "/qc_axial.png", kPng);
  write_text_atomic(r.outdir + "/metrics.json", "{}");  // the same (unstamped) analysis
  r = record("A1", "MSC", "day10");
  store.save_scan(r, {lungs(770, 30)});  // 800 mL
  r = record("A1", "MSC", "day28");
  r.status = "failed";
  r.error = "no lungs found";
  store.save_failure(r, 6);
  r = record("A2", "placebo", "baseline");
  store.save_scan(r, {lungs(1900, 100)});  // 2000 mL
  r = record("A2", "placebo", "day10");
  r.in_window = false;
  store.save_scan(r, {lungs(1950, 80)});  // 2030 mL: +1.5 %, below the limit
  r = record("A3", "MSC", "baseline");
  store.save_scan(r, {lungs(2994, 6)});  // 0.2 % lesion
  write_text_atomic(r.outdir + "/metrics.json", R"({
    "input": {"warnings": ["slice spacing varies by 0.2 mm"]},
    "calibration": {"checked": true, "within_tolerance": false,
                    "flags": ["outside air median -940 HU, expected -1000 +- 20"]}})");
  Geometry g;
  g.size = {4, 4, 5};
  LabelImage lesions(g, 0);
  lesions.at(1, 1, 0) = 1;  // first slice
  lesions.at(2, 2, 2) = 2;  // interior
  io::write_label_image(lesions, r.outdir + "/lesions.nii.gz");

  if (with_changes) {
    ensure_directory(b.dir + "/endpoint");
    write_text_atomic(
        b.dir + "/endpoint/changes.csv",
        "subject_id,arm,endpoint,visit,population,baseline,value,source_visit,abs_change,"
        "rel_change,change,included,flags\n"
        "A1,MSC,lesion_pct_change,day10,mITT,5,3.75,day10,-1.25,-25,-25,true,\n"
        "A2,placebo,lesion_pct_change,day10,mITT,5,3.9,day10,-1.1,-22,-22,true,\n"
        "A1,MSC,lesion_pct_change,day28,mITT,5,3.75,day10,-1.25,-25,-25,true,imputed_locf\n"
        "A2,placebo,lesion_pct_change,day28,mITT,5,3.9,day10,-1.1,-22,-22,true,imputed_locf\n");
  }
  return b;
}

const Visit& visit(const BatchView& v, const std::string& s, const std::string& name) {
  for (const auto& sub : v.subjects) {
    for (const auto& x : sub.visits) {
      if (sub.id == s && x.visit == name) return x;
    }
  }
  throw std::runtime_error("no visit " + s + " " + name);
}

std::vector<std::string> kinds(const Visit& v) {
  std::vector<std::string> k;
  for (const auto& f : v.flags) k.push_back(f.code);
  return k;
}

TEST(QcReportView, EverySubjectAndVisitWithItsStatus) {
  const Batch b = make_batch("qcview", false);
  const BatchView view = load_batch_view(b.dir);
  ASSERT_EQ(view.subjects.size(), 3u);
  EXPECT_EQ(view.subjects[0].id, "A1");
  EXPECT_EQ(view.subjects[1].id, "A2");
  EXPECT_EQ(view.subjects[2].id, "A3");
  EXPECT_EQ(view.visit_names, (std::vector<std::string>{"baseline", "day10", "day28"}));
  EXPECT_EQ(visit(view, "A1", "baseline").status, VisitStatus::kDone);
  EXPECT_EQ(visit(view, "A1", "day10").status, VisitStatus::kDone);
  EXPECT_EQ(visit(view, "A1", "day28").status, VisitStatus::kFailed);
  EXPECT_EQ(visit(view, "A2", "day10").status, VisitStatus::kOutOfWindow);
  EXPECT_EQ(visit(view, "A2", "day28").status, VisitStatus::kMissing);
  EXPECT_EQ(visit(view, "A3", "day10").status, VisitStatus::kMissing);
  // 1000 voxels of 1 mL, 50 of them ground glass.
  EXPECT_DOUBLE_EQ(visit(view, "A1", "baseline").lungs.at("volume_ml"), 1000.0);
  EXPECT_DOUBLE_EQ(visit(view, "A1", "baseline").lungs.at("lesion_pct"), 5.0);
}

TEST(QcReportView, ChangesCsvMarksLocfVisitsImputed) {
  const Batch b = make_batch("qcview_changes", true);
  const BatchView view = load_batch_view(b.dir);
  EXPECT_TRUE(view.has_changes);
  EXPECT_EQ(visit(view, "A2", "day28").status, VisitStatus::kImputed);
  EXPECT_EQ(visit(view, "A2", "day28").imputed_from, "day10");
  // A failed scan stays failed, with its imputation noted.
  EXPECT_EQ(visit(view, "A1", "day28").status, VisitStatus::kFailed);
  EXPECT_EQ(visit(view, "A1", "day28").imputed_from, "day10");
}

TEST(QcReportFlags, FireOnConstructedCases) {
  const Batch b = make_batch("qcflags", false);
  BatchView view = load_batch_view(b.dir);
  FlagOptions options;  // 10 %, 0.5 %
  add_flags(view, options);
  // A1: 1000 -> 800 mL is -20 %.
  // A1: 1000 -> 800 mL (-20 %) with the tissue mass 167.5 -> 130.5 g (-22 %): not a breath.
  ASSERT_EQ(kinds(visit(view, "A1", "day10")), std::vector<std::string>{"lung_volume_jump"});
  EXPECT_NE(visit(view, "A1", "day10").flags[0].message.find("-20.0 %"), std::string::npos);
  EXPECT_NEAR(*visit(view, "A1", "day10").flags[0].value, -20.0, 1e-9);
  EXPECT_EQ(visit(view, "A1", "day10").qc_score, 25);
  EXPECT_TRUE(visit(view, "A1", "baseline").flags.empty());
  // A failed scan is flagged with its reason and exit code, never "0 flags".
  ASSERT_EQ(kinds(visit(view, "A1", "day28")), std::vector<std::string>{"scan_failed"});
  EXPECT_EQ(*visit(view, "A1", "day28").flags[0].value, 6.0);
  EXPECT_NE(visit(view, "A1", "day28").flags[0].message.find("no lungs found"), std::string::npos);
  EXPECT_EQ(visit(view, "A1", "day28").qc_score, 100);
  // A2: 2000 -> 2030 mL (+1.5 %) and 5 % lesion: nothing.
  EXPECT_TRUE(visit(view, "A2", "baseline").flags.empty());
  EXPECT_TRUE(visit(view, "A2", "day10").flags.empty());
  // A3: calibration, border lesion (1 voxel on the first slice), reading warning, 0.2 % lesion:
  // each once, in the flag table's order; score 20 + 10 + 5 + 5.
  const auto a3 = kinds(visit(view, "A3", "baseline"));
  EXPECT_EQ(a3, (std::vector<std::string>{"calibration", "lesion_at_border", "input_warning",
                                          "low_baseline_lesion"}));
  EXPECT_NE(visit(view, "A3", "baseline").flags[1].message.find("1 lesion voxels"),
            std::string::npos);
  EXPECT_EQ(visit(view, "A3", "baseline").qc_score, 40);

  // A 25 % limit lets A1's -20 % pass.
  BatchView loose = load_batch_view(b.dir);
  options.lung_change_pct = 25;
  add_flags(loose, options);
  EXPECT_TRUE(visit(loose, "A1", "day10").flags.empty());
}

TEST(QcReportFlags, CountsLesionVoxelsOnEndSlicesOnly) {
  const std::string dir = test::temp_dir("qcborder");
  Geometry g;
  g.size = {3, 2, 4};
  LabelImage l(g, 0);
  l.at(0, 0, 1) = 1;
  l.at(2, 1, 2) = 2;
  io::write_label_image(l, dir + "/a.nii.gz");
  EXPECT_EQ(lesion_voxels_on_end_slices(dir + "/a.nii.gz"), 0u);
  l.at(0, 0, 0) = 1;
  l.at(1, 1, 3) = 2;
  l.at(2, 1, 3) = 1;
  io::write_label_image(l, dir + "/b.nii.gz");
  EXPECT_EQ(lesion_voxels_on_end_slices(dir + "/b.nii.gz"), 3u);
}

std::string read(const std::string& path) { return read_text_file(path); }

TEST(QcReport, WritesSelfContainedFolder) {
  const Batch b = make_batch("qcreport_files", true);
  const std::string out = b.dir + "/report";
  const QcReportSummary s = write_qc_report(b.dir, out);
  EXPECT_EQ(s.subjects, 3u);
  EXPECT_EQ(s.scan_pages, 6u);  // every stored scan, failed included
  EXPECT_EQ(s.images, 1u);
  EXPECT_EQ(s.flags, 6u);
  for (const auto& f : s.files) EXPECT_TRUE(fs::is_regular_file(f)) << f;
  for (const char* page :
       {"A1-baseline", "A1-day10", "A1-day28", "A2-baseline", "A2-day10", "A3-baseline"}) {
    EXPECT_TRUE(fs::is_regular_file(out + "/scans/" + page + ".html")) << page;
  }
  // The PNG is copied byte for byte and linked relatively.
  EXPECT_EQ(read(out + "/images/A1-baseline/qc_axial.png"), kPng);
  EXPECT_NE(
      read(out + "/scans/A1-baseline.html").find("src=\"../images/A1-baseline/qc_axial.png\""),
      std::string::npos);

  const std::string index = read(out + "/index.html");
  for (const char* subject : {">A1</td>", ">A2</td>", ">A3</td>"}) {
    EXPECT_NE(index.find(subject), std::string::npos) << subject;
  }
  // Status badges in the subjects grid: A1 done, done, failed (+LOCF); A2 done, out of
  // window, imputed; A3 done, missing, missing.
  const std::regex row_a2("<td id=\"subject-A2\">A2</td><td>placebo</td>([\\s\\S]*?)</tr>");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(index, m, row_a2));
  const std::string a2 = m[1];
  const auto p_done = a2.find(">done<"), p_oow = a2.find(">out of window<"),
             p_imp = a2.find(">imputed (LOCF day10)<");
  ASSERT_NE(p_done, std::string::npos);
  ASSERT_NE(p_oow, std::string::npos);
  ASSERT_NE(p_imp, std::string::npos);
  EXPECT_LT(p_done, p_oow);
  EXPECT_LT(p_oow, p_imp);
  EXPECT_NE(index.find("lung_volume_jump"), std::string::npos);
  EXPECT_NE(index.find("calibration"), std::string::npos);
  EXPECT_NE(index.find("<svg class=\"chart\""), std::string::npos);

  // No URL leaves the folder: no http(s), no absolute file links, no scripts.
  for (const auto& f : s.files) {
    if (fs::path(f).extension() != ".html") continue;
    const std::string html = read(f);
    EXPECT_EQ(html.find("http"), std::string::npos) << f;
    EXPECT_EQ(html.find("<script"), std::string::npos) << f;
    EXPECT_EQ(html.find("src=\"/"), std::string::npos) << f;
    EXPECT_EQ(html.find("href=\"/"), std::string::npos) << f;
  }
}

TEST(QcReport, ScansSortedByRiskWithThumbnailsAndDecisions) {
  const Batch b = make_batch("qcreport_risk", false);
  {
    batch::Store store(b.dir + "/results.sqlite");
    batch::ReviewDecision d;
    d.subject_id = "A2";
    d.visit = "day10";
    d.decision = "excluded";
    d.reason = "motion artefacts";
    d.reader = "Dr Reader";
    d.decided_at = "2020-06-01T10:00:00Z";
    store.save_review(d);
    d.visit = "baseline";
    d.decision = "accepted";
    d.reason = "";
    store.save_review(d);
  }
  const std::string out = b.dir + "/report";
  write_qc_report(b.dir, out);
  const std::string index = read(out + "/index.html");
  // Rows of the scans table in score order: A1 day28 (failed, 100), A3 baseline (40), A1 day10
  // (25), then the unflagged ones in subject x visit order.
  std::vector<int> scores;
  const std::regex row("<tr data-score=\"([0-9]+)\">");
  for (auto it = std::sregex_iterator(index.begin(), index.end(), row); it != std::sregex_iterator(); ++it) {
    scores.push_back(std::stoi((*it)[1]));
  }
  EXPECT_EQ(scores, (std::vector<int>{100, 40, 25, 0, 0, 0}));
  const auto failed = index.find("<tr data-score=\"100\">");
  ASSERT_NE(failed, std::string::npos);
  const std::string failed_row = index.substr(failed, index.find("</tr>", failed) - failed);
  EXPECT_NE(failed_row.find("exit 6: no lungs found"), std::string::npos) << failed_row;
  EXPECT_NE(failed_row.find("scan_failed"), std::string::npos);
  // A1 baseline's thumbnail links to the full image.
  EXPECT_NE(index.find("<a href=\"images/A1-baseline/qc_axial.png\"><img class=\"thumb\" "
                       "src=\"images/A1-baseline/qc_axial.png\""),
            std::string::npos);
  // Decisions shown, with who and when; scans without one say so.
  EXPECT_NE(index.find("excluded by Dr Reader 2020-06-01T10:00:00Z (motion artefacts)"),
            std::string::npos);
  EXPECT_NE(index.find("accepted by Dr Reader"), std::string::npos);
  EXPECT_NE(index.find("dec-none\">none"), std::string::npos);
  EXPECT_NE(index.find("NOT locked: 4 of 6 scans without a valid decision"), std::string::npos);
  const std::string page = read(out + "/scans/A2-day10.html");
  EXPECT_NE(page.find("excluded by Dr Reader"), std::string::npos);
  EXPECT_NE(page.find("lungvol review "), std::string::npos);
}

TEST(QcReport, NeverShowsImagesOfAnotherAnalysis) {
  const Batch b = make_batch("qcreport_stale", false);
  // The folder's metrics.json belongs to another analysis than the one the store holds.
  write_text_atomic(b.dir + "/scans/A1/baseline/metrics.json",
                    R"({"analyzed_at": "2019-01-01T00:00:00Z"})");
  const std::string out = b.dir + "/report";
  const QcReportSummary s = write_qc_report(b.dir, out);
  EXPECT_EQ(s.images, 0u);
  EXPECT_FALSE(fs::exists(out + "/images/A1-baseline/qc_axial.png"));
  const std::string page = read(out + "/scans/A1-baseline.html");
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_NE(page.find("holds another analysis"), std::string::npos);
  EXPECT_EQ(read(out + "/index.html").find("class=\"thumb\""), std::string::npos);
  // Without a metrics.json the images cannot be matched: not shown either.
  fs::remove(b.dir + "/scans/A1/baseline/metrics.json");
  EXPECT_EQ(write_qc_report(b.dir, b.dir + "/report2").images, 0u);
}

TEST(QcReport, EmbeddedImagesNeedNoImageFolder) {
  const Batch b = make_batch("qcreport_embed", false);
  const std::string out = b.dir + "/report-embedded";
  QcReportOptions o;
  o.embed_images = true;
  write_qc_report(b.dir, out, o);
  EXPECT_FALSE(fs::exists(out + "/images"));
  EXPECT_NE(read(out + "/scans/A1-baseline.html")
                .find("src=\"data:image/png;base64," + report::base64_encode(kPng) + "\""),
            std::string::npos);
}

TEST(QcReport, ScanPageShowsThe3dRenderWhenPresent) {
  const Batch b = make_batch("qcreport_3d", false);
  // `analyze --meshes` writes qc_3d.png next to the 2D QC images of the scan.
  const std::string scan = b.dir + "/scans/A1/baseline";
  write_text_atomic(scan + "/qc_3d.png", kPng + "3d");
  const std::string out = b.dir + "/report";
  const QcReportSummary s = write_qc_report(b.dir, out);
  EXPECT_EQ(s.images, 2u);
  EXPECT_EQ(read(out + "/images/A1-baseline/qc_3d.png"), kPng + "3d");
  const std::string page = read(out + "/scans/A1-baseline.html");
  const auto axial = page.find("src=\"../images/A1-baseline/qc_axial.png\"");
  const auto render = page.find("src=\"../images/A1-baseline/qc_3d.png\"");
  ASSERT_NE(render, std::string::npos);
  EXPECT_LT(axial, render);  // after the 2D images
  EXPECT_EQ(read(out + "/scans/A1-day10.html").find("qc_3d.png"), std::string::npos);
}

TEST(QcReport, MissingStoreIsAnInputError) {
  const std::string dir = test::temp_dir("qcreport_empty");
  try {
    load_batch_view(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_status(), 3);
    EXPECT_NE(std::string(e.what()).find("results.sqlite"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir + "/results.sqlite"));  // nothing created
}

TEST(QcReportCli, ExitStatusAndDefaultFolder) {
  const std::string empty = test::temp_dir("qcreport_cli_empty");
  const std::string lv = test::lungvol_binary();
  EXPECT_EQ(test::run_command(lv + " report " + empty, empty + "/log.txt"), 3);
  const Batch b = make_batch("qcreport_cli", true);
  EXPECT_EQ(test::run_command(lv + " --log-level warn report " + b.dir + " --lung-change-pct 25",
                              b.dir + "/log.txt"),
            0);
  const std::string index = read(b.dir + "/report/index.html");
  EXPECT_EQ(index.find("lung_volume_jump"), std::string::npos);  // -20 % under a 25 % limit
  EXPECT_NE(index.find("low_baseline_lesion"), std::string::npos);
}

}  // namespace
}  // namespace lungvol::qcreport
