// DICOM SEG of synthetic label maps over a CT series written with io::write_ct_series. The masks
// are checked against the input label maps twice: through DCMTK's DcmSegmentation reader and
// through an independent decode of the raw bit-packed PixelData with frames placed by matching
// their ImagePositionPatient to the CT files' own positions.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "dicomout/seg.hpp"
#include "io/dicom_write.hpp"
#include "tests/unit/dicomout/scan_fixture.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::dicomout {
namespace {

using test_support::Scan;

std::string str(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  item.findAndGetOFStringArray(tag, v);
  return v.c_str();
}

std::array<double, 3> ipp(DcmItem& item) {
  std::array<double, 3> p{};
  for (unsigned long i = 0; i < 3; ++i) item.findAndGetFloat64(DCM_ImagePositionPatient, p[i], i);
  return p;
}

// Independent decode: frame f, pixel p is bit (f*rows*cols + p) of PixelData, LSB first
// (PS3.5 8.1.1, BitsAllocated 1).
void decode_raw(const std::string& seg_path, const Scan& scan, LabelImage& lungs,
                LabelImage& lesions) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(seg_path.c_str()).good());
  DcmDataset& ds = *ff.getDataset();
  // CT file positions -> slice index, from the CT files themselves.
  std::vector<std::array<double, 3>> ct_pos;
  std::vector<std::string> ct_sop;
  for (const std::string& f : scan.files) {
    DcmFileFormat ct;
    ASSERT_TRUE(ct.loadFile(f.c_str()).good());
    ct_pos.push_back(ipp(*ct.getDataset()));
    ct_sop.push_back(str(*ct.getDataset(), DCM_SOPInstanceUID));
  }
  const Uint8* bits = nullptr;
  unsigned long nbytes = 0;
  ASSERT_TRUE(ds.findAndGetUint8Array(DCM_PixelData, bits, &nbytes).good());
  Uint16 rows = 0, cols = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  ASSERT_EQ(rows, scan.ct.geom.size[1]);
  ASSERT_EQ(cols, scan.ct.geom.size[0]);
  DcmSequenceOfItems* frames = nullptr;
  ASSERT_TRUE(ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames).good());
  const std::size_t n = std::size_t{rows} * cols;
  ASSERT_GE(nbytes * 8, frames->card() * n);
  lungs = LabelImage(scan.ct.geom, 0);
  lesions = LabelImage(scan.ct.geom, 0);
  for (unsigned long f = 0; f < frames->card(); ++f) {
    DcmItem* fi = frames->getItem(f);
    DcmItem* pos = nullptr;
    DcmItem* segid = nullptr;
    DcmItem* deriv = nullptr;
    DcmItem* srcimg = nullptr;
    ASSERT_TRUE(fi->findAndGetSequenceItem(DCM_PlanePositionSequence, pos).good());
    ASSERT_TRUE(fi->findAndGetSequenceItem(DCM_SegmentIdentificationSequence, segid).good());
    ASSERT_TRUE(fi->findAndGetSequenceItem(DCM_DerivationImageSequence, deriv).good());
    ASSERT_TRUE(deriv->findAndGetSequenceItem(DCM_SourceImageSequence, srcimg).good());
    Uint16 number = 0;
    segid->findAndGetUint16(DCM_ReferencedSegmentNumber, number);
    const auto p = ipp(*pos);
    std::size_t k = ct_pos.size();
    for (std::size_t c = 0; c < ct_pos.size(); ++c) {
      if (std::abs(ct_pos[c][0] - p[0]) < 1e-3 && std::abs(ct_pos[c][1] - p[1]) < 1e-3 &&
          std::abs(ct_pos[c][2] - p[2]) < 1e-3) {
        k = c;
      }
    }
    ASSERT_LT(k, ct_pos.size()) << "frame " << f + 1 << " is not at a CT slice position";
    // The frame's source image is the CT slice at that position.
    EXPECT_EQ(str(*srcimg, DCM_ReferencedSOPInstanceUID), ct_sop[k]);
    EXPECT_EQ(str(*srcimg, DCM_ReferencedSOPClassUID), UID_CTImageStorage);
    ASSERT_GE(number, 1);
    ASSERT_LE(number, 5);
    const auto& def = segment_definitions()[number - 1u];
    LabelImage& map = def.from_lesion_map ? lesions : lungs;
    for (std::size_t q = 0; q < n; ++q) {
      const std::size_t bit = f * n + q;
      if ((bits[bit / 8] >> (bit % 8)) & 1u) map.data[k * n + q] = def.label_value;
    }
  }
}

