// Issue #19 (items 1-8, 12, 13) and #16 (traceable): series damaged as *data*, not as files:
// reformatted, half-anonymised, merged, partly covered, with one odd slice. Each case runs the
// real `lungvol` binary on a mutated copy of the fault suite's phantom and asserts the exit
// status, the message (file and problem named) and the files left behind. On 3f3ab5f each of
// them gave exit 0 with a wrong number, a misleading message, or no flag.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcvrof.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "io/dicom_write.hpp"
#include "io/series.hpp"
#include "tests/faults/fault_support.hpp"
#include "tests/support/reorient.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {
namespace {

constexpr int kDicom = 4, kProtocol = 5;

std::string analyze(const std::string& input, const std::string& out, const std::string& extra = "") {
  return "analyze '" + input + "' -o '" + out + "' --no-qc --no-label-maps --no-dicom " + extra;
}

void expect_no_results(const std::string& out) {
  EXPECT_TRUE(list_files(out).empty()) << "files written for a refused input in " << out;
}

nlohmann::json metrics(const std::string& out) {
  return nlohmann::json::parse(read_file(out + "/metrics.json"));
}

double lungs_ml(const nlohmann::json& m) {
  return m.at("regions").at("lungs").at("volume_ml").get<double>();
}

void edit(const std::string& file, const std::function<void(DcmDataset&)>& f) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file.c_str()).good()) << file;
  ff.loadAllDataIntoMemory();  // the pixel data, before saveFile truncates the file
  f(*ff.getDataset());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good()) << file;
}

std::string new_uid() {
  char buf[100];
  return dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
}

// The intact phantom's metrics (reference for cases that must give the same numbers).
const nlohmann::json& intact_metrics() {
  static const nlohmann::json m = [] {
    const std::string out = test::temp_dir("series_intact_out");
    const Result r = lungvol(analyze(phantom_series("series_intact"), out));
    if (r.code != 0) throw std::runtime_error("intact phantom failed: " + r.output);
    return metrics(out);
  }();
  return m;
}

// ---------------------------------------------------------------------------------------------
// Item 1: non-axial series.

// The phantom as the reader assembles it, written in another axis order.
std::string reformatted(const std::string& tag, const std::string& axes) {
  const io::LoadedCt ct = io::load_ct(phantom_series(tag + "_src"));
  test::SignedPermutation p;
  for (const auto& q : test::all_signed_permutations()) {
    if (q.name() == axes) p = q;
  }
  EXPECT_EQ(p.name(), axes);
  const std::string dir = test::temp_dir("series_" + tag);
  io::CtSeriesMeta meta;
  meta.series_description = "reformat " + axes;
  io::write_ct_series(test::stored_as(ct.image, p), dir, meta);
  return dir;
}

TEST(SeriesFaults, CoronalSagittalAndTransposedSeriesGiveTheAxialNumbers) {
  const double truth = lungs_ml(intact_metrics());
  // On 3f3ab5f: coronal -29 %, sagittal lost its solid lesions, rows along y kept the airway.
  for (const char* axes : {"LIP", "PIR", "PLS"}) {
    SCOPED_TRACE(axes);
    const std::string dir = reformatted(std::string("reformat_") + axes, axes);
    const std::string out = test::temp_dir("series_out");
    const Result r = lungvol(analyze(dir, out));
    ASSERT_EQ(r.code, 0) << r.output;
    const auto m = metrics(out);
    EXPECT_NEAR(lungs_ml(m), truth, 1e-9 * truth);
    for (const char* region : {"right", "left", "upper", "lower"}) {
      EXPECT_NEAR(m.at("regions").at(region).at("volume_ml").get<double>(),
                  intact_metrics().at("regions").at(region).at("volume_ml").get<double>(), 1e-9 * truth)
          << region;
    }
    EXPECT_NEAR(m.at("segmentation").at("airway_ml").get<double>(),
                intact_metrics().at("segmentation").at("airway_ml").get<double>(), 1e-9);
    EXPECT_TRUE(m.at("input").at("reoriented").get<bool>());
  }
}

