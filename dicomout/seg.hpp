#pragma once
// DICOM Segmentation (BINARY) of lungvol's label maps, overlaying the source CT series.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/version.hpp"
#include "dicomout/codes.hpp"
#include "io/series.hpp"

namespace lungvol::dicomout {

struct SourceSlices;  // dicomout/source.hpp

// The five segment definitions, in this order. A SEG holds only the non-empty ones (a segment
// declared without frames makes viewers drop it and the SR fail to load), numbered 1..n in this
// order; SegWriteResult::segments lists them in SEG order, and the SR's measurement groups follow
// the same order (docs/dicom-outputs.md). These constants name the definitions, not the numbers
// in a particular SEG.
inline constexpr std::uint16_t kSegRightLung = 1;
inline constexpr std::uint16_t kSegLeftLung = 2;
inline constexpr std::uint16_t kSegAirway = 3;
inline constexpr std::uint16_t kSegGroundGlass = 4;
inline constexpr std::uint16_t kSegSolid = 5;
inline constexpr std::uint16_t kSegmentCount = 5;

struct SegmentDefinition {
  std::uint16_t number = 0;
  std::string label;        // SegmentLabel
  std::string description;  // SegmentDescription
  std::string tracking_id;  // TrackingID (also the SR measurement group's tracking identifier)
  Code category;
  Code type;
  std::vector<Code> type_modifiers;  // laterality
  Code anatomic_region;
  std::vector<Code> anatomic_region_modifiers;
  std::array<std::uint8_t, 3> rgb{0, 0, 0};  // written as RecommendedDisplayCIELabValue
  bool from_lesion_map = false;  // which label map holds it
  std::uint8_t label_value = 0;  // value in that map
};

// The five segments, index = number - 1.
const std::vector<SegmentDefinition>& segment_definitions();

struct SegOptions {
  std::string software_name = kSoftwareName;
  std::string software_version = kSoftwareVersion;
  std::string series_description = "lungvol lungs, airway and lesions";
  int series_number = 9901;
  // The source headers, when the caller has read them already (read_source_slices): the SEG
  // and the SR of one scan then parse every source file once, not twice.
  const SourceSlices* source_slices = nullptr;
};

struct SegmentSummary {
  std::uint16_t number = 0;
  std::string label;
  std::string tracking_id;
  std::string tracking_uid;
  std::size_t voxels = 0;
  std::size_t frames = 0;
};

struct SegWriteResult {
  std::string path;
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::string study_instance_uid;
  std::string frame_of_reference_uid;
  std::string source_series_uid;
  std::size_t frames = 0;
  std::vector<SegmentSummary> segments;  // all five, by number
};

// True when `source` names DICOM files matching the image's slices (one file per slice, or one
// multi-frame file); NIfTI/NRRD inputs have none and get no DICOM outputs.
bool has_dicom_source(const io::SeriesInfo& source, const Geometry& ct_geometry);

// Writes `path` (atomically). `lungs` / `lesions` are label maps on `ct_geometry` (core/labels.hpp
// values); `source.files` are the CT files in slice order (io::LoadedCt::series). Patient, study
// and frame of reference are copied from the first source file; every frame references its
// source slice. Throws Error(kInput) without a DICOM source, Error(kOutput) on any other failure.
SegWriteResult write_dicom_seg(const Geometry& ct_geometry, const LabelImage& lungs,
                               const LabelImage& lesions, const io::SeriesInfo& source,
                               const std::string& path, const SegOptions& options = {});

// The lesion change map of a follow-up (registration/change_map.hpp, labels::kResolved ..
// kRegressed) as a SEG on the baseline series: one segment per change class with voxels, numbered
// 1..n in label order (an empty class is not declared, as in write_dicom_seg; SegWriteResult lists
// the declared ones), segments not overlapping. `change` lies on `ct_geometry`, the baseline CT's
// grid; every frame references its baseline slice. Error(kOutput) when every class is empty (no
// lesion at either visit: callers write no SEG then), else as write_dicom_seg.
SegWriteResult write_change_map_seg(const Geometry& ct_geometry, const LabelImage& change,
                                    const io::SeriesInfo& source, const std::string& path,
                                    const SegOptions& options);
// The five change segment definitions, in label order (number = label value).
const std::vector<SegmentDefinition>& change_segment_definitions();

// What a segment of a SEG stands for. Found from its property type code (lung, trachea,
// ground-glass opacity, lesion, consolidation), laterality modifier and label, never from its
// number: 3D Slicer, OHIF and ITK-SNAP number segments in the order they were made.
enum class SegmentMeaning {
  kRightLung, kLeftLung,
  kLung,         // a lung segment without side: split into right and left like a binary mask
  kAirway,
  kGroundGlass, kSolid,
  kLesion,       // a lesion segment not split into ground-glass and solid: the protocol splits it
  kUnknown       // ignored (heart, vessels, ...)
};
SegmentMeaning segment_meaning(const std::string& label, const Code& property_type,
                               const std::vector<Code>& type_modifiers);
const char* segment_meaning_name(SegmentMeaning m);

struct SegReadResult {
  LabelImage lungs;    // core/labels.hpp values; kRightLung for every voxel when lungs_binary
  LabelImage lesions;  // kGroundGlass / kSolid; kGroundGlass for every voxel when lesions_binary
  bool lungs_binary = false;
  bool lesions_binary = false;
  std::vector<std::string> notes;  // one line per segment: how it was read
};

// Reads a BINARY SEG whose frames lie on `ct_geometry`'s slices (placed by
// ImagePositionPatient; same rows, columns and orientation). Throws Error(kInput) naming the
// file and the problem.
SegReadResult read_dicom_seg(const std::string& path, const Geometry& ct_geometry);

}  // namespace lungvol::dicomout