std::size_t count_mismatch(const LabelImage& a, const LabelImage& b) {
  std::size_t m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && m < 5) std::cout << "mismatch at " << i << " slice " << i / a.geom.slice_voxels() << ": " << int(a[i]) << " vs " << int(b[i]) << "\n";
    m += a[i] != b[i];
  }
  return m;
}

// Runs dciodvfy; returns its "Error" lines (and prints every warning for the report).
std::vector<std::string> dciodvfy_errors(const std::string& path, const std::string& log) {
  test::run_command("dciodvfy '" + path + "'", log);
  std::ifstream in(log);
  std::vector<std::string> errors;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Error", 0) == 0) errors.push_back(line);
    if (line.rfind("Warning", 0) == 0) std::cout << "[dciodvfy] " << line << "\n";
  }
  return errors;
}

bool have_dciodvfy() { return test::run_command("command -v dciodvfy", "/dev/null") == 0; }

class SegTest : public ::testing::TestWithParam<int> {};

TEST_P(SegTest, RoundTripsVoxelForVoxelAndReferencesTheSource) {
  const std::string dir = test::temp_dir("dicomout_seg");
  const Scan scan = test_support::make_scan(dir, GetParam());
  const std::string seg_path = dir + "/seg.dcm";
  const SegWriteResult r =
      write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, seg_path);

  // Frames only where a segment has voxels: count from the input maps.
  std::size_t expected_frames = 0;
  const std::size_t n = scan.ct.geom.slice_voxels();
  for (const auto& def : segment_definitions()) {
    const LabelImage& map = def.from_lesion_map ? scan.lesions : scan.lungs;
    std::size_t voxels = 0, frames = 0;
    for (std::size_t k = 0; k < scan.ct.geom.size[2]; ++k) {
      std::size_t in_slice = 0;
      for (std::size_t q = 0; q < n; ++q) in_slice += map[k * n + q] == def.label_value;
      voxels += in_slice;
      frames += in_slice > 0;
    }
    const auto it = std::find_if(r.segments.begin(), r.segments.end(),
                                 [&](const SegmentSummary& s) { return s.label == def.label; });
    if (voxels == 0) {
      EXPECT_EQ(it, r.segments.end()) << def.label << ": an empty segment is not declared";
      continue;
    }
    ASSERT_NE(it, r.segments.end()) << def.label;
    EXPECT_EQ(it->voxels, voxels) << def.label;
    EXPECT_EQ(it->frames, frames) << def.label;
    expected_frames += frames;
  }
  EXPECT_EQ(r.frames, expected_frames);
  EXPECT_LT(r.frames, 5 * scan.ct.geom.size[2]);  // the empty slices were left out

  // Our reader.
  const SegReadResult back = read_dicom_seg(seg_path, scan.ct.geom);
  EXPECT_EQ(count_mismatch(back.lungs, scan.lungs), 0u);
  EXPECT_EQ(count_mismatch(back.lesions, scan.lesions), 0u);
  EXPECT_FALSE(back.lungs_binary);
  EXPECT_FALSE(back.lesions_binary);
  // Independent raw decode.
  LabelImage raw_lungs, raw_lesions;
  decode_raw(seg_path, scan, raw_lungs, raw_lesions);
  EXPECT_EQ(count_mismatch(raw_lungs, scan.lungs), 0u);
  EXPECT_EQ(count_mismatch(raw_lesions, scan.lesions), 0u);

  // Same patient, study and frame of reference; the source series is referenced.
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(seg_path.c_str()).good());
  DcmDataset& ds = *ff.getDataset();
  EXPECT_EQ(str(ds, DCM_SOPClassUID), UID_SegmentationStorage);
  EXPECT_EQ(str(ds, DCM_Modality), "SEG");
  EXPECT_EQ(str(ds, DCM_SegmentationType), "BINARY");
  EXPECT_EQ(str(ds, DCM_PatientID), scan.meta.patient_id);
  EXPECT_EQ(str(ds, DCM_PatientName), scan.meta.patient_name);
  EXPECT_EQ(str(ds, DCM_StudyInstanceUID), scan.meta.study_uid);
  EXPECT_EQ(str(ds, DCM_FrameOfReferenceUID), scan.meta.frame_of_reference_uid);
  EXPECT_NE(str(ds, DCM_SeriesInstanceUID), scan.meta.series_uid);
  EXPECT_EQ(r.sop_instance_uid, str(ds, DCM_SOPInstanceUID));
  DcmItem* refser = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ReferencedSeriesSequence, refser).good());
  EXPECT_EQ(str(*refser, DCM_SeriesInstanceUID), scan.meta.series_uid);
  DcmSequenceOfItems* refinst = nullptr;
  ASSERT_TRUE(refser->findAndGetSequence(DCM_ReferencedInstanceSequence, refinst).good());
  EXPECT_EQ(refinst->card(), scan.files.size());

  // Segment attributes.
  DcmSequenceOfItems* segs = nullptr;
  ASSERT_TRUE(ds.findAndGetSequence(DCM_SegmentSequence, segs).good());
  ASSERT_EQ(segs->card(), 5u);
  EXPECT_EQ(str(ds, DCM_SegmentsOverlap), "YES");  // lesion voxels lie inside the lung segments
  const std::map<int, std::array<std::string, 3>> expected = {
      {1, {"Right lung", "39607008", "24028007"}}, {2, {"Left lung", "39607008", "7771000"}},
      {3, {"Airway", "89187006", ""}},             {4, {"Ground-glass opacity", "112120", ""}},
      {5, {"Solid lesion", "52988006", ""}}};
  for (unsigned long s = 0; s < 5; ++s) {
    DcmItem* it = segs->getItem(s);
    Uint16 number = 0;
    it->findAndGetUint16(DCM_SegmentNumber, number);
    const auto& e = expected.at(number);
    EXPECT_EQ(str(*it, DCM_SegmentLabel), e[0]);
    EXPECT_EQ(str(*it, DCM_SegmentAlgorithmType), "AUTOMATIC");
    EXPECT_EQ(str(*it, DCM_SegmentAlgorithmName), std::string("lungvol ") + kSoftwareVersion);
    DcmItem* type = nullptr;
    ASSERT_TRUE(it->findAndGetSequenceItem(DCM_SegmentedPropertyTypeCodeSequence, type).good());
    EXPECT_EQ(str(*type, DCM_CodeValue), e[1]);
    DcmItem* mod = nullptr;
    const bool has_mod =
        type->findAndGetSequenceItem(DCM_SegmentedPropertyTypeModifierCodeSequence, mod).good();
    EXPECT_EQ(has_mod, !e[2].empty());
    if (has_mod) {
      EXPECT_EQ(str(*mod, DCM_CodeValue), e[2]);
    }
  }

  if (!have_dciodvfy()) GTEST_SKIP() << "dciodvfy not installed (scripts/setup.sh installs it)";
  const auto errors = dciodvfy_errors(seg_path, dir + "/dciodvfy.log");
  EXPECT_TRUE(errors.empty()) << errors.front();
}