TEST(SeriesFaults, ObliqueSeriesIsRefusedNamingItsOrientation) {
  const io::LoadedCt ct = io::load_ct(phantom_series("oblique_src"));
  CtImage img = ct.image;
  const double t = 20 * M_PI / 180;  // rows and columns turned 20 degrees about the z axis
  img.geom.direction = {std::cos(t), -std::sin(t), 0, std::sin(t), std::cos(t), 0, 0, 0, 1};
  const std::string dir = test::temp_dir("series_oblique");
  io::write_ct_series(img, dir);
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "oblique (index axes 20.0 degrees from the patient axes")) << r.output;
  EXPECT_TRUE(contains(r.output, dir)) << r.output;
  expect_no_results(out);
}

// ---------------------------------------------------------------------------------------------
// Item 2: one slice with a bad rescale.

// The phantom stored unsigned with RescaleIntercept -1024 (a common vendor encoding).
std::string unsigned_phantom(const std::string& tag) {
  static std::once_flag once;
  static std::string master;
  std::call_once(once, [] {
    master = test::temp_dir("series_unsigned");
    const int rc = test::run_command("'" + test::lungvol_binary() + "' phantom -o '" + master +
                                         "' --size 64,64," + std::to_string(kPhantomSlices) +
                                         " --spacing 2.7,2.7,6.5 --seed 1 --unsigned-pixels",
                                     master + ".log");
    if (rc != 0) throw std::runtime_error("test setup: lungvol phantom --unsigned-pixels failed");
  });
  const std::string dir = test::temp_dir("series_" + tag) + "/dicom";
  fs::copy(master + "/dicom", dir, fs::copy_options::recursive);
  return dir;
}

TEST(SeriesFaults, UnsignedPhantomIsReadLikeTheSignedOne) {
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(unsigned_phantom("unsigned_intact"), out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NEAR(lungs_ml(metrics(out)), lungs_ml(intact_metrics()), 1e-9);
}

TEST(SeriesFaults, OneSliceWithABadRescaleIsRefusedNamingIt) {
  struct Case {
    const char* what;
    std::function<void(DcmDataset&)> damage;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"no rescale (unsigned storage)",
       [](DcmDataset& d) {
         d.findAndDeleteElement(DCM_RescaleSlope);
         d.findAndDeleteElement(DCM_RescaleIntercept);
       },
       "has no RescaleSlope / RescaleIntercept, unlike the rest of the series (slope 1, intercept "
       "-1024 in 23 of 24 slices)"},
      {"slope NaN", [](DcmDataset& d) { d.putAndInsertString(DCM_RescaleSlope, "NaN"); },
       "RescaleSlope nan"},
      {"slope 0", [](DcmDataset& d) { d.putAndInsertString(DCM_RescaleSlope, "0"); },
       "RescaleSlope 0 / RescaleIntercept -1024: the slope must be a positive finite number"},
      {"slope -1", [](DcmDataset& d) { d.putAndInsertString(DCM_RescaleSlope, "-1"); },
       "RescaleSlope -1"},
      {"intercept -1000", [](DcmDataset& d) { d.putAndInsertString(DCM_RescaleIntercept, "-1000"); },
       "RescaleSlope 1 / RescaleIntercept -1000 differ from the rest of the series (slope 1, "
       "intercept -1024 in 23 of 24 slices)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string dir = unsigned_phantom("rescale");
    const std::string victim = slice_files(dir)[12];  // mid-lung
    edit(victim, c.damage);
    const std::string out = test::temp_dir("series_out");
    const Result r = lungvol(analyze(dir, out));
    EXPECT_EQ(r.code, kDicom) << r.output;
    EXPECT_TRUE(contains(r.output, "'" + victim + "'")) << r.output;
    EXPECT_TRUE(contains(r.output, c.expect)) << r.output;
    expect_no_results(out);
  }
}

// ---------------------------------------------------------------------------------------------
// Item 3: the same SOPInstanceUID twice.

TEST(SeriesFaults, DuplicateInstanceWithOtherPixelsIsRefused) {
  const std::string dir = phantom_series("dup_pixels");
  const std::string genuine = slice_files(dir)[12];
  // A tampered copy that sorts before the genuine file (on 3f3ab5f it won, and the warning
  // called the genuine file the ignored copy).
  const std::string tampered = dir + "/A_copy_of_IM0013";
  fs::copy_file(genuine, tampered);
  edit(tampered, [](DcmDataset& d) {
    const Uint16* px = nullptr;
    unsigned long n = 0;
    ASSERT_TRUE(d.findAndGetUint16Array(DCM_PixelData, px, &n).good());
    std::vector<Uint16> changed(px, px + n);
    for (std::size_t i = 0; i < 100; ++i) changed[2000 + i] = static_cast<Uint16>(-1000);
    d.putAndInsertUint16Array(DCM_PixelData, changed.data(), n);
  });
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, genuine) && contains(r.output, tampered)) << r.output;
  EXPECT_TRUE(contains(r.output, "different pixel data")) << r.output;
  expect_no_results(out);
}

