// Lesion change maps end to end (docs/validation.md, "Lesion change maps"): a phantom subject
// whose lesions shrink, vanish, consolidate, regress and appear between baseline and day 10, the
// follow-up scanned at another table position. `batch` analyzes both scans, registers the
// follow-up to the baseline and stores the change volumes; each class must be within 10 % of the
// phantom's truth. Then resumability, the tables and files, and the flags.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include "batch/exports.hpp"
#include "batch/runner.hpp"
#include "batch/store.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "io/dicom_write.hpp"
#include "io/image_io.hpp"
#include "phantom/phantom.hpp"
#include "qcreport/qc_report.hpp"
#include "registration/transform_io.hpp"
#include "report/png.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::registration {
namespace {

namespace fs = std::filesystem;

// Baseline: A large ground-glass (shrinks), B ground-glass (vanishes), C ground-glass
// (consolidates), D solid (regresses to ground-glass). Day 10: A smaller, C solid, D ground-glass,
// E a new ground-glass lesion.
const char* kBaselineLesions =
    "ggo:right:0.15,-0.05,0.58:20,17,24;ggo:left:0.3,0.3,0.25:15,13,16;"
    "ggo:right:0.3,0.35,0.22:13,12,14;solid:left:0.1,0,0.62:13,11,15";
const char* kFollowupLesions =
    "ggo:right:0.15,-0.05,0.58:13,11,16;solid:right:0.3,0.35,0.22:13,12,14;"
    "ggo:left:0.1,0,0.62:13,11,15;ggo:left:0.25,-0.35,0.45:13,12,13";

struct Truth {
  std::map<std::uint8_t, double> ml;  // change label -> mL
};

struct Cohort {
  std::string dir, manifest;
  Truth truth;
};

const Cohort& cohort() {
  static const Cohort c = [] {
    Cohort c;
    c.dir = test::temp_dir("change_cohort");
    phantom::PhantomOptions o;
    o.seed = 3;
    o.size = {160, 160, 72};
    o.spacing = {2.2, 2.2, 4.5};
    o.lesions = phantom::parse_lesion_spec(kBaselineLesions);
    const phantom::Phantom base = phantom::make_phantom(o);
    o.lesions = phantom::parse_lesion_spec(kFollowupLesions);
    phantom::Phantom follow = phantom::make_phantom(o);
    // The follow-up lies elsewhere on the table: same anatomy, other patient coordinates.
    follow.ct.geom.origin[0] += 7.0;
    follow.ct.geom.origin[1] -= 5.0;
    follow.ct.geom.origin[2] += 13.5;
    follow.lungs.geom = follow.ct.geom;
    follow.lesions.geom = follow.ct.geom;
    io::CtSeriesMeta meta;
    meta.patient_id = "CHANGE";
    meta.study_date = "20200401";
    phantom::write_phantom(base, c.dir + "/baseline", meta);
    meta.study_date = "20200411";
    phantom::write_phantom(follow, c.dir + "/day10", meta);
    // Truth: the two lesion maps voxel by voxel (same anatomy, same voxel grid in index space).
    const double vml = base.ct.geom.voxel_volume_ml();
    for (std::size_t q = 0; q < base.lesions.size(); ++q) {
      const std::uint8_t b = base.lesions[q], f = follow.lesions[q];
      std::uint8_t ch = labels::kNoChange;
      if (b && !f) ch = labels::kResolved;
      else if (!b && f) ch = labels::kNew;
      else if (b && b == f) ch = labels::kPersistent;
      else if (b == labels::kGroundGlass && f == labels::kSolid) ch = labels::kProgressed;
      else if (b == labels::kSolid && f == labels::kGroundGlass) ch = labels::kRegressed;
      if (ch) c.truth.ml[ch] += vml;
    }
    c.manifest = c.dir + "/manifest.csv";
    write_text_atomic(c.manifest, "subject_id,arm,visit,path\nP1,A,baseline,baseline/dicom\n"
                                  "P1,A,day10,day10/dicom\n");
    return c;
  }();
  return c;
}

// A change map SEG as DCMTK reads it: frames and set voxels per segment label, and the series
// its frames reference.
struct SegContent {
  std::map<std::string, std::size_t> frames, voxels;
  std::string referenced_series, overlap;
};

std::string dcm_string(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  item.findAndGetOFStringArray(tag, v);
  return v.c_str();
}

SegContent read_change_seg(const std::string& path) {
  SegContent out;
  DcmFileFormat ff;
  if (ff.loadFile(path.c_str()).bad()) {
    ADD_FAILURE() << "cannot read " << path;
    return out;
  }
  DcmDataset& ds = *ff.getDataset();
  out.overlap = dcm_string(ds, DCM_SegmentsOverlap);
  DcmItem* refser = nullptr;
  if (ds.findAndGetSequenceItem(DCM_ReferencedSeriesSequence, refser).good()) {
    out.referenced_series = dcm_string(*refser, DCM_SeriesInstanceUID);
  }
  std::map<Uint16, std::string> label_of;
  DcmSequenceOfItems* segs = nullptr;
  ds.findAndGetSequence(DCM_SegmentSequence, segs);
  for (unsigned long i = 0; segs && i < segs->card(); ++i) {
    Uint16 number = 0;
    segs->getItem(i)->findAndGetUint16(DCM_SegmentNumber, number);
    label_of[number] = dcm_string(*segs->getItem(i), DCM_SegmentLabel);
  }
  Uint16 rows = 0, cols = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  const std::size_t n = std::size_t(rows) * cols;
  const Uint8* bits = nullptr;
  unsigned long nbytes = 0;
  ds.findAndGetUint8Array(DCM_PixelData, bits, &nbytes);
  DcmSequenceOfItems* frames = nullptr;
  ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames);
  for (unsigned long f = 0; frames && bits && f < frames->card(); ++f) {
    DcmItem* segid = nullptr;
    frames->getItem(f)->findAndGetSequenceItem(DCM_SegmentIdentificationSequence, segid);
    Uint16 number = 0;
    if (segid) segid->findAndGetUint16(DCM_ReferencedSegmentNumber, number);
    const std::string& label = label_of[number];
    ++out.frames[label];
    for (std::size_t q = 0; q < n && (f * n + q) / 8 < nbytes; ++q) {
      const std::size_t bit = f * n + q;
      out.voxels[label] += (bits[bit / 8] >> (bit % 8)) & 1u;
    }
  }
  return out;
}