// 0: axial, 20 x 13 slices (260 bits: frames not byte aligned); 1: oblique rotated grid.
INSTANTIATE_TEST_SUITE_P(Geometries, SegTest, ::testing::Values(0, 1));

// Rewrites the SEG's segment numbers (SegmentSequence and every frame's reference) with
// `renumber`, and lets `edit` change each segment item: what another tool's SEG looks like.
void edit_seg(const std::string& path, const std::map<int, int>& renumber,
              const std::function<void(int, DcmItem&)>& edit) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(path.c_str()).good());
  DcmDataset& ds = *ff.getDataset();
  DcmSequenceOfItems* segs = nullptr;
  ASSERT_TRUE(ds.findAndGetSequence(DCM_SegmentSequence, segs).good());
  for (unsigned long i = 0; i < segs->card(); ++i) {
    DcmItem* it = segs->getItem(i);
    Uint16 n = 0;
    it->findAndGetUint16(DCM_SegmentNumber, n);
    edit(n, *it);
    it->putAndInsertUint16(DCM_SegmentNumber, Uint16(renumber.at(n)));
  }
  DcmSequenceOfItems* frames = nullptr;
  ASSERT_TRUE(ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames).good());
  for (unsigned long f = 0; f < frames->card(); ++f) {
    DcmItem* id = nullptr;
    ASSERT_TRUE(frames->getItem(f)->findAndGetSequenceItem(DCM_SegmentIdentificationSequence, id).good());
    Uint16 n = 0;
    id->findAndGetUint16(DCM_ReferencedSegmentNumber, n);
    id->putAndInsertUint16(DCM_ReferencedSegmentNumber, Uint16(renumber.at(n)));
  }
  ASSERT_TRUE(ff.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
}