TEST(SeriesFaults, IdenticalCopyIsUsedOnceAndNamed) {
  const std::string dir = phantom_series("dup_same");
  const std::string genuine = slice_files(dir)[12];
  fs::copy_file(genuine, dir + "/copy_of_IM0013");
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto m = metrics(out);
  EXPECT_EQ(m.at("input").at("n_slices").get<int>(), kPhantomSlices);
  EXPECT_NEAR(lungs_ml(m), lungs_ml(intact_metrics()), 1e-9);
  EXPECT_TRUE(contains(m.at("input").at("warnings").dump(),
                       "copy_of_IM0013' is an identical copy of '" + genuine))
      << m.at("input").at("warnings");
}

TEST(SeriesFaults, SameInstanceUidAtTwoPositionsIsRefused) {
  const std::string dir = phantom_series("dup_uid");
  const auto files = slice_files(dir);
  const std::string uid = dicom_string(files[11], 0x0008, 0x0018);
  set_dicom_string(files[14], 0x0008, 0x0018, uid);
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "SOPInstanceUID " + uid + " appears at two positions")) << r.output;
  EXPECT_TRUE(contains(r.output, files[11]) && contains(r.output, files[14])) << r.output;
  expect_no_results(out);
}

// ---------------------------------------------------------------------------------------------
// Item 4: two patients, studies or frames of reference under one SeriesInstanceUID.

TEST(SeriesFaults, TwoScansUnderOneSeriesUidAreRefused) {
  struct Case {
    unsigned group, element;
    const char* expect;
  };
  for (const Case& c : {Case{0x0010, 0x0020, "one SeriesInstanceUID holds 2 patients (PatientID '"},
                        Case{0x0020, 0x000d, "one SeriesInstanceUID holds 2 studies"},
                        Case{0x0020, 0x0052, "one SeriesInstanceUID holds 2 frames of reference"}}) {
    SCOPED_TRACE(c.expect);
    const std::string dir = phantom_series("two_scans");
    const auto files = slice_files(dir);
    const std::string other = c.group == 0x0010 ? std::string("OTHER-PATIENT") : new_uid();
    for (std::size_t k = 1; k < files.size(); k += 2) set_dicom_string(files[k], c.group, c.element, other);
    const std::string out = test::temp_dir("series_out");
    const Result r = lungvol(analyze(dir, out));
    EXPECT_EQ(r.code, kDicom) << r.output;
    EXPECT_TRUE(contains(r.output, c.expect)) << r.output;
    EXPECT_TRUE(contains(r.output, "12 file(s)")) << r.output;
    expect_no_results(out);
  }
}

