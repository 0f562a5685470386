// Issue #19 item 1: a series stored in any axis order (coronal and sagittal reformats, rows along
// y, flipped axes) gives exactly the numbers of the axial series, and its label maps, DICOM SEG
// and QC images describe the same voxels on the series' own grid.
//
// One phantom (96 x 96 x 40 voxels of 3.6 x 3.6 x 8 mm, lesions included) is written as a DICOM
// series in each of the 48 axis orders (tests/support/reorient.hpp, plain loops independent of
// core/orientation) and analyzed by the real pipeline from the files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include "core/fs.hpp"
#include "core/labels.hpp"
#include "dicomout/seg.hpp"
#include "io/dicom_write.hpp"
#include "io/image_io.hpp"
#include "phantom/phantom.hpp"
#include "pipeline/analyze.hpp"
#include "tests/support/reorient.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::pipeline {
namespace {

const phantom::Phantom& the_phantom() {
  static const phantom::Phantom ph = [] {
    phantom::PhantomOptions o;
    o.size = {96, 96, 40};
    o.spacing = {3.6, 3.6, 8.0};
    o.seed = 3;
    return phantom::make_phantom(o);
  }();
  return ph;
}

AnalyzeOptions options_for(const std::string& dicom, const std::string& out) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  AnalyzeOptions o;
  o.input = dicom;
  o.outdir = out;
  o.write_qc_images = !out.empty();
  o.write_label_maps = !out.empty();
  o.write_dicom = !out.empty();
  return o;
}

std::string write_series(const CtImage& ct, const std::string& tag) {
  const std::string dir = test::temp_dir("orient_" + tag);
  io::CtSeriesMeta meta;
  meta.patient_id = "ORIENT";
  meta.series_description = "phantom stored " + tag;
  io::write_ct_series(ct, dir, meta);
  return dir;
}

// Every number of two metrics.json documents, with the fields that name the input, its storage
// order, the time or the stored protocol file left out. Numbers agree to 1e-9 (relative): the slice spacing of a reformat
// comes from other positions and differs in the last bits.
void expect_same_numbers(const nlohmann::json& a, const nlohmann::json& b, const std::string& at,
                         int& compared) {
  if (a.is_object()) {
    ASSERT_TRUE(b.is_object()) << at;
    for (const auto& [key, value] : a.items()) {
      // protocol.file / toml: recorded only when outputs are written (the reference's are).
      if (key == "timing_s" || key == "analyzed_at" || key == "input" || key == "file" ||
          key == "toml") {
        continue;
      }
      ASSERT_TRUE(b.contains(key)) << at << "/" << key;
      expect_same_numbers(value, b.at(key), at + "/" + key, compared);
    }
    EXPECT_EQ(a.size(), b.size()) << at;
  } else if (a.is_array()) {
    ASSERT_TRUE(b.is_array()) << at;
    ASSERT_EQ(a.size(), b.size()) << at;
    for (std::size_t i = 0; i < a.size(); ++i) {
      expect_same_numbers(a[i], b[i], at + "/" + std::to_string(i), compared);
    }
  } else if (a.is_number()) {
    ASSERT_TRUE(b.is_number()) << at;
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_NEAR(x, y, 1e-9 * std::max(1.0, std::abs(x))) << at;
    ++compared;
  } else {
    EXPECT_EQ(a, b) << at;
  }
}

void expect_same_histograms(const Analysis& a, const Analysis& b, const std::string& name) {
  ASSERT_EQ(a.regions.size(), b.regions.size());
  for (std::size_t r = 0; r < a.regions.size(); ++r) {
    EXPECT_EQ(a.regions[r].histograms.lung.counts, b.regions[r].histograms.lung.counts)
        << name << " " << a.regions[r].name;
    EXPECT_EQ(a.regions[r].histograms.suppressed.counts, b.regions[r].histograms.suppressed.counts)
        << name << " " << a.regions[r].name;
  }
}

// A label map on any grid against the reference's canonical label map, voxel by voxel through
// physical positions (the reference grid has identity direction).
std::size_t mismatches(const LabelImage& stored, const LabelImage& ref) {
  const Geometry& g = stored.geom;
  const Geometry& r = ref.geom;
  std::size_t bad = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const auto p = g.to_physical(double(i), double(j), double(k));
        std::size_t idx[3];
        for (int c = 0; c < 3; ++c) {
          const long v = std::lround((p[c] - r.origin[c]) / r.spacing[c]);
          if (v < 0 || v >= long(r.size[c])) return std::size_t(-1);
          idx[c] = std::size_t(v);
        }
        bad += stored.at(i, j, k) != ref.at(idx[0], idx[1], idx[2]);
      }
  return bad;
}

struct Reference {
  Analysis analysis;
  nlohmann::json metrics;
  std::string out;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    const std::string dicom = write_series(the_phantom().ct, "LPS");
    r.out = test::temp_dir("orient_ref_out");
    r.analysis = analyze(options_for(dicom, r.out));
    r.metrics = metrics_json(r.analysis);
    return r;
  }();
  return ref;
}

