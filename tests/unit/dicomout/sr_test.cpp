// TID 1500 report over the synthetic scan: the numbers given in are found again, coded, in the
// written content tree; groups reference the SEG's segments; dciodvfy reports no error.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "dicomout/sr.hpp"
#include "tests/support/test_paths.hpp"
#include "tests/unit/dicomout/scan_fixture.hpp"

namespace lungvol::dicomout {
namespace {

std::string str(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  item.findAndGetOFStringArray(tag, v);
  return v.c_str();
}

struct Num {
  std::string code, unit, value;
};

// CODE content items in document order: concept name code and value code.
std::vector<std::pair<std::string, std::string>> g_codes;

// Every NUM content item (concept code, unit, value) and every referenced segment, depth first.
void walk(DcmItem& item, std::vector<Num>& nums, std::vector<std::pair<std::string, int>>& segs) {
  DcmSequenceOfItems* content = nullptr;
  if (item.findAndGetSequence(DCM_ContentSequence, content).bad() || !content) return;
  for (unsigned long i = 0; i < content->card(); ++i) {
    DcmItem* ci = content->getItem(i);
    const std::string type = str(*ci, DCM_ValueType);
    if (type == "NUM") {
      DcmItem* name = nullptr;
      DcmItem* mv = nullptr;
      DcmItem* unit = nullptr;
      ci->findAndGetSequenceItem(DCM_ConceptNameCodeSequence, name);
      ci->findAndGetSequenceItem(DCM_MeasuredValueSequence, mv);
      if (name && mv && mv->findAndGetSequenceItem(DCM_MeasurementUnitsCodeSequence, unit).good()) {
        nums.push_back({str(*name, DCM_CodeValue), str(*unit, DCM_CodeValue),
                        str(*mv, DCM_NumericValue)});
      }
    } else if (type == "CODE") {
      DcmItem* name = nullptr;
      DcmItem* value = nullptr;
      ci->findAndGetSequenceItem(DCM_ConceptNameCodeSequence, name);
      ci->findAndGetSequenceItem(DCM_ConceptCodeSequence, value);
      if (name && value) g_codes.push_back({str(*name, DCM_CodeValue), str(*value, DCM_CodeValue)});
    } else if (type == "IMAGE") {
      DcmItem* ref = nullptr;
      if (ci->findAndGetSequenceItem(DCM_ReferencedSOPSequence, ref).good()) {
        Uint16 seg = 0;
        if (ref->findAndGetUint16(DCM_ReferencedSegmentNumber, seg).good()) {
          segs.push_back({str(*ref, DCM_ReferencedSOPInstanceUID), seg});
        }
      }
    }
    walk(*ci, nums, segs);
  }
}

SrRegion region(const std::string& name, double volume, double ggo, double solid) {
  SrRegion r;
  r.name = name;
  r.volumes.volume_ml = volume;
  r.volumes.ggo_ml = ggo;
  r.volumes.solid_ml = solid;
  r.volumes.lesion_ml = ggo + solid;
  r.volumes.ggo_pct = 100 * ggo / volume;
  r.volumes.solid_pct = 100 * solid / volume;
  r.volumes.lesion_pct = 100 * (ggo + solid) / volume;
  r.density.empty = false;
  r.density.mean_hu = -812.5;
  r.density.median_hu = -850;
  r.density.percentiles = {{10, -930}, {15, -915}};
  r.density.laa_pct = {{-950, 3.25}, {-910, 12.5}};
  r.density.haa_pct = 7.75;
  r.density.mass_g = 512.25;
  return r;
}

TEST(Sr, CarriesTheMeasuresCodedAndReferencesTheSegments) {
  const std::string dir = test::temp_dir("dicomout_sr");
  const auto scan = test_support::make_scan(dir, 0);
  const SegWriteResult seg =
      write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, dir + "/seg.dcm");
  const std::vector<SrRegion> regions = {region("lungs", 4000, 300, 100),
                                         region("right", 2100, 200, 0),
                                         region("left", 1900, 100, 100),
                                         region("right_upper", 700, 1, 1)};
  SrOptions options;
  options.protocol = "covid-ggo-solid 1";
  const std::string path = dir + "/sr.dcm";
  const SrWriteResult r = write_dicom_sr(scan.ct.geom, scan.series, seg, regions, path, options);
  // One group per SEG segment in the SEG's order (right, left, airway, ground glass, solid), then
  // both lungs.
  EXPECT_EQ(r.measurement_groups, 6u);
  // 14 per lung region (7 volume + 7 density) x 3, 2 per lesion segment, the airway's volume.
  EXPECT_EQ(r.measurements, 3u * 14u + 2u * 2u + 1u);

  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(path.c_str()).good());
  DcmDataset& ds = *ff.getDataset();
  EXPECT_EQ(str(ds, DCM_SOPClassUID), UID_EnhancedSRStorage);
  EXPECT_EQ(str(ds, DCM_Modality), "SR");
  EXPECT_EQ(str(ds, DCM_PatientID), scan.meta.patient_id);
  EXPECT_EQ(str(ds, DCM_PatientName), scan.meta.patient_name);
  EXPECT_EQ(str(ds, DCM_StudyInstanceUID), scan.meta.study_uid);
  EXPECT_EQ(str(ds, DCM_StudyDate), scan.meta.study_date);
  DcmItem* title = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ConceptNameCodeSequence, title).good());
  EXPECT_EQ(str(*title, DCM_CodeValue), "126000");  // Imaging Measurement Report

  std::vector<Num> nums;
  std::vector<std::pair<std::string, int>> segs;
  g_codes.clear();
  walk(ds, nums, segs);
  std::multimap<std::string, Num> by_code;
  for (const auto& n : nums) by_code.emplace(n.code, n);
  // Volumes: SCT 118565006 in mL: lungs 4000, right 2100, left 1900, GGO 300, solid 100.
  std::multiset<std::string> volumes;
  for (auto [it, end] = by_code.equal_range("118565006"); it != end; ++it) {
    EXPECT_EQ(it->second.unit, "ml");
    volumes.insert(it->second.value);
  }
  // ... and the airway's volume from its voxels.
  const auto airway = std::find_if(seg.segments.begin(), seg.segments.end(),
                                   [](const SegmentSummary& s) { return s.tracking_id == "airway"; });
  ASSERT_NE(airway, seg.segments.end());
  EXPECT_EQ(volumes.size(), 6u);
  for (const char* v : {"100", "1900", "2100", "300", "4000"}) EXPECT_EQ(volumes.count(v), 1u) << v;
  EXPECT_EQ(by_code.count("112183"), 3u);  // SD of attenuation, standard DCM code
  EXPECT_EQ(by_code.count("112181"), 3u);  // mean attenuation, per lung region
  EXPECT_EQ(by_code.find("112181")->second.value, "-812.5");
  EXPECT_EQ(by_code.find("112181")->second.unit, "[hnsf'U]");
  EXPECT_EQ(by_code.find("LV0021")->second.value, "-915");    // PD15
  EXPECT_EQ(by_code.find("LV0022")->second.value, "3.25");    // %LAA-950
  EXPECT_EQ(by_code.find("LV0022")->second.unit, "%");
  EXPECT_EQ(by_code.find("LV0023")->second.value, "7.75");    // HAA %
  EXPECT_EQ(by_code.find("LV0024")->second.unit, "g");
  EXPECT_EQ(by_code.count("LV0012"), 4u);  // GGO % in 3 lung groups + the GGO segment group
  // GGO % of both lungs = 300 / 4000 = 7.5 %.
  bool found_ggo_pct = false;
  for (auto [it, end] = by_code.equal_range("LV0012"); it != end; ++it) {
    found_ggo_pct |= it->second.value == "7.5";
  }
  EXPECT_TRUE(found_ggo_pct);

  // Referenced segments 1, 2, 4, 5 of this SEG.
  std::multiset<int> numbers;
  for (const auto& [uid, n] : segs) {
    EXPECT_EQ(uid, seg.sop_instance_uid);
    numbers.insert(n);
  }
  EXPECT_EQ(numbers, (std::multiset<int>{1, 2, 3, 4, 5}));
  // In the SEG's order: group n references segment n (position matching, as Slicer does).
  std::vector<int> order;
  for (const auto& p : segs) order.push_back(p.second);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  // Finding Site (SCT 363698007) of the lung groups, each with its laterality (SCT 272741003):
  // right (24028007) then left (7771000); the airway coded as Airway structure (89187006).
  std::vector<std::string> lateralities;
  bool airway_finding = false;
  for (const auto& [concept_code, value] : g_codes) {
    if (concept_code == "272741003") lateralities.push_back(value);
    airway_finding |= value == "89187006";
  }
  EXPECT_EQ(lateralities, (std::vector<std::string>{"24028007", "7771000"}));
  EXPECT_TRUE(airway_finding);

  if (test::run_command("command -v dciodvfy", "/dev/null") != 0) {
    GTEST_SKIP() << "dciodvfy not installed (scripts/setup.sh installs it)";
  }
  const std::string log = dir + "/dciodvfy.log";
  test::run_command("dciodvfy '" + path + "'", log);
  std::ifstream in(log);
  std::string line;
  std::vector<std::string> errors;
  while (std::getline(in, line)) {
    if (line.rfind("Error", 0) == 0) errors.push_back(line);
    if (line.rfind("Warning", 0) == 0) std::cout << "[dciodvfy] " << line << "\n";
  }
  EXPECT_TRUE(errors.empty()) << errors.size() << " errors, first: " << errors.front();
}