// ---------------------------------------------------------------------------------------------
// Item 5: partial coverage.

TEST(SeriesFaults, LungsCutByTheLastSliceAreFlagged) {
  const auto& full = intact_metrics();
  EXPECT_TRUE(full.at("coverage").at("complete").get<bool>());
  EXPECT_DOUBLE_EQ(full.at("coverage").at("boundary_fraction").get<double>(), 0.0);
  const std::string dir = phantom_series("half_lungs");
  const auto files = slice_files(dir);
  for (std::size_t k = 14; k < files.size(); ++k) fs::remove(files[k]);  // the upper part gone
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto m = metrics(out);
  const auto& cov = m.at("coverage");
  EXPECT_FALSE(cov.at("complete").get<bool>());
  EXPECT_EQ(cov.at("cut_by"), nlohmann::json::array({"superior"}));
  const double fraction = cov.at("boundary_fraction").get<double>();
  EXPECT_GT(fraction, 0.05);
  EXPECT_LT(fraction, 0.5);
  EXPECT_GT(cov.at("boundary_mm2").at("superior").get<double>(), 1000.0);
  EXPECT_EQ(cov.at("right").at("cut_by"), nlohmann::json::array({"superior"}));
  EXPECT_EQ(cov.at("left").at("cut_by"), nlohmann::json::array({"superior"}));
  EXPECT_LT(lungs_ml(m), 0.9 * lungs_ml(full));
  EXPECT_TRUE(contains(m.at("input").at("warnings").dump(),
                       "coverage: the lungs are cut by the superior boundary of the volume"))
      << m.at("input").at("warnings");
}

// ---------------------------------------------------------------------------------------------
// Items 6 and 12: pixel module and pixel data that disagree; sizes claimed before data.

TEST(SeriesFaults, PixelBufferLargerThanRowsTimesColumnsIsRefused) {
  const std::string dir = phantom_series("rows");
  for (const auto& f : slice_files(dir)) {
    edit(f, [](DcmDataset& d) { d.putAndInsertUint16(DCM_Rows, 63); });  // 64 rows of data
  }
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "IM0001'")) << r.output;
  EXPECT_TRUE(contains(r.output, "the pixel data holds 8192 bytes, but Rows x Columns x "
                                 "NumberOfFrames x BitsAllocated/8 = 63 x 64 x 1 x 2 = 8064 bytes"))
      << r.output;
  expect_no_results(out);
}

TEST(SeriesFaults, HighBitDisagreeingWithBitsStoredIsRefused) {
  const std::string dir = phantom_series("highbit");
  for (const auto& f : slice_files(dir)) {
    edit(f, [](DcmDataset& d) {
      d.putAndInsertUint16(DCM_BitsStored, 12);
      d.putAndInsertUint16(DCM_HighBit, 15);
    });
  }
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "HighBit 15 with BitsStored 12")) << r.output;
  EXPECT_TRUE(contains(r.output, "IM00")) << r.output;
  expect_no_results(out);
}

// Peak memory of a command, from GNU time (KiB).
long peak_kib(const std::string& log) {
  const std::string text = read_file(log);
  const auto at = text.rfind("PEAK_KIB ");
  return at == std::string::npos ? -1 : std::stol(text.substr(at + 9));
}