TEST(OrientationPipeline, ReferenceHasLungsAndLesions) {
  const Reference& ref = reference();
  const auto& lungs = ref.metrics.at("regions").at("lungs");
  // The numbers the 48 orders must reproduce are not trivial ones.
  EXPECT_GT(lungs.at("volume_ml").get<double>(), 3000);
  EXPECT_GT(lungs.at("ggo_ml").get<double>(), 20);
  EXPECT_GT(lungs.at("solid_ml").get<double>(), 5);
  EXPECT_EQ(ref.metrics.at("input").at("orientation"), "axial (index axes L, P, S)");
  EXPECT_FALSE(ref.metrics.at("input").at("reoriented").get<bool>());
  EXPECT_TRUE(ref.metrics.at("coverage").at("complete").get<bool>());
}

TEST(OrientationPipeline, AllFortyEightStorageOrdersGiveIdenticalNumbers) {
  const Reference& ref = reference();
  int orders = 0, reoriented = 0;
  for (const auto& p : test::all_signed_permutations()) {
    const CtImage stored = test::stored_as(the_phantom().ct, p);
    const std::string dicom = write_series(stored, p.name());
    Analysis a = analyze(options_for(dicom, ""));
    int compared = 0;
    expect_same_numbers(ref.metrics, metrics_json(a), p.name(), compared);
    EXPECT_GT(compared, 300) << p.name();
    expect_same_histograms(ref.analysis, a, p.name());
    // The grid the pipeline worked on is the reference's, voxel for voxel.
    EXPECT_EQ(a.input.image.data, ref.analysis.input.image.data) << p.name();
    EXPECT_EQ(a.lungs.lungs.data, ref.analysis.lungs.lungs.data) << p.name();
    EXPECT_EQ(a.lesions.lesions.data, ref.analysis.lesions.lesions.data) << p.name();
    // What is recorded about the input is the series as stored.
    const auto m = metrics_json(a);
    EXPECT_EQ(m.at("input").at("size")[2].get<std::size_t>(), a.original_geometry.size[2]);
    EXPECT_EQ(a.original_geometry.size[2], stored.geom.size[2]) << p.name();
    reoriented += m.at("input").at("reoriented").get<bool>();
    ++orders;
  }
  EXPECT_EQ(orders, 48);
  // Half of the 48 orders are mirror images of a DICOM grid; the reader orders their slices
  // along row x column, so 24 distinct grids arrive, all but the axial LPS one reoriented.
  EXPECT_GE(reoriented, 46);
}

// Outputs of three reformats: label maps and SEG on the series' own grid, QC images identical.
TEST(OrientationPipeline, OutputsOfReformatsLieOnTheirOwnGrid) {
  const Reference& ref = reference();
  const LabelImage& ref_lungs = ref.analysis.lungs.lungs;
  const LabelImage& ref_lesions = ref.analysis.lesions.lesions;
  // The comparison itself: zero against itself, many against another map.
  ASSERT_EQ(mismatches(ref_lungs, ref_lungs), 0u);
  ASSERT_GT(mismatches(ref_lesions, ref_lungs), 1000u);
  for (const char* name : {"LIP", "PIR", "PLI"}) {  // coronal, sagittal, axial rows along y
    test::SignedPermutation p;
    for (const auto& q : test::all_signed_permutations()) {
      if (q.name() == name) p = q;
    }
    ASSERT_EQ(p.name(), name);
    const CtImage stored = test::stored_as(the_phantom().ct, p);
    const std::string dicom = write_series(stored, p.name());
    const std::string out = test::temp_dir(std::string("orient_out_") + name);
    Analysis a = analyze(options_for(dicom, out));
    const auto m = nlohmann::json::parse(read_text_file(out + "/metrics.json"));
    EXPECT_TRUE(m.at("input").at("reoriented").get<bool>()) << name;
    EXPECT_EQ(m.at("input").at("orientation").get<std::string>().rfind(
                  std::string(name) == "LIP" ? "coronal" : std::string(name) == "PIR" ? "sagittal" : "axial", 0),
              0u)
        << m.at("input").at("orientation");

    // Label maps: the series' grid (size, direction), same voxels at the same positions.
    const LabelImage lungs = io::read_label_image(out + "/lungs.nii.gz");
    const LabelImage lesions = io::read_label_image(out + "/lesions.nii.gz");
    EXPECT_TRUE(lungs.geom.same_grid(a.original_geometry, 1e-3)) << name;
    EXPECT_EQ(lungs.geom.size, stored.geom.size) << name;
    EXPECT_EQ(mismatches(lungs, ref_lungs), 0u) << name;
    EXPECT_EQ(mismatches(lesions, ref_lesions), 0u) << name;

    // DICOM SEG: frames on the series' own slices, the same voxels.
    ASSERT_TRUE(fs::exists(out + "/seg.dcm")) << name << ": " << m.at("input").at("warnings");
    ASSERT_TRUE(fs::exists(out + "/sr.dcm")) << name;
    const dicomout::SegReadResult seg = dicomout::read_dicom_seg(out + "/seg.dcm", a.original_geometry);
    EXPECT_EQ(seg.lungs.data, lungs.data) << name;
    EXPECT_EQ(seg.lesions.data, lesions.data) << name;

    // QC images are anatomical views: byte for byte those of the axial series.
    for (const char* png : {"qc_axial.png", "qc_coronal.png", "qc_sagittal_right.png", "qc_sagittal_left.png",
                            "qc_axial_max_lesion.png"}) {
      EXPECT_EQ(read_text_file(out + "/" + png), read_text_file(ref.out + "/" + png))
          << name << " " << png;
    }
  }
}

}  // namespace
}  // namespace lungvol::pipeline