void set_label_and_type(DcmItem& it, const char* label, const char* value, const char* scheme,
                        const char* meaning) {
  it.putAndInsertString(DCM_SegmentLabel, label);
  DcmItem* type = nullptr;
  ASSERT_TRUE(it.findAndGetSequenceItem(DCM_SegmentedPropertyTypeCodeSequence, type).good());
  type->putAndInsertString(DCM_CodeValue, value);
  type->putAndInsertString(DCM_CodingSchemeDesignator, scheme);
  type->putAndInsertString(DCM_CodeMeaning, meaning);
  type->findAndDeleteElement(DCM_SegmentedPropertyTypeModifierCodeSequence);
}

TEST(SegForeign, SegmentsAreMatchedByCodeAndLabelNotByNumber) {
  const std::string dir = test::temp_dir("dicomout_seg_foreign");
  const Scan scan = test_support::make_scan(dir, 0);
  const std::string path = dir + "/seg.dcm";
  write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, path);
  // Slicer-like: segments numbered in another order, the lungs and ground-glass relabelled
  // "Segment_N" with their coded meaning and laterality kept (the solid segment's generic
  // "Lesion" code needs its label); the airway becomes "Heart" (unknown), so it is ignored.
  edit_seg(path, {{1, 4}, {2, 2}, {3, 5}, {4, 1}, {5, 3}}, [](int n, DcmItem& it) {
    if (n != 5) it.putAndInsertString(DCM_SegmentLabel, ("Segment_" + std::to_string(n)).c_str());
    if (n == 3) set_label_and_type(it, "Heart", "80891009", "SCT", "Heart");
  });
  const SegReadResult r = read_dicom_seg(path, scan.ct.geom);
  LabelImage expected_lungs = scan.lungs;
  for (auto& v : expected_lungs.data) v = v == labels::kAirway ? labels::kBackground : v;
  EXPECT_EQ(count_mismatch(r.lungs, expected_lungs), 0u);
  EXPECT_EQ(count_mismatch(r.lesions, scan.lesions), 0u);
  EXPECT_FALSE(r.lungs_binary);
  ASSERT_EQ(r.notes.size(), 5u);
  EXPECT_EQ(r.notes[2], "segment 5 'Heart': not recognised, ignored");
}

TEST(SegForeign, UnsidedLungAndUnsplitLesionSegmentsAreReadAsBinary) {
  const std::string dir = test::temp_dir("dicomout_seg_binary");
  Scan scan = test_support::make_scan(dir, 0);
  // Both lungs as one label, lesions as one label. lungvol declares only the non-empty segments:
  // 1 right lung (all lung voxels), 2 airway, 3 ground glass (all lesion voxels).
  LabelImage lungs = scan.lungs, lesions = scan.lesions;
  for (auto& v : lungs.data) v = v == labels::kLeftLung ? labels::kRightLung : v;
  for (auto& v : lesions.data) v = v ? labels::kGroundGlass : 0;
  const std::string path = dir + "/seg.dcm";
  write_dicom_seg(scan.ct.geom, lungs, lesions, scan.series, path);
  edit_seg(path, {{1, 1}, {2, 2}, {3, 3}}, [](int n, DcmItem& it) {
    if (n == 1) set_label_and_type(it, "Lungs", "39607008", "SCT", "Lung");
    if (n == 3) set_label_and_type(it, "COVID infection", "T-D0050", "SRT", "Tissue");
  });
  const SegReadResult r = read_dicom_seg(path, scan.ct.geom);
  EXPECT_TRUE(r.lungs_binary);
  EXPECT_TRUE(r.lesions_binary);
  EXPECT_EQ(count_mismatch(r.lungs, lungs), 0u);
  EXPECT_EQ(count_mismatch(r.lesions, lesions), 0u);
}