TEST(SeriesFaults, ClaimedSizesAreCheckedBeforeAnyAllocation) {
  if (test::run_command("command -v /usr/bin/time") != 0) GTEST_SKIP() << "no /usr/bin/time";
  struct Case {
    const char* what;
    std::function<void(DcmDataset&)> claim;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"2048 x 2048",
       [](DcmDataset& d) {
         d.putAndInsertUint16(DCM_Rows, 2048);
         d.putAndInsertUint16(DCM_Columns, 2048);
       },
       "= 2048 x 2048 x 1 x 2 = 8388608 bytes"},
      {"65535 x 65535",
       [](DcmDataset& d) {
         d.putAndInsertUint16(DCM_Rows, 65535);
         d.putAndInsertUint16(DCM_Columns, 65535);
       },
       "= 65535 x 65535 x 1 x 2 = 8589672450 bytes"},
      {"3000 frames", [](DcmDataset& d) { d.putAndInsertString(DCM_NumberOfFrames, "3000"); },
       "= 64 x 64 x 3000 x 2 = 24576000 bytes"},
  };
  // The baseline: the same command on the same slice with its true size (refused as a single
  // slice after its pixel data was read). Sanitizer builds and allocators move the absolute
  // figure (165 MB under ASan against 150 MB planned); the claim must add nothing to it.
  const auto peak_of = [&](const std::string& file, const std::string& log) {
    const std::string out = test::temp_dir("series_out");
    const int code = test::run_command("/usr/bin/time -f 'PEAK_KIB %M' '" + test::lungvol_binary() +
                                           "' --threads 1 " + analyze(file, out),
                                       log);
    expect_no_results(out);
    return code;
  };
  long baseline = 0;
  {
    const std::string dir = test::temp_dir("series_claim_base");
    fs::copy_file(slice_files(phantom_series("claim_src"))[12], dir + "/IM0001");
    const std::string log = dir + ".log";
    peak_of(dir + "/IM0001", log);
    baseline = peak_kib(log);
    ASSERT_GT(baseline, 0) << read_file(log);
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string dir = test::temp_dir("series_claim");
    const std::string file = dir + "/IM0001";
    fs::copy_file(slice_files(phantom_series("claim_src"))[12], file);
    edit(file, c.claim);
    const std::string log = dir + ".log";
    const int code = peak_of(file, log);
    EXPECT_EQ(code, kDicom) << read_file(log);
    EXPECT_TRUE(contains(read_file(log), "'" + file + "': the pixel data holds 8192 bytes")) << read_file(log);
    EXPECT_TRUE(contains(read_file(log), c.expect)) << read_file(log);
    // Nothing of the claim allocated: the smallest (8 MB as int16, 16 MB as float) would show.
    EXPECT_LT(peak_kib(log), baseline + 6 * 1024) << "baseline " << baseline << " KiB\n" << read_file(log);
  }
}

TEST(SeriesFaults, NumberOfFramesDisagreeingWithTheFramesOfDataIsRefused) {
  // Enhanced CT of the phantom: 24 frames of pixel data, NumberOfFrames 23.
  const io::LoadedCt ct = io::load_ct(phantom_series("enhanced_frames_src"));
  const std::string dir = test::temp_dir("series_enhanced_frames");
  write_enhanced_ct(ct.image, dir + "/ECT.dcm", kPhantomSlices - 1);
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, dir + "/ECT.dcm")) << r.output;
  EXPECT_TRUE(contains(r.output, "the pixel data holds 196608 bytes, but Rows x Columns x "
                                 "NumberOfFrames x BitsAllocated/8 = 64 x 64 x 23 x 2"))
      << r.output;
  expect_no_results(out);
}

TEST(SeriesFaults, ZeroTailAfterThePixelDataIsNotParsed) {
  const std::string dir = phantom_series("zero_tail");
  const std::string victim = slice_files(dir)[12];
  {
    std::ofstream tail(victim, std::ios::binary | std::ios::app);
    const std::string zeros(1 << 20, '\0');
    for (int mb = 0; mb < 200; ++mb) tail << zeros;  // 200 MB: 28 s of parsing on 3f3ab5f
  }
  const std::string out = test::temp_dir("series_out");
  const auto t0 = std::chrono::steady_clock::now();
  const Result r = lungvol(analyze(dir, out));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::remove(victim);  // 200 MB less in the temporary folder
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NEAR(lungs_ml(metrics(out)), lungs_ml(intact_metrics()), 1e-9);
  EXPECT_LT(s, 15.0) << "the zero tail was parsed";
  std::printf("[ figures ] analyze with a 200 MB zero tail: %.2f s\n", s);
}