TEST(Sr, EmptySegmentsAreInNeitherSegNorSr) {
  const std::string dir = test::temp_dir("dicomout_sr_empty");
  auto scan = test_support::make_scan(dir, 0);
  for (auto& v : scan.lesions.data) {
    if (v == labels::kSolid) v = labels::kGroundGlass;  // a scan without solid lesion
  }
  const SegWriteResult seg =
      write_dicom_seg(scan.ct.geom, scan.lungs, scan.lesions, scan.series, dir + "/seg.dcm");
  ASSERT_EQ(seg.segments.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(seg.segments[i].number, i + 1);  // 1..n
  EXPECT_EQ(seg.segments[3].tracking_id, "ground_glass");
  DcmFileFormat sf;
  ASSERT_TRUE(sf.loadFile((dir + "/seg.dcm").c_str()).good());
  DcmSequenceOfItems* items = nullptr;
  ASSERT_TRUE(sf.getDataset()->findAndGetSequence(DCM_SegmentSequence, items).good());
  EXPECT_EQ(items->card(), 4u);  // no segment declared without frames
  EXPECT_EQ(str(*sf.getDataset(), DCM_SegmentsOverlap), "YES");  // lesions lie inside lungs

  const std::vector<SrRegion> regions = {region("lungs", 4000, 300, 0), region("right", 2100, 200, 0),
                                         region("left", 1900, 100, 0)};
  const SrWriteResult r = write_dicom_sr(scan.ct.geom, scan.series, seg, regions, dir + "/sr.dcm");
  EXPECT_EQ(r.measurement_groups, 5u);  // 4 segments + both lungs
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile((dir + "/sr.dcm").c_str()).good());
  std::vector<Num> nums;
  std::vector<std::pair<std::string, int>> segs;
  walk(*ff.getDataset(), nums, segs);
  std::vector<int> order;
  for (const auto& p : segs) order.push_back(p.second);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

TEST(Sr, RefusesInputWithoutDicomSource) {
  const std::string dir = test::temp_dir("dicomout_sr_nifti");
  auto scan = test_support::make_scan(dir, 0);
  scan.series.files.clear();
  EXPECT_THROW(write_dicom_sr(scan.ct.geom, scan.series, SegWriteResult{}, {}, dir + "/sr.dcm"),
               Error);
}

}  // namespace
}  // namespace lungvol::dicomout
