// Synthetic series written with write_ct_series, then tampered with the way real archives are.
// Voxel values are an analytic function of the physical position, so every assertion compares
// against arithmetic, not against the reader's own output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include "core/error.hpp"
#include "io/dicom_write.hpp"
#include "io/series.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::io {
namespace {

// HU linear in the physical position (so linear interpolation in z is exact).
std::int16_t hu_at(const std::array<double, 3>& p) {
  return static_cast<std::int16_t>(std::lround(-600 + 3 * p[0] - 2 * p[1] + 4 * p[2]));
}

CtImage make_volume(std::size_t nz = 12, std::array<double, 9> dir = {1, 0, 0, 0, 1, 0, 0, 0, 1},
                    std::size_t nx = 16, std::size_t ny = 12) {
  Geometry g;
  g.size = {nx, ny, nz};
  g.spacing = {0.75, 0.75, 2.5};
  g.origin = {-6.0, -4.5, -10.0};
  g.direction = dir;
  CtImage img(g);
  for (std::size_t k = 0; k < nz; ++k)
    for (std::size_t j = 0; j < ny; ++j)
      for (std::size_t i = 0; i < nx; ++i)
        img.at(i, j, k) = hu_at(g.to_physical(double(i), double(j), double(k)));
  return img;
}

// Every voxel of `ct` holds the analytic value of its own physical position.
void expect_analytic(const CtImage& ct, int tol = 0) {
  const Geometry& g = ct.geom;
  int worst = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        worst = std::max(worst, std::abs(ct.at(i, j, k) -
                                         hu_at(g.to_physical(double(i), double(j), double(k)))));
  EXPECT_LE(worst, tol);
}

void edit(const std::string& file, const std::function<void(DcmDataset&)>& f) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  f(*ff.getDataset());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good()) << file;
}