// ---------------------------------------------------------------------------------------------
// Item 13, DICOM parts.

TEST(SeriesFaults, GzippedSliceIsNamedAndRefused) {
  const std::string dir = phantom_series("gzip");
  const std::string victim = slice_files(dir).back();  // the end slice: no gap would show it
  {
    const std::string bytes = read_file(victim);
    gzFile gz = gzopen((victim + ".gz").c_str(), "wb");
    ASSERT_TRUE(gz);
    gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(gz);
    fs::remove(victim);
  }
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, victim + ".gz (gzip-compressed DICOM file")) << r.output;
  expect_no_results(out);
  const Result inspect = lungvol("inspect '" + dir + "'");
  EXPECT_TRUE(contains(inspect.output, "gzip-compressed DICOM file")) << inspect.output;
}

TEST(SeriesFaults, FloatPixelDataIsNamedUnsupported) {
  const std::string dir = test::temp_dir("series_float");
  const std::string file = dir + "/IM0001";
  fs::copy_file(slice_files(phantom_series("float_src"))[12], file);
  edit(file, [](DcmDataset& d) {
    d.findAndDeleteElement(DCM_PixelData);
    std::vector<Float32> px(64 * 64, -1000.0f);
    auto* e = new DcmOtherFloat(DcmTag(DCM_FloatPixelData, EVR_OF));
    e->putFloat32Array(px.data(), px.size());
    d.insert(e, true);
  });
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(file, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, file)) << r.output;
  EXPECT_TRUE(contains(r.output, "FloatPixelData (floating-point pixels) is unsupported")) << r.output;
  expect_no_results(out);
}

// One tilt tolerance: a 0.05 degree tilt, read as a regular volume, also gets its SEG and SR.
TEST(SeriesFaults, TiltWithinTheReadersToleranceKeepsSegAndSr) {
  const std::string dir = phantom_series("tilt");
  const auto files = slice_files(dir);
  const double shift_per_mm = std::tan(0.05 * M_PI / 180);
  for (std::size_t k = 0; k < files.size(); ++k) {
    edit(files[k], [&](DcmDataset& d) {
      Float64 x = 0, y = 0, z = 0;
      d.findAndGetFloat64(DCM_ImagePositionPatient, x, 0);
      d.findAndGetFloat64(DCM_ImagePositionPatient, y, 1);
      d.findAndGetFloat64(DCM_ImagePositionPatient, z, 2);
      y += shift_per_mm * double(k) * kPhantomSliceSpacingMm;
      char ipp[128];
      std::snprintf(ipp, sizeof ipp, "%.6f\\%.6f\\%.6f", x, y, z);
      d.putAndInsertString(DCM_ImagePositionPatient, ipp);
    });
  }
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol("analyze '" + dir + "' -o '" + out + "' --no-qc --no-label-maps");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out + "/seg.dcm")) << r.output;
  EXPECT_TRUE(fs::exists(out + "/sr.dcm")) << r.output;
  EXPECT_FALSE(contains(r.output, "SEG/SR not written")) << r.output;
}

TEST(SeriesFaults, EnhancedCtGetsSegAndSrOrSaysWhy) {
  const io::LoadedCt ct = io::load_ct(phantom_series("enhanced_src"));
  const std::string dir = test::temp_dir("series_enhanced");
  write_enhanced_ct(ct.image, dir + "/ECT.dcm", kPhantomSlices);
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol("analyze '" + dir + "' -o '" + out + "' --no-qc --no-label-maps");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NEAR(lungs_ml(metrics(out)), lungs_ml(intact_metrics()), 1e-9);
  EXPECT_FALSE(contains(r.output, "Illegal call")) << r.output;
  EXPECT_TRUE(fs::exists(out + "/seg.dcm")) << r.output;
  EXPECT_TRUE(fs::exists(out + "/sr.dcm")) << r.output;
}