TEST(SegForeign, MeaningsFromCodesAndLabels) {
  const std::vector<Code> none;
  const Code lung{"39607008", "SCT", "Lung"}, lesion{"52988006", "SCT", "Lesion"};
  const Code tissue{"85756007", "SCT", "Tissue"};
  EXPECT_EQ(segment_meaning("x", lung, {{"24028007", "SCT", "Right"}}), SegmentMeaning::kRightLung);
  EXPECT_EQ(segment_meaning("x", lung, {{"7771000", "SCT", "Left"}}), SegmentMeaning::kLeftLung);
  EXPECT_EQ(segment_meaning("Left lung", lung, none), SegmentMeaning::kLeftLung);
  EXPECT_EQ(segment_meaning("lungs", lung, none), SegmentMeaning::kLung);
  EXPECT_EQ(segment_meaning("x", {"3341006", "SCT", "Right lung"}, none), SegmentMeaning::kRightLung);
  EXPECT_EQ(segment_meaning("Solid lesion", lesion, none), SegmentMeaning::kSolid);
  EXPECT_EQ(segment_meaning("Lesion", lesion, none), SegmentMeaning::kLesion);
  EXPECT_EQ(segment_meaning("x", {"112120", "DCM", "GGO"}, none), SegmentMeaning::kGroundGlass);
  EXPECT_EQ(segment_meaning("trachea", tissue, none), SegmentMeaning::kAirway);
  EXPECT_EQ(segment_meaning("lung consolidation", tissue, none), SegmentMeaning::kSolid);
  EXPECT_EQ(segment_meaning("GGO", tissue, none), SegmentMeaning::kGroundGlass);
  EXPECT_EQ(segment_meaning("right lung", tissue, none), SegmentMeaning::kRightLung);
  EXPECT_EQ(segment_meaning("heart", tissue, none), SegmentMeaning::kUnknown);
}

TEST(SegForeign, ContradictorySegmentsAreRefused) {
  const std::string dir = test::temp_dir("dicomout_seg_contradict");
  const Scan scan = test_support::make_scan(dir, 0);
  const std::string path = dir + "/seg.dcm";
  write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, path);
  edit_seg(path, {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}}, [](int n, DcmItem& it) {
    if (n == 4) set_label_and_type(it, "Lesion", "52988006", "SCT", "Lesion");
  });
  try {
    read_dicom_seg(path, scan.ct.geom);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("unsplit lesion segment"), std::string::npos);
  }
}