std::string error_of(const std::string& path, const ReadOptions& opt = {}) {
  try {
    load_ct(path, opt);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kDicom) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a refusal for " << path;
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(DicomGeometry, WriteThenReadIsExact) {
  const std::string dir = test::temp_dir("geo_exact");
  const CtImage img = make_volume();
  CtSeriesMeta meta;
  meta.series_description = "synthetic";
  meta.kernel = "B70f";
  const auto files = write_ct_series(img, dir, meta);
  ASSERT_EQ(files.size(), 12u);
  EXPECT_EQ(fs::path(files[0]).filename(), "IM0001");
  const LoadedCt ct = load_ct(dir);
  EXPECT_TRUE(ct.image.geom.same_grid(img.geom, 1e-4));
  EXPECT_EQ(ct.image.data, img.data);
  EXPECT_EQ(ct.series.description, "synthetic");
  EXPECT_EQ(ct.series.kernel, "B70f");
  EXPECT_EQ(ct.series.modality, "CT");
  EXPECT_TRUE(ct.series.axial);
  EXPECT_TRUE(ct.series.original);
}

TEST(DicomGeometry, UnsignedEncodingIsReadExactly) {
  const std::string dir = test::temp_dir("geo_unsigned");
  const CtImage img = make_volume();
  CtSeriesMeta meta;
  meta.unsigned_pixels = true;  // stored = HU + 1024, RescaleIntercept -1024
  write_ct_series(img, dir, meta);
  EXPECT_EQ(load_ct(dir).image.data, img.data);
}

// Issue #19 item 2: a slice whose rescale differs from the rest of its series is refused,
// naming it, even when its own encoding would give the same HU: lungvol cannot tell a second
// legitimate encoding from a wrong rescale (a missing intercept read HU 1024 too high and cut a
// lung in two on 3f3ab5f).
TEST(DicomGeometry, MixedRescaleInOneSeriesIsRefusedNamingTheOddSlices) {
  const std::string a = test::temp_dir("geo_signed"), b = test::temp_dir("geo_unsigned");
  const CtImage img = make_volume();
  CtSeriesMeta meta;
  meta.study_uid = generate_dicom_uid();
  meta.series_uid = generate_dicom_uid();
  meta.frame_of_reference_uid = generate_dicom_uid();
  write_ct_series(img, a, meta);
  meta.unsigned_pixels = true;
  write_ct_series(img, b, meta);
  for (int k : {5, 9}) {
    char name[16];
    std::snprintf(name, sizeof name, "/IM%04d", k);
    fs::copy_file(b + name, a + name, fs::copy_options::overwrite_existing);
  }
  const std::string msg = error_of(a);
  EXPECT_TRUE(contains(msg, "IM0005', '" + a + "/IM0009': RescaleSlope 1 / RescaleIntercept -1024 "
                            "differ from the rest of the series (slope 1, intercept 0 in 10 of 12 "
                            "slices)"))
      << msg;
}

TEST(DicomGeometry, ShuffledFileNamesDoNotMatter) {
  const std::string dir = test::temp_dir("geo_shuffle");
  const CtImage img = make_volume();
  const auto files = write_ct_series(img, dir);
  fs::create_directories(dir + "/sub/deeper");
  // Names sort in a scrambled order; some files move into subfolders.
  const int perm[12] = {7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4};
  for (std::size_t k = 0; k < files.size(); ++k) {
    const std::string target = (k % 3 == 0 ? dir + "/sub/deeper/" : k % 3 == 1 ? dir + "/sub/" : dir + "/") +
                               "x" + std::to_string(perm[k]);
    fs::rename(files[k], target);
  }
  const LoadedCt ct = load_ct(dir);
  EXPECT_TRUE(ct.image.geom.same_grid(img.geom, 1e-4));
  EXPECT_EQ(ct.image.data, img.data);
}

TEST(DicomGeometry, InstanceNumbersAreIgnored) {
  const std::string dir = test::temp_dir("geo_instance");
  const CtImage img = make_volume();
  const auto files = write_ct_series(img, dir);
  for (std::size_t k = 0; k < files.size(); ++k) {
    edit(files[k], [&](DcmDataset& d) {
      d.putAndInsertString(DCM_InstanceNumber, std::to_string(100 - 7 * ((k * 5) % 12)).c_str());
    });
  }
  EXPECT_EQ(load_ct(dir).image.data, img.data);
}

// Slices written cranial-first (k along -z, like POPI): the reader orders them along the
// normal, so the volume is flipped in k but every voxel keeps its physical position.
TEST(DicomGeometry, ReversedSliceOrderKeepsPhysicalPositions) {
  const std::string dir = test::temp_dir("geo_reversed");
  const CtImage img = make_volume(12, {1, 0, 0, 0, 1, 0, 0, 0, -1});
  write_ct_series(img, dir);
  const LoadedCt ct = load_ct(dir);
  const Geometry& g = ct.image.geom;
  EXPECT_NEAR(g.direction[8], 1.0, 1e-9);
  EXPECT_NEAR(g.origin[2], -10.0 - 11 * 2.5, 1e-4);
  EXPECT_NEAR(g.spacing[2], 2.5, 1e-6);
  expect_analytic(ct.image);
  for (std::size_t k = 0; k < 12; ++k) EXPECT_EQ(ct.image.at(3, 4, k), img.at(3, 4, 11 - k));
}

// Axial with the other orientation sign: rows run right-to-left, columns posterior-to-anterior
// (IOP -1,0,0,0,-1,0); the normal is still +z.
TEST(DicomGeometry, AxialWithNegatedRowAndColumnDirections) {
  const std::string dir = test::temp_dir("geo_flipped");
  const CtImage img = make_volume(12, {-1, 0, 0, 0, -1, 0, 0, 0, 1});
  write_ct_series(img, dir);
  const LoadedCt ct = load_ct(dir);
  EXPECT_TRUE(ct.image.geom.same_grid(img.geom, 1e-4));
  EXPECT_EQ(ct.image.data, img.data);
  EXPECT_TRUE(ct.series.axial);
}

TEST(DicomGeometry, MissingSliceIsRefusedThenResampledOnRequest) {
  const std::string dir = test::temp_dir("geo_gap");
  const CtImage img = make_volume();
  const auto files = write_ct_series(img, dir);
  fs::remove(files[5]);
  const std::string msg = error_of(dir);
  EXPECT_TRUE(contains(msg, "non-uniform slice spacing")) << msg;
  EXPECT_TRUE(contains(msg, "5.000")) << msg;  // the 2 x 2.5 mm gap
  ReadOptions opt;
  opt.resample_nonuniform = true;
  const LoadedCt ct = load_ct(dir, opt);
  EXPECT_EQ(ct.image.geom.size[2], 12u);
  EXPECT_NEAR(ct.image.geom.spacing[2], 2.5, 1e-6);
  expect_analytic(ct.image, 1);  // the rebuilt slice is the mean of its neighbours (linear HU)
  EXPECT_TRUE(std::any_of(ct.warnings.begin(), ct.warnings.end(),
                          [](const std::string& w) { return contains(w, "resampled"); }));
}

TEST(DicomGeometry, DuplicatePositionIsRefusedButAnIdenticalCopyIsIgnored) {
  const std::string dir = test::temp_dir("geo_dup");
  const CtImage img = make_volume();
  const auto files = write_ct_series(img, dir);
  fs::copy_file(files[4], dir + "/copy_of_5");
  const LoadedCt ok = load_ct(dir);  // same SOPInstanceUID: the same object stored twice
  EXPECT_EQ(ok.image.data, img.data);
  edit(dir + "/copy_of_5", [](DcmDataset& d) {
    d.putAndInsertString(DCM_SOPInstanceUID, generate_dicom_uid().c_str());
  });
  const std::string msg = error_of(dir);
  EXPECT_TRUE(contains(msg, "duplicate slice position")) << msg;
  EXPECT_TRUE(contains(msg, "copy_of_5")) << msg;
}

TEST(DicomGeometry, GantryTiltIsRefused) {
  const std::string dir = test::temp_dir("geo_tilt");
  const CtImage img = make_volume();
  const auto files = write_ct_series(img, dir);
  // 15 degrees: each slice shifts tan(15 deg) * 2.5 mm along y.
  for (std::size_t k = 0; k < files.size(); ++k) {
    const auto p = img.geom.to_physical(0, 0, double(k));
    const double y = p[1] + std::tan(15 * M_PI / 180) * 2.5 * double(k);
    edit(files[k], [&](DcmDataset& d) {
      const std::string ipp = std::to_string(p[0]) + "\\" + std::to_string(y) + "\\" + std::to_string(p[2]);
      d.putAndInsertString(DCM_ImagePositionPatient, ipp.c_str());
    });
  }
  const std::string msg = error_of(dir);
  EXPECT_TRUE(contains(msg, "sheared")) << msg;
  EXPECT_TRUE(contains(msg, "15.00 deg")) << msg;
}

TEST(DicomGeometry, MixedRowsAndColumnsAreRefused) {
  const std::string dir = test::temp_dir("geo_mixed");
  CtSeriesMeta meta;
  meta.series_uid = generate_dicom_uid();
  meta.frame_of_reference_uid = generate_dicom_uid();
  const CtImage img = make_volume();
  const auto files = write_ct_series(img, dir, meta);
  // Slice 6 replaced by a 8x6 slice at the same position, same series.
  CtImage small = make_volume(12, {1, 0, 0, 0, 1, 0, 0, 0, 1}, 8, 6);
  meta.file_prefix = "SMALL";
  const auto small_files = write_ct_series(small, dir + "/small", meta);
  fs::remove(files[5]);
  fs::rename(small_files[5], files[5]);
  fs::remove_all(dir + "/small");
  const std::string msg = error_of(dir);
  EXPECT_TRUE(contains(msg, "mixed slice geometry in one orientation: 16x12")) << msg;
  const Discovery d = discover_dicom(dir);
  ASSERT_EQ(d.series.size(), 2u);
  EXPECT_FALSE(d.series[0].usable());
  EXPECT_FALSE(d.series[1].usable());
}

TEST(DicomGeometry, LocalizerSecondaryCaptureAndJunkAreSkipped) {
  const std::string dir = test::temp_dir("geo_skip");
  const CtImage img = make_volume();
  write_ct_series(img, dir + "/axial");
  CtSeriesMeta scout;
  scout.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
  scout.file_prefix = "SCOUT";
  write_ct_series(make_volume(1, {1, 0, 0, 0, 0, -1, 0, 1, 0}), dir + "/scout", scout);
  CtSeriesMeta sc;
  sc.file_prefix = "SC";
  const auto sc_files = write_ct_series(make_volume(1), dir + "/sc", sc);
  edit(sc_files[0], [](DcmDataset& d) {
    d.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  });
  CtSeriesMeta mr;
  mr.modality = "MR";
  mr.file_prefix = "MR";
  write_ct_series(make_volume(2), dir + "/mr", mr);
  std::ofstream(dir + "/README.txt") << "not dicom";
  std::ofstream(dir + "/DICOMDIR") << std::string(300, 'x');

  const Discovery d = discover_dicom(dir);
  ASSERT_EQ(d.series.size(), 1u);
  EXPECT_EQ(d.series[0].n_slices, 12u);
  auto reason_of = [&](const std::string& name) {
    for (const auto& s : d.skipped) {
      if (contains(s.path, name)) return s.reason;
    }
    return std::string("(not skipped)");
  };
  EXPECT_TRUE(contains(reason_of("SCOUT0001"), "localizer")) << reason_of("SCOUT0001");
  EXPECT_TRUE(contains(reason_of("SC0001"), "secondary capture")) << reason_of("SC0001");
  EXPECT_TRUE(contains(reason_of("MR0001"), "MR")) << reason_of("MR0001");
  // 9 bytes: too short to be DICOM at all, and said so; 300 bytes without "DICM": not DICOM.
  EXPECT_EQ(reason_of("README.txt"),
            "not DICOM (9 bytes, shorter than a DICOM file's preamble: truncated copy?)");
  EXPECT_EQ(reason_of("DICOMDIR"), "not DICOM");
  EXPECT_EQ(load_ct(dir).image.data, img.data);
}

TEST(DicomGeometry, SeriesChoiceRuleAndExplicitSelection) {
  const std::string dir = test::temp_dir("geo_choice");
  const CtImage img = make_volume();
  CtSeriesMeta soft, lung, thick, coronal;
  soft.kernel = "B30f";
  soft.series_uid = "1.2.3.1";
  soft.file_prefix = "S";
  lung.kernel = "B70f";
  lung.series_uid = "1.2.3.2";
  lung.file_prefix = "L";
  thick.kernel = "LUNG";
  thick.series_uid = "1.2.3.3";
  thick.file_prefix = "T";
  coronal.series_uid = "1.2.3.4";
  coronal.file_prefix = "C";
  write_ct_series(img, dir, soft);
  write_ct_series(img, dir, lung);
  write_ct_series(make_volume(4), dir, thick);  // fewer slices
  write_ct_series(make_volume(20, {1, 0, 0, 0, 0, -1, 0, 1, 0}), dir, coronal);  // not axial

  const Discovery d = discover_dicom(dir);
  ASSERT_EQ(d.series.size(), 4u);
  std::string why;
  EXPECT_EQ(choose_series(d, "", &why).series_instance_uid, "1.2.3.2");
  EXPECT_TRUE(contains(why, "lung kernel")) << why;
  EXPECT_TRUE(contains(why, "axial")) << why;

  const LoadedCt auto_ct = load_ct(dir);
  EXPECT_EQ(auto_ct.series.series_instance_uid, "1.2.3.2");
  EXPECT_FALSE(auto_ct.selection_reason.empty());

  ReadOptions opt;
  opt.series_uid = "1.2.3.3";
  const LoadedCt chosen = load_ct(dir, opt);
  EXPECT_EQ(chosen.image.geom.size[2], 4u);
  EXPECT_TRUE(contains(chosen.selection_reason, "explicitly"));

  opt.series_uid = "9.9.9";
  const std::string msg = error_of(dir, opt);
  EXPECT_TRUE(contains(msg, "1.2.3.1") && contains(msg, "1.2.3.4")) << msg;
}

TEST(DicomGeometry, LungKernelNames) {
  for (const char* k : {"LUNG", "B60f", "B70f", "Br64", "I70f", "Bl57", "YA", "YB", "L", "FC51"}) {
    Discovery d;
    SeriesInfo a, b;
    a.series_instance_uid = "a";
    a.kernel = "B30f";
    b.series_instance_uid = "b";
    b.kernel = k;
    for (SeriesInfo* s : {&a, &b}) {
      s->axial = s->original = true;
      s->n_slices = 100;
      s->spacing_mm = {0.7, 0.7, 1.0};
    }
    d.series = {a, b};
    EXPECT_EQ(choose_series(d, "", nullptr).series_instance_uid, "b") << k;
  }
  for (const char* k : {"STANDARD", "B30f", "Br40", "SOFT", "FC08", "C"}) {
    Discovery d;
    SeriesInfo a, b;
    a.series_instance_uid = "a";
    a.kernel = k;
    b.series_instance_uid = "b";
    b.kernel = "LUNG";
    for (SeriesInfo* s : {&a, &b}) {
      s->axial = s->original = true;
      s->n_slices = 100;
      s->spacing_mm = {0.7, 0.7, 1.0};
    }
    d.series = {a, b};
    EXPECT_EQ(choose_series(d, "", nullptr).series_instance_uid, "b") << k;
  }
}

TEST(DicomGeometry, MissingPathAndEmptyFolder) {
  try {
    load_ct("/nonexistent/lungvol/dicom");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
  }
  const std::string dir = test::temp_dir("geo_empty");
  std::ofstream(dir + "/notes.txt") << "hello";
  const std::string msg = error_of(dir);
  EXPECT_TRUE(contains(msg, "no CT volume series")) << msg;
}

TEST(DicomGeometry, TruncatedSliceNamesTheFile) {
  const std::string dir = test::temp_dir("geo_trunc");
  const auto files = write_ct_series(make_volume(), dir);
  fs::resize_file(files[3], fs::file_size(files[3]) - 50);
  const std::string msg = error_of(dir);
  EXPECT_TRUE(contains(msg, "IM0004")) << msg;
}

}  // namespace
}  // namespace lungvol::io