batch::BatchOptions options(const std::string& outdir) {
  batch::BatchOptions o;
  o.manifest = cohort().manifest;
  o.outdir = outdir;
  o.threads = 2;
  o.progress_tty = 0;
  return o;
}

TEST(ChangeMapBatch, EveryClassWithinTenPercentOfTruth) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  const Cohort& c = cohort();
  for (std::uint8_t l = labels::kResolved; l < labels::kChangeLabelCount; ++l) {
    ASSERT_GT(c.truth.ml.count(l) ? c.truth.ml.at(l) : 0.0, 2.0) << labels::change_label_name(l);
  }
  const std::string out = test::temp_dir("change_batch") + "/out";
  const batch::BatchSummary s = batch::run_batch(options(out));
  ASSERT_EQ(s.counts.analyzed, 2u);
  ASSERT_EQ(s.registered, 1u);
  ASSERT_EQ(s.registrations_failed, 0u);
  EXPECT_EQ(s.exit_status(), 0);

  batch::Store store(out + "/results.sqlite");
  const auto reg = store.find_registration("P1", "day10");
  ASSERT_TRUE(reg);
  EXPECT_EQ(reg->status, "ok");
  EXPECT_EQ(reg->baseline_visit, "baseline");
  std::map<std::string, double> lungs;
  for (const auto& m : store.registration_measurements("P1", "day10")) {
    if (m.region == "lungs" && m.value) lungs[m.metric] = *m.value;
  }
  const std::map<std::uint8_t, std::string> metric = {
      {labels::kResolved, "change_resolved_ml"}, {labels::kPersistent, "change_persistent_ml"},
      {labels::kNew, "change_new_ml"},           {labels::kProgressed, "change_progressed_ml"},
      {labels::kRegressed, "change_regressed_ml"}};
  for (const auto& [label, name] : metric) {
    const double truth = c.truth.ml.at(label), got = lungs.at(name);
    std::printf("change %-10s truth %6.2f mL measured %6.2f mL (%+.1f %%)\n",
                labels::change_label_name(label), truth, got, 100.0 * (got - truth) / truth);
    EXPECT_NEAR(got, truth, 0.10 * truth) << name;
  }
  // Same anatomy: no inspiration change, masks agree.
  EXPECT_NEAR(lungs.at("volume_ratio"), 1.0, 0.01);
  EXPECT_NEAR(lungs.at("jacobian_mean"), 1.0, 0.02);
  EXPECT_EQ(lungs.at("inspiration_flagged"), 0.0);
  EXPECT_GT(lungs.at("baseline_mask_dice"), 0.98);
  // The translation was found: the stored affine moves baseline points by the table offset.
  const Affine a = read_affine(out + "/registrations/P1/day10/affine.tfm");
  EXPECT_NEAR(a.t[0], 7.0, 1.0);
  EXPECT_NEAR(a.t[1], -5.0, 1.0);
  EXPECT_NEAR(a.t[2], 13.5, 1.0);

  // Files: transforms, change map on the baseline grid, record, QC images.
  const std::string d = out + "/registrations/P1/day10/";
  for (const char* f : {"affine.tfm", "deformation.nii.gz", "inverse.nii.gz", "change_map.nii.gz",
                        "registration.json", "measurements.csv", "qc_change_axial.png",
                        "qc_change_coronal.png", "qc_checker_axial.png", "qc_checker_coronal.png"}) {
    EXPECT_TRUE(fs::is_regular_file(d + f)) << f;
  }
  const LabelImage change = io::read_label_image(d + "change_map.nii.gz");
  const LabelImage base_lungs = io::read_label_image(out + "/scans/P1/baseline/lungs.nii.gz");
  EXPECT_EQ(change.geom.size, base_lungs.geom.size);
  // The change map as a DICOM SEG on the baseline series: per class, as many frames as slices of
  // change_map.nii.gz holding it and exactly its voxels; the frames reference the baseline series
  // (its UID read from a baseline DICOM file, not from lungvol).
  {
    const SegContent seg = read_change_seg(d + "change_map_seg.dcm");
    const std::map<std::uint8_t, std::string> seg_label = {
        {labels::kResolved, "Resolved lesion"}, {labels::kPersistent, "Persistent lesion"},
        {labels::kNew, "New lesion"},           {labels::kProgressed, "Progressed lesion"},
        {labels::kRegressed, "Regressed lesion"}};
    std::map<std::string, std::size_t> frames, voxels;
    const std::size_t n = change.geom.slice_voxels();
    for (const auto& [label, name] : seg_label) {
      for (std::size_t k = 0; k < change.geom.size[2]; ++k) {
        std::size_t in_slice = 0;
        for (std::size_t q = 0; q < n; ++q) in_slice += change[k * n + q] == label;
        voxels[name] += in_slice;
        frames[name] += in_slice > 0;
      }
    }
    for (const auto& [name, count] : voxels) {
      std::printf("change SEG %-18s %5zu voxels in %2zu frames (NIfTI: %5zu voxels, %2zu slices)\n",
                  name.c_str(), seg.voxels.count(name) ? seg.voxels.at(name) : 0,
                  seg.frames.count(name) ? seg.frames.at(name) : 0, count, frames.at(name));
      ASSERT_GT(count, 0u) << name;  // every class occurs in this cohort
    }
    EXPECT_EQ(seg.voxels, voxels);
    EXPECT_EQ(seg.frames, frames);
    EXPECT_EQ(seg.overlap, "NO");
    std::string baseline_series;
    for (const auto& e : fs::directory_iterator(c.dir + "/baseline/dicom")) {
      DcmFileFormat ct;
      if (ct.loadFile(e.path().c_str()).good()) {
        baseline_series = dcm_string(*ct.getDataset(), DCM_SeriesInstanceUID);
        break;
      }
    }
    ASSERT_FALSE(baseline_series.empty());
    EXPECT_EQ(seg.referenced_series, baseline_series);
  }
  const auto record = nlohmann::json::parse(read_text_file(d + "registration.json"));
  EXPECT_EQ(record["schema"], "lungvol.registration/1");
  EXPECT_EQ(record["key"], reg->key);
  EXPECT_EQ(record["files"]["change_seg"], "change_map_seg.dcm");
  EXPECT_EQ(record["baseline"]["input_sha256"], store.find_scan("P1", "baseline")->input_sha256);
  EXPECT_EQ(report::read_png(d + "qc_change_axial.png").channels, 3);

  // Tables: the tidy CSV holds the change rows, visits_wide the fractions.
  const std::string tidy = read_text_file(out + "/measurements.csv");
  EXPECT_NE(tidy.find(",lungs,change_resolved_ml,"), std::string::npos);
  EXPECT_NE(tidy.find(",right_upper,change_resolved_ml,"), std::string::npos);
  const report::CsvTable wide = batch::visits_wide_table(store);
  const auto col = [&](const std::string& n) {
    return std::size_t(std::find(wide.header.begin(), wide.header.end(), n) - wide.header.begin());
  };
  ASSERT_LT(col("resolved_fraction"), wide.header.size());
  ASSERT_EQ(wide.rows.size(), 2u);
  EXPECT_EQ(wide.rows[0][col("resolved_fraction")], "0");  // baseline
  EXPECT_EQ(wide.rows[0][col("registration")], "baseline");
  EXPECT_EQ(wide.rows[1][col("registration")], "ok");
  EXPECT_EQ(wide.rows[1][col("inspiration")], "ok");
  EXPECT_NEAR(std::stod(wide.rows[1][col("resolved_fraction")]),
              100.0 * lungs.at("change_resolved_ml") / lungs.at("change_baseline_lesion_ml"), 1e-9);

  // The QC report: the follow-up's page shows the change overlay and the checkerboard.
  const std::string rep = test::temp_dir("change_report") + "/report";
  qcreport::write_qc_report(out, rep);
  std::size_t pages_with_registration = 0;
  for (const auto& e : fs::directory_iterator(rep + "/scans")) {
    const std::string html = read_text_file(e.path().string());
    if (html.find("<h2>Registration to baseline</h2>") == std::string::npos) continue;
    ++pages_with_registration;
    EXPECT_NE(html.find("P1 / day10"), std::string::npos);
    for (const char* f : {"qc_change_axial.png", "qc_checker_coronal.png"}) {
      EXPECT_NE(html.find(f), std::string::npos) << f;
    }
  }
  EXPECT_EQ(pages_with_registration, 1u);

  // Resume: nothing changed, nothing is registered again.
  const batch::BatchSummary again = batch::run_batch(options(out));
  EXPECT_EQ(again.counts.skipped, 2u);
  EXPECT_EQ(again.registered, 0u);
  EXPECT_EQ(again.registrations_skipped, 1u);
}

}  // namespace
}  // namespace lungvol::registration