TEST(SegInput, NiftiInputWithoutDicomSourceIsRefusedWithAClearMessage) {
  const std::string dir = test::temp_dir("dicomout_seg_nifti");
  Scan scan = test_support::make_scan(dir, 0);
  scan.series.files.clear();
  EXPECT_FALSE(has_dicom_source(scan.series, scan.ct.geom));
  try {
    write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, dir + "/seg.dcm");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("not read from DICOM"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/seg.dcm"));
}

TEST(SegOutput, EmptyLabelMapsAreRefusedAndLeaveNoFile) {
  const std::string dir = test::temp_dir("dicomout_seg_empty");
  Scan scan = test_support::make_scan(dir, 0);
  std::fill(scan.lungs.data.begin(), scan.lungs.data.end(), std::uint8_t(0));
  std::fill(scan.lesions.data.begin(), scan.lesions.data.end(), std::uint8_t(0));
  try {
    write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, dir + "/seg.dcm");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kOutput);
    EXPECT_NE(std::string(e.what()).find("every segment is empty"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/seg.dcm"));
}

// The change map SEG, read back with DCMTK alone: one segment per class with voxels (an empty
// class is not declared), frames and voxels per segment exactly the label map's, the baseline
// series referenced, segments not overlapping; a map without any change is refused, no file.
TEST(ChangeMapSeg, OneSegmentPerNonEmptyClassVoxelForVoxel) {
  const std::string dir = test::temp_dir("dicomout_change_seg");
  const Scan scan = test_support::make_scan(dir, 0);  // 20 x 13 x 7
  const Geometry& g = scan.ct.geom;
  LabelImage change(g, labels::kNoChange);
  // resolved: a 4 x 3 box on slices 0-2 (36 voxels, 3 frames); new: 2 x 2 on slices 3-4 (8, 2);
  // progressed: one voxel on slice 6 (1, 1); persistent and regressed: none.
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t j = 2; j < 5; ++j)
      for (std::size_t i = 3; i < 7; ++i) change[g.index(i, j, k)] = labels::kResolved;
  for (std::size_t k = 3; k < 5; ++k)
    for (std::size_t j = 8; j < 10; ++j)
      for (std::size_t i = 12; i < 14; ++i) change[g.index(i, j, k)] = labels::kNew;
  change[g.index(10, 6, 6)] = labels::kProgressed;
  SegOptions so;
  so.series_number = 9903;
  const std::string path = dir + "/change_seg.dcm";
  const SegWriteResult r = write_change_map_seg(g, change, scan.series, path, so);
  ASSERT_EQ(r.segments.size(), 3u);
  EXPECT_EQ(r.frames, 6u);

  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(path.c_str()).good());
  DcmDataset& ds = *ff.getDataset();
  EXPECT_EQ(str(ds, DCM_SOPClassUID), UID_SegmentationStorage);
  EXPECT_EQ(str(ds, DCM_SegmentsOverlap), "NO");
  DcmItem* refser = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ReferencedSeriesSequence, refser).good());
  EXPECT_EQ(str(*refser, DCM_SeriesInstanceUID), scan.meta.series_uid);
  std::map<Uint16, std::string> label_of;
  DcmSequenceOfItems* segs = nullptr;
  ASSERT_TRUE(ds.findAndGetSequence(DCM_SegmentSequence, segs).good());
  for (unsigned long i = 0; i < segs->card(); ++i) {
    Uint16 number = 0;
    segs->getItem(i)->findAndGetUint16(DCM_SegmentNumber, number);
    label_of[number] = str(*segs->getItem(i), DCM_SegmentLabel);
  }
  const std::map<Uint16, std::string> expected_labels{
      {1, "Resolved lesion"}, {2, "New lesion"}, {3, "Progressed lesion"}};
  EXPECT_EQ(label_of, expected_labels);
  const Uint8* bits = nullptr;
  unsigned long nbytes = 0;
  ASSERT_TRUE(ds.findAndGetUint8Array(DCM_PixelData, bits, &nbytes).good());
  DcmSequenceOfItems* frames = nullptr;
  ASSERT_TRUE(ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames).good());
  std::map<std::string, std::size_t> n_frames, n_voxels;
  const std::size_t n = g.slice_voxels();
  ASSERT_GE(nbytes * 8, frames->card() * n);
  for (unsigned long f = 0; f < frames->card(); ++f) {
    DcmItem* segid = nullptr;
    ASSERT_TRUE(frames->getItem(f)->findAndGetSequenceItem(DCM_SegmentIdentificationSequence, segid).good());
    Uint16 number = 0;
    segid->findAndGetUint16(DCM_ReferencedSegmentNumber, number);
    ++n_frames[label_of[number]];
    for (std::size_t q = 0; q < n; ++q) {
      const std::size_t bit = f * n + q;
      n_voxels[label_of[number]] += (bits[bit / 8] >> (bit % 8)) & 1u;
    }
  }
  const std::map<std::string, std::size_t> expected_frames{
      {"Resolved lesion", 3}, {"New lesion", 2}, {"Progressed lesion", 1}};
  const std::map<std::string, std::size_t> expected_voxels{
      {"Resolved lesion", 36}, {"New lesion", 8}, {"Progressed lesion", 1}};
  EXPECT_EQ(n_frames, expected_frames);
  EXPECT_EQ(n_voxels, expected_voxels);
  if (have_dciodvfy()) {
    EXPECT_TRUE(dciodvfy_errors(path, dir + "/dciodvfy_change.log").empty());
  }

  const LabelImage nothing(g, labels::kNoChange);
  try {
    write_change_map_seg(g, nothing, scan.series, dir + "/none.dcm", so);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none.dcm': every segment is empty (no lesion at "
                                         "baseline or follow-up)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/none.dcm"));
}

}  // namespace
}  // namespace lungvol::dicomout
