// Real DICOM from ../shared/data; expected values come from each folder's SOURCE.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

#include "core/error.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::io {
namespace {

const std::string kTs = "dicom-ct-transfer-syntaxes-cornerstone/";

std::pair<int, int> range(const CtImage& img) {
  const auto [lo, hi] = std::minmax_element(img.data.begin(), img.data.end());
  return {*lo, *hi};
}

int max_abs_diff(const CtImage& a, const CtImage& b) {
  EXPECT_EQ(a.size(), b.size());
  int worst = 0;
  for (std::size_t n = 0; n < std::min(a.size(), b.size()); ++n) {
    worst = std::max(worst, std::abs(int(a[n]) - int(b[n])));
  }
  return worst;
}

std::string expect_dicom_error(const std::string& path) {
  try {
    load_ct(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kDicom) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return {};
}

TEST(DicomData, PopiSeries) {
  LUNGVOL_REQUIRE_DATA("popi-4dct-phase00-itkelastix/dicom");
  const auto t0 = std::chrono::steady_clock::now();
  const LoadedCt ct = load_ct(test::shared_data("popi-4dct-phase00-itkelastix/dicom"));
  std::cout << "POPI load_ct (141 x 512 x 512, incl. sha256): "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  const Geometry& g = ct.image.geom;
  EXPECT_EQ(g.size[0], 512u);
  EXPECT_EQ(g.size[1], 512u);
  EXPECT_EQ(g.size[2], 141u);
  EXPECT_NEAR(g.spacing[0], 0.9765625, 1e-6);
  EXPECT_NEAR(g.spacing[1], 0.9765625, 1e-6);
  EXPECT_NEAR(g.spacing[2], 2.0, 1e-6);  // from positions; header says -2.0
  // Slices ascend along the normal (+z): z = -164.5 ... +115.5.
  EXPECT_NEAR(g.origin[2], -164.5, 1e-3);
  EXPECT_NEAR(g.to_physical(0, 0, 140)[2], 115.5, 1e-3);
  EXPECT_NEAR(g.direction[8], 1.0, 1e-9);
  const auto [lo, hi] = range(ct.image);
  EXPECT_EQ(lo, -1024);
  EXPECT_EQ(hi, 2976);
  const double mean =
      std::accumulate(ct.image.data.begin(), ct.image.data.end(), 0.0) / ct.image.size();
  EXPECT_NEAR(mean, -668, 1.0);
  EXPECT_EQ(ct.series.n_slices, 141u);
  EXPECT_FALSE(ct.sha256.empty());
}

TEST(DicomData, CipDicomEqualsNrrd) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64Dicom");
  const LoadedCt dcm = load_ct(test::shared_data("cip-chest-imaging-platform/ct-64Dicom"));
  const CtImage nrrd = read_ct_image(test::shared_data("cip-chest-imaging-platform/ct-64.nrrd"));
  ASSERT_EQ(dcm.image.geom.size, nrrd.geom.size);
  EXPECT_TRUE(dcm.image.geom.same_grid(nrrd.geom, 1e-2));
  EXPECT_EQ(max_abs_diff(dcm.image, nrrd), 0);
}

class LosslessSyntax : public ::testing::TestWithParam<std::string> {};

TEST_P(LosslessSyntax, EqualsUncompressedReference) {
  LUNGVOL_REQUIRE_DATA(kTs + GetParam());
  const LoadedCt ref = load_ct(test::shared_data(kTs + "CTImage.dcm"));
  const LoadedCt ct = load_ct(test::shared_data(kTs + GetParam()));
  EXPECT_EQ(range(ref.image), std::make_pair(-3024, 1378));
  EXPECT_EQ(max_abs_diff(ct.image, ref.image), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Cornerstone, LosslessSyntax,
    ::testing::Values("CTImage.dcm_BigEndianExplicitTransferSyntax_1.2.840.10008.1.2.2.dcm",
                      "CTImage.dcm_DeflatedExplicitVRLittleEndianTransferSyntax_1.2.840.10008.1.2.1.99.dcm",
                      "CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm",
                      "CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm",
                      "CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm",
                      "CTImage.dcm_JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57.dcm",
                      "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm",
                      "CTImage.dcm_LittleEndianImplicitTransferSyntax_1.2.840.10008.1.2.dcm",
                      "CTImage.dcm_RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm"));

struct Lossy {
  std::string file;
  int tolerance_hu;  // SOURCE.md's max abs diff (pydicom+GDCM), rounded up
};
class LossySyntax : public ::testing::TestWithParam<Lossy> {};

TEST_P(LossySyntax, CloseToUncompressedReference) {
  LUNGVOL_REQUIRE_DATA(kTs + GetParam().file);
  const LoadedCt ref = load_ct(test::shared_data(kTs + "CTImage.dcm"));
  const LoadedCt ct = load_ct(test::shared_data(kTs + GetParam().file));
  const int diff = max_abs_diff(ct.image, ref.image);
  EXPECT_LE(diff, GetParam().tolerance_hu);
  std::cout << GetParam().file << ": max abs diff " << diff << " HU\n";
}

INSTANTIATE_TEST_SUITE_P(
    Cornerstone, LossySyntax,
    ::testing::Values(Lossy{"CTImage.dcm_JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91.dcm", 5},
                      Lossy{"CTImage.dcm_JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81.dcm", 1},
                      Lossy{"CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm", 65},
                      Lossy{"CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm", 36},
                      Lossy{"CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm", 36},
                      Lossy{"CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm", 36}));

TEST(DicomData, WgCtJ2kRanges) {
  LUNGVOL_REQUIRE_DATA(kTs + "CT2_J2KR");
  // SOURCE.md: HU -3024..1254, where -3024 is CT1's PixelPaddingValue (stored -2000), which the
  // reader maps to air (-1024 HU) by its documented rule.
  const LoadedCt ct1 = load_ct(test::shared_data(kTs + "CT1_J2KR"));
  EXPECT_EQ(range(ct1.image), std::make_pair(-1024, 1254));
  EXPECT_TRUE(std::any_of(ct1.warnings.begin(), ct1.warnings.end(), [](const std::string& w) {
    return w.find("padding") != std::string::npos;
  }));
  EXPECT_EQ(range(load_ct(test::shared_data(kTs + "CT2_J2KR")).image), std::make_pair(-2048, 1433));
}

struct Expected {
  std::string file;
  int lo, hi;  // HU range from SOURCE.md (pydicom 2.3.1 + GDCM 3.0); where the minimum is the
               // file's PixelPaddingValue (693_*: -3024) the reader's rule maps it to -1024
};
class EdgeCaseFile : public ::testing::TestWithParam<Expected> {};

TEST_P(EdgeCaseFile, HuRangeMatchesSourceTable) {
  LUNGVOL_REQUIRE_DATA(GetParam().file);
  const LoadedCt ct = load_ct(test::shared_data(GetParam().file));
  EXPECT_EQ(range(ct.image), std::make_pair(GetParam().lo, GetParam().hi));
}

INSTANTIATE_TEST_SUITE_P(
    PydicomEdgeCases, EdgeCaseFile,
    ::testing::Values(Expected{"pydicom-ct-edgecases/pydicom/CT_small.dcm", -896, 1167},
                      Expected{"pydicom-ct-edgecases/pydicom-data/693_J2KR.dcm", -1024, 1468},
                      Expected{"pydicom-ct-edgecases/pydicom-data/693_UNCR.dcm", -1024, 1468},
                      Expected{"pydicom-ct-edgecases/pydicom-data/bad_sequence.dcm", -1011, 1243},
                      Expected{"pydicom-ct-edgecases/pylibjpeg-data/ELSCINT1_JP2vsJ2K.dcm", -1000, 3095},
                      Expected{"pydicom-ct-edgecases/pylibjpeg-data/J2K_pixelrep_mismatch.dcm", -2000, 1896},
                      Expected{"pydicom-ct-edgecases/pylibjpeg-data/TOSHIBA_J2K_OpenJPEGv2Regression.dcm", -2048, 1969},
                      Expected{"pydicom-ct-edgecases/pylibjpeg-data/TOSHIBA_J2K_SIZ0_PixRep1.dcm", -2048, 1717},
                      Expected{"pydicom-ct-edgecases/pylibjpeg-data/explicit_VR-UN.dcm", -1024, 1186},
                      Expected{"dicom-ct-transfer-syntaxes-cornerstone/CT2_J2KR", -2048, 1433}));

// SOURCE.md: SIZ1_PixRep0 is SIZ0_PixRep1's converse (header unsigned, codestream signed); a
// naive decode gives 0..65535. Read as signed with a warning, both give the same voxels.
TEST(DicomData, ToshibaSignednessMismatchIsRepaired) {
  LUNGVOL_REQUIRE_DATA("pydicom-ct-edgecases/pylibjpeg-data/TOSHIBA_J2K_SIZ1_PixRep0.dcm");
  const LoadedCt a = load_ct(test::shared_data("pydicom-ct-edgecases/pylibjpeg-data/TOSHIBA_J2K_SIZ1_PixRep0.dcm"));
  const LoadedCt b = load_ct(test::shared_data("pydicom-ct-edgecases/pylibjpeg-data/TOSHIBA_J2K_SIZ0_PixRep1.dcm"));
  EXPECT_EQ(max_abs_diff(a.image, b.image), 0);
  EXPECT_TRUE(std::any_of(a.warnings.begin(), a.warnings.end(), [](const std::string& w) {
    return w.find("signed") != std::string::npos;
  }));
}

TEST(DicomData, UncompressedEqualsJ2kLossless693) {
  LUNGVOL_REQUIRE_DATA("pydicom-ct-edgecases/pydicom-data/693_UNCR.dcm");
  const LoadedCt a = load_ct(test::shared_data("pydicom-ct-edgecases/pydicom-data/693_UNCR.dcm"));
  const LoadedCt b = load_ct(test::shared_data("pydicom-ct-edgecases/pydicom-data/693_J2KR.dcm"));
  EXPECT_EQ(max_abs_diff(a.image, b.image), 0);
}

// SOURCE.md: 2-frame JPEG Extended, fragmented, no Basic Offset Table, no rescale: HU = stored.
TEST(DicomData, FragmentedMultiFrameJpegWithoutOffsetTable) {
  LUNGVOL_REQUIRE_DATA(kTs + "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm");
  // SOURCE.md's 1010..2223 is the stored range read at top level; the file's Shared Functional
  // Groups (PixelValueTransformationSequence) hold RescaleIntercept -1024, so HU = stored - 1024.
  const std::string f = test::shared_data(kTs + "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm");
  const Discovery d = discover_dicom(f);
  ASSERT_EQ(d.series.size(), 1u);
  EXPECT_EQ(d.series[0].n_slices, 2u);
  try {
    const LoadedCt ct = load_ct(f);
    EXPECT_EQ(range(ct.image), std::make_pair(1010 - 1024, 2223 - 1024));
  } catch (const Error& e) {
    ADD_FAILURE() << e.what();
  }
}

TEST(DicomData, ScoutIsSkipped) {
  LUNGVOL_REQUIRE_DATA("pydicom-ct-edgecases/pylibjpeg-data/MAROTECH_CT_JP2Lossy.dcm");
  const Discovery d = discover_dicom(test::shared_data("pydicom-ct-edgecases/pylibjpeg-data/MAROTECH_CT_JP2Lossy.dcm"));
  EXPECT_TRUE(d.series.empty());
  ASSERT_EQ(d.skipped.size(), 1u);
  EXPECT_NE(d.skipped[0].reason.find("localizer"), std::string::npos);
}

TEST(DicomData, EnhancedCtMultiFrame) {
  LUNGVOL_REQUIRE_DATA("pydicom-ct-edgecases/pydicom-data/eCT_Supplemental.dcm");
  const LoadedCt ct = load_ct(test::shared_data("pydicom-ct-edgecases/pydicom-data/eCT_Supplemental.dcm"));
  const Geometry& g = ct.image.geom;
  EXPECT_EQ(g.size[2], 2u);
  EXPECT_NEAR(g.spacing[0], 0.3887, 1e-3);
  EXPECT_NEAR(g.spacing[2], 10.0, 1e-6);  // z -159 and -149
  // Frames at z -159 and -149, in ascending order along the slice normal.
  const double z0 = g.to_physical(0, 0, 0)[2], z1 = g.to_physical(0, 0, 1)[2];
  EXPECT_NEAR(std::min(z0, z1), -159.0, 1e-3);
  EXPECT_NEAR(std::max(z0, z1), -149.0, 1e-3);
  EXPECT_EQ(range(ct.image), std::make_pair(-1024, 172));
}

TEST(DicomData, MinimalHeaderWithoutModalityIsReadWithWarning) {
  LUNGVOL_REQUIRE_DATA("lungmask-testdata");
  const LoadedCt ct = load_ct(test::shared_data("lungmask-testdata"));
  EXPECT_EQ(ct.image.geom.size[2], 2u);
  EXPECT_NEAR(ct.image.geom.spacing[0], 0.625, 1e-6);
  EXPECT_NEAR(ct.image.geom.spacing[2], 1.0, 1e-6);
  EXPECT_EQ(range(ct.image), std::make_pair(-2048, 1502));
  const bool warned = std::any_of(ct.warnings.begin(), ct.warnings.end(), [](const std::string& w) {
    return w.find("Modality") != std::string::npos;
  });
  EXPECT_TRUE(warned);
}

TEST(DicomData, J2kSeriesWithOverlappingSlices) {
  LUNGVOL_REQUIRE_DATA("totalsegmentator-examples/example_ct_dicom");
  const LoadedCt ct = load_ct(test::shared_data("totalsegmentator-examples/example_ct_dicom"));
  EXPECT_EQ(ct.image.geom.size[2], 20u);
  EXPECT_NEAR(ct.image.geom.spacing[2], 2.0, 1e-3);  // SliceThickness says 3
  EXPECT_NEAR(ct.series.slice_thickness_mm, 3.0, 1e-6);
  EXPECT_NEAR(ct.image.geom.origin[2], -804.5, 1e-3);
  EXPECT_EQ(range(ct.image), std::make_pair(-1024, 1839));
}

TEST(DicomData, CorruptJpegStreamIsFlagged) {
  LUNGVOL_REQUIRE_DATA("pydicom-ct-edgecases/pylibjpeg-data/JPEGLossless_1s_1f_i_16_16_bad.dcm");
  const std::string msg = expect_dicom_error(
      test::shared_data("pydicom-ct-edgecases/pylibjpeg-data/JPEGLossless_1s_1f_i_16_16_bad.dcm"));
  EXPECT_NE(msg.find("JPEGLossless_1s_1f_i_16_16_bad.dcm"), std::string::npos) << msg;
}

TEST(DicomData, TruncatedFileIsDicomErrorNamingIt) {
  LUNGVOL_REQUIRE_DATA("popi-4dct-phase00-itkelastix/dicom");
  const std::string dir = test::temp_dir("truncated");
  const std::string src = test::shared_data(kTs + "CTImage.dcm");
  const std::string dst = dir + "/CUT0001";
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dst, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  const std::string msg = expect_dicom_error(dst);
  EXPECT_NE(msg.find("CUT0001"), std::string::npos) << msg;
  // Inside a series: the rest of POPI plus one truncated slice.
  const std::string popi = test::shared_data("popi-4dct-phase00-itkelastix/dicom");
  const std::string series = dir + "/series";
  fs::create_directories(series);
  for (int k = 0; k < 5; ++k) {
    const std::string name = "00-slice00" + std::to_string(k) + ".dcm";
    fs::copy_file(popi + "/" + name, series + "/" + name);
  }
  std::ifstream in2(popi + "/00-slice002.dcm", std::ios::binary);
  std::string b2((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
  std::ofstream(series + "/00-slice002.dcm", std::ios::binary | std::ios::trunc)
      .write(b2.data(), static_cast<std::streamsize>(b2.size() - 1000));
  const std::string msg2 = expect_dicom_error(series);
  EXPECT_NE(msg2.find("00-slice002.dcm"), std::string::npos) << msg2;
}

// Every file in ../shared/data, one at a time: discovery and loading either succeed or throw
// lungvol::Error; nothing crashes or throws anything else.
TEST(DicomData, EveryFileInspectsAndLoadsWithoutCrash) {
  LUNGVOL_REQUIRE_DATA("");
  int loaded = 0, refused = 0, skipped = 0;
  std::map<std::string, int> per_folder;
  for (const auto& e : fs::recursive_directory_iterator(test::shared_dir() + "/data")) {
    if (!e.is_regular_file()) continue;
    const std::string p = e.path().string();
    // Large folders of look-alike files: the first few are enough.
    const std::string parent = e.path().parent_path().filename().string();
    if ((parent == "dicom" || parent == "ct-64Dicom" || parent == "image" ||
         parent == "nodule_mask" || parent == "example_ct_dicom") &&
        ++per_folder[e.path().parent_path().string()] > 3) {
      continue;
    }
    try {
      const Discovery d = discover_dicom(p);
      if (d.series.empty()) {
        ++skipped;
        continue;
      }
      load_ct(p);
      ++loaded;
    } catch (const Error& err) {
      ++refused;
      std::cout << "refused: " << err.what() << "\n";
      EXPECT_TRUE(err.code() == ExitCode::kDicom || err.code() == ExitCode::kInput) << p;
    }
  }
  std::cout << loaded << " loaded, " << refused << " refused, " << skipped << " skipped\n";
  EXPECT_GT(loaded, 30);
}

}  // namespace
}  // namespace lungvol::io