// ---------------------------------------------------------------------------------------------
// Issue #16, traceable: the input hash is the content's; NIfTI input makes no DICOM attempt.

TEST(SeriesFaults, RenamedFilesKeepTheInputHash) {
  const std::string a = phantom_series("hash_a");
  const std::string b = phantom_series("hash_b");
  const auto files = slice_files(b);
  fs::create_directories(b + "/sub");
  for (std::size_t k = 0; k < files.size(); ++k) {  // reversed names, half in a subfolder
    fs::rename(files[k], b + (k % 2 ? "/sub/" : "/") + "slice_" + std::to_string(1000 - k) + ".dcm");
  }
  const std::string out_a = test::temp_dir("series_out"), out_b = test::temp_dir("series_out");
  ASSERT_EQ(lungvol(analyze(a, out_a)).code, 0);
  ASSERT_EQ(lungvol(analyze(b, out_b)).code, 0);
  const std::string ha = metrics(out_a).at("input").at("sha256"), hb = metrics(out_b).at("input").at("sha256");
  EXPECT_EQ(ha.size(), 64u);
  EXPECT_EQ(ha, hb);
  // Different content, different hash: one slice's pixels changed.
  edit(slice_files(a)[3], [](DcmDataset& d) { d.putAndInsertString(DCM_InstanceNumber, "99"); });
  ASSERT_EQ(lungvol(analyze(a, out_a)).code, 0);
  EXPECT_NE(metrics(out_a).at("input").at("sha256").get<std::string>(), ha);
}

TEST(SeriesFaults, NiftiInputWritesNoDicomAndNoDcmtkLines) {
  const std::string dir = test::temp_dir("series_nifti");
  ASSERT_EQ(lungvol("convert '" + phantom_series("nifti_src") + "' -o '" + dir + "/ct.nii.gz'").code, 0);
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol("analyze '" + dir + "/ct.nii.gz' -o '" + out + "' --no-qc");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(out + "/seg.dcm"));
  EXPECT_FALSE(contains(r.output, "SEG/SR")) << r.output;
  EXPECT_FALSE(contains(read_file(out + "/metrics.json"), "SEG/SR"));
  // DCMTK's own log lines ("E: ...", "W: ...") never appear among lungvol's.
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_FALSE(line.rfind("E: ", 0) == 0 || line.rfind("W: ", 0) == 0 || line.rfind("I: ", 0) == 0 ||
                 line.rfind("F: ", 0) == 0)
        << line;
  }
  // NIfTI stores the spacing as float: the voxel volume differs in the 8th digit.
  EXPECT_NEAR(lungs_ml(metrics(out)), lungs_ml(intact_metrics()), 1e-6 * lungs_ml(intact_metrics()));
}

// ---------------------------------------------------------------------------------------------
// Item 8 through the CLI: a protocol missing a key is exit 5 naming it, not a silent default.

TEST(SeriesFaults, ProtocolWithoutMinLesionSizeIsExit5) {
  std::string toml = read_file(test::source_dir() + "/protocols/covid-ggo-solid.toml");
  const auto at = toml.find("min_lesion_mm3 = 20.0");
  ASSERT_NE(at, std::string::npos);
  toml.erase(at, toml.find('\n', at) - at);
  const std::string dir = test::temp_dir("series_protocol");
  write_file(dir + "/site.toml", toml);
  const std::string out = test::temp_dir("series_out");
  const Result r = lungvol(analyze(phantom_series("protocol"), out, "--protocol '" + dir + "/site.toml'"));
  EXPECT_EQ(r.code, kProtocol) << r.output;
  EXPECT_TRUE(contains(r.output, dir + "/site.toml")) << r.output;
  EXPECT_TRUE(contains(r.output, "missing key 'lesion.min_lesion_mm3'")) << r.output;
  expect_no_results(out);
}

}  // namespace
}  // namespace lungvol::faults
