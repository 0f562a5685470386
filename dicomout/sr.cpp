#include "dicomout/sr.hpp"

#include <cmath>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/cmr/init.h>
#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <dcmtk/dcmsr/dsrimgvl.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "dicomout/source.hpp"

namespace lungvol::dicomout {
namespace {

using Groups = TID1500_MeasurementReport::TID1411_Measurements;
using Value = Groups::MeasurementValue;

void check(const OFCondition& c, const std::string& path, const std::string& what) {
  if (c.bad()) {
    throw Error(ExitCode::kOutput,
                "cannot write DICOM SR '" + path + "': " + what + " (" + c.text() + ")");
  }
}

DSRCodedEntryValue coded(const Code& c) {
  return DSRCodedEntryValue(c.value.c_str(), c.scheme.c_str(), c.meaning.c_str());
}

// DS: at most 16 characters.
std::string ds(double v) {
  if (std::abs(v) < 1e-12) v = 0;
  char buf[64];
  for (int prec = 10; prec > 3; --prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::string(buf).size() <= 16) break;
  }
  return buf;
}

struct Measure {
  Code concept;
  double value;
  Code unit;
};

// The measures of one lung region, in report order.
std::vector<Measure> lung_measures(const SrRegion& r) {
  const auto& v = r.volumes;
  std::vector<Measure> m = {
      {codes::volume(), v.volume_ml, codes::unit_ml()},
      {codes::lesion_volume(), v.lesion_ml, codes::unit_ml()},
      {codes::ggo_volume(), v.ggo_ml, codes::unit_ml()},
      {codes::solid_volume(), v.solid_ml, codes::unit_ml()},
      {codes::lesion_percent(), v.lesion_pct, codes::unit_percent()},
      {codes::ggo_percent(), v.ggo_pct, codes::unit_percent()},
      {codes::solid_percent(), v.solid_pct, codes::unit_percent()},
  };
  const auto& d = r.density;
  if (d.empty) return m;
  m.push_back({codes::mean_attenuation(), d.mean_hu, codes::unit_hu()});
  m.push_back({codes::median_attenuation(), d.median_hu, codes::unit_hu()});
  m.push_back({codes::sd_attenuation(), d.sd_hu, codes::unit_hu()});
  for (const auto& [q, hu] : d.percentiles) {
    if (std::abs(q - 15.0) < 1e-9) m.push_back({codes::percentile15_density(), hu, codes::unit_hu()});
  }
  for (const auto& [threshold, pct] : d.laa_pct) {
    if (std::abs(threshold + 950.0) < 1e-9) {
      m.push_back({codes::laa950_percent(), pct, codes::unit_percent()});
    }
  }
  m.push_back({codes::haa_percent(), d.haa_pct, codes::unit_percent()});
  m.push_back({codes::lung_mass(), d.mass_g, codes::unit_gram()});
  return m;
}

const SrRegion* find_region(const std::vector<SrRegion>& regions, const std::string& name) {
  for (const auto& r : regions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string generate_uid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

}  // namespace

SrWriteResult write_dicom_sr(const Geometry& g, const io::SeriesInfo& source,
                             const SegWriteResult& seg, const std::vector<SrRegion>& regions,
                             const std::string& path, const SrOptions& options) {
  io::init_dcmtk();  // DCMTK's own log lines stay off stderr
  if (!has_dicom_source(source, g)) {
    throw Error(ExitCode::kInput,
                "cannot write DICOM SR '" + path +
                    "': the CT was not read from DICOM; the report needs the source series");
  }
  // DCMTK's context-group code lists are static maps filled on first use without a lock:
  // fill them once before two threads (batch --jobs) build reports at the same time.
  static std::once_flag context_groups;
  std::call_once(context_groups, [] { CMR_ContentMappingResource::initializeAllContextGroups(); });
  std::optional<SourceSlices> own;
  const SourceSlices& src =
      options.source_slices ? *options.source_slices : own.emplace(read_source_slices(source, g));
  SrWriteResult result;
  result.path = path;

  TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
  check(report.setLanguage(CID5000_Languages::English, CID5001_Countries::UnitedStates), path, "language");
  check(report.getObservationContext().addDeviceObserver(
            generate_uid().c_str(), options.software_name.c_str(), options.software_name.c_str(),
            options.software_name.c_str()),
        path, "observer");
  check(report.addProcedureReported(CMR_CID100::CTUnspecifiedBodyRegion), path, "procedure");
  // No TID 1600 image library (optional): the CT instances are listed in the evidence sequence
  // and each group names the source series.
  const std::string algorithm_version = options.software_version;
  auto add_group = [&](const SegmentSummary& segment, const Code& finding, const Code& site,
                       const CID244e_Laterality& laterality, const std::vector<Measure>& measures) {
    check(report.addVolumetricROIMeasurements(), path, "measurement group");
    Groups& grp = report.getVolumetricROIMeasurements();
    check(grp.setTrackingIdentifier(segment.label.c_str()), path, "tracking identifier");
    check(grp.setTrackingUniqueIdentifier(segment.tracking_uid.c_str()), path, "tracking uid");
    check(grp.setFinding(coded(finding)), path, "finding");
    check(grp.addFindingSite(coded(site), laterality), path, "finding site");
    DSRImageReferenceValue ref(UID_SegmentationStorage, seg.sop_instance_uid.c_str());
    ref.getSegmentList().addItem(segment.number);
    check(grp.setReferencedSegment(ref), path, "referenced segment");
    check(grp.setSourceSeriesForSegmentation(src.series_uid.c_str()), path, "source series");
    for (const Measure& m : measures) {
      check(grp.addMeasurement(coded(m.concept), Value(ds(m.value).c_str(), coded(m.unit))), path,
            "measurement " + m.concept.meaning);
      check(grp.getMeasurement().setAlgorithmIdentification(options.software_name.c_str(),
                                                            algorithm_version.c_str()),
            path, "algorithm identification");
      ++result.measurements;
    }
    ++result.measurement_groups;
  };

  // One group per SEG segment, in the SEG's order (viewers such as Slicer's
  // QuantitativeReporting pair groups and segments by position); empty segments are in neither.
  const SrRegion* right = find_region(regions, "right");
  const SrRegion* left = find_region(regions, "left");
  const SrRegion* lungs = find_region(regions, "lungs");
  const double voxel_ml = g.voxel_volume_ml();
  for (const SegmentSummary& segment : seg.segments) {
    const std::string& id = segment.tracking_id;
    if (id == "right_lung" && right) {
      add_group(segment, codes::lung(), codes::lung(), CID244e_Laterality(CID244_Laterality::Right),
                lung_measures(*right));
    } else if (id == "left_lung" && left) {
      add_group(segment, codes::lung(), codes::lung(), CID244e_Laterality(CID244_Laterality::Left),
                lung_measures(*left));
    } else if (id == "airway") {
      add_group(segment, codes::airway_structure(), codes::airway_structure(), CID244e_Laterality(),
                {{codes::volume(), static_cast<double>(segment.voxels) * voxel_ml, codes::unit_ml()}});
    } else if (id == "ground_glass" && lungs) {
      add_group(segment, codes::ground_glass_opacity(), codes::lung(), CID244e_Laterality(),
                {{codes::volume(), lungs->volumes.ggo_ml, codes::unit_ml()},
                 {codes::ggo_percent(), lungs->volumes.ggo_pct, codes::unit_percent()}});
    } else if (id == "solid" && lungs) {
      add_group(segment, codes::lesion(), codes::lung(), CID244e_Laterality(),
                {{codes::volume(), lungs->volumes.solid_ml, codes::unit_ml()},
                 {codes::solid_percent(), lungs->volumes.solid_pct, codes::unit_percent()}});
    } else {
      throw Error(ExitCode::kOutput, "cannot write DICOM SR '" + path + "': no measurements for "
                                     "segment '" + segment.label + "'");
    }
  }
  if (lungs) {
    // Both lungs are two segments; TID 1411 references one, so this group is TID 1501.
    check(report.addIndividualMeasurements(), path, "measurement group");
    auto& grp = report.getIndividualMeasurements();
    check(grp.setTrackingIdentifier("Both lungs"), path, "tracking identifier");
    check(grp.setTrackingUniqueIdentifier(generate_uid().c_str()), path, "tracking uid");
    check(grp.setFinding(coded(codes::lung())), path, "finding");
    for (const Measure& m : lung_measures(*lungs)) {
      check(grp.addMeasurement(coded(m.concept), Value(ds(m.value).c_str(), coded(m.unit))), path,
            "measurement " + m.concept.meaning);
      ++result.measurements;
    }
    ++result.measurement_groups;
  }
  if (result.measurement_groups == 0) {
    throw Error(ExitCode::kOutput, "cannot write DICOM SR '" + path + "': no lung regions");
  }

  DSRDocument doc(DSRTypes::DT_EnhancedSR);
  check(doc.setTreeFromRootTemplate(report, OFTrue /*expand included templates*/), path, "document tree");
  DcmDataset& first = *src.files.front()->getDataset();
  auto copy = [&](const DcmTagKey& tag,
                  OFCondition (DSRDocument::*setter)(const OFString&, const OFBool)) {
    OFString v;
    first.findAndGetOFStringArray(tag, v);
    if (!v.empty()) (doc.*setter)(v, OFFalse);
  };
  check(doc.createNewSeriesInStudy(src.study_uid.c_str()), path, "series");
  copy(DCM_PatientName, &DSRDocument::setPatientName);
  copy(DCM_PatientID, &DSRDocument::setPatientID);
  copy(DCM_PatientBirthDate, &DSRDocument::setPatientBirthDate);
  copy(DCM_PatientSex, &DSRDocument::setPatientSex);
  copy(DCM_StudyDate, &DSRDocument::setStudyDate);
  copy(DCM_StudyTime, &DSRDocument::setStudyTime);
  copy(DCM_StudyID, &DSRDocument::setStudyID);
  copy(DCM_AccessionNumber, &DSRDocument::setAccessionNumber);
  copy(DCM_ReferringPhysicianName, &DSRDocument::setReferringPhysicianName);
  copy(DCM_StudyDescription, &DSRDocument::setStudyDescription);
  std::string description = options.series_description;
  if (!options.protocol.empty()) description += " (protocol " + options.protocol + ")";
  if (description.size() > 64) description.resize(64);  // LO
  check(doc.setSeriesDescription(description.c_str()), path, "series description");
  check(doc.setSeriesNumber(std::to_string(options.series_number).c_str()), path, "series number");
  check(doc.setInstanceNumber("1"), path, "instance number");
  check(doc.setManufacturer(options.software_name.c_str()), path, "manufacturer");
  check(doc.setSoftwareVersions(options.software_version.c_str()), path, "software version");
  // Evidence: every referenced instance (CT slices and the SEG).
  auto& evidence = doc.getCurrentRequestedProcedureEvidence();
  for (const std::string& uid : src.instance_uids) {
    check(evidence.addItem(src.study_uid.c_str(), src.series_uid.c_str(),
                           src.sop_class_uid.c_str(), uid.c_str()),
          path, "evidence");
  }
  check(evidence.addItem(seg.study_instance_uid.c_str(), seg.series_instance_uid.c_str(),
                         UID_SegmentationStorage, seg.sop_instance_uid.c_str()),
        path, "evidence");
  auto& schemes = doc.getCodingSchemeIdentification();
  check(schemes.addItem(kPrivateScheme), path, "coding scheme");
  check(schemes.setCodingSchemeName("lungvol private measurement codes"), path, "coding scheme");
  check(schemes.setCodingSchemeResponsibleOrganization("lungvol project"), path,
        "coding scheme");

  DcmFileFormat file;
  check(doc.write(*file.getDataset()), path, "encode");
  write_file_atomic(path, [&](const std::string& tmp) {
    check(file.saveFile(tmp.c_str(), EXS_LittleEndianExplicit), path, "save");
  });
  OFString uid;
  doc.getSOPInstanceUID(uid);
  result.sop_instance_uid = uid.c_str();
  doc.getSeriesInstanceUID(uid);
  result.series_instance_uid = uid.c_str();
  return result;
}

}  // namespace lungvol::dicomout
