#pragma once
// The source CT instances a SEG/SR references: one per image slice, matched by position.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "io/series.hpp"

class DcmFileFormat;

namespace lungvol::dicomout {

struct SourceSlice {
  std::string sop_instance_uid;
  std::string sop_class_uid;
  int frame_number = 0;  // 1-based frame of a multi-frame source; 0 = single-frame instance
  std::array<double, 3> ipp{0, 0, 0};  // the source frame's ImagePositionPatient (LPS mm)
};

struct SourceSlices {
  std::vector<SourceSlice> slices;          // index = image slice k
  std::vector<std::string> instance_uids;   // distinct SOP instances, in slice order
  std::string sop_class_uid;                // of the source instances
  std::string study_uid, series_uid, frame_of_reference_uid, patient_id;
  std::shared_ptr<DcmFileFormat> first_dataset;  // header of the first file (patient/study)
  std::vector<std::shared_ptr<DcmFileFormat>> files;  // headers of every source file
};

// Reads the headers of `source.files` (pixel data stays on disk) and finds, for every slice k of
// `g`, the instance (and frame) at that position: within 1 % of the voxel size along the slice
// normal, and in-plane within the reader's tilt allowance (core/orientation.hpp), so every
// series the reader accepts gets its SEG/SR. Throws Error(kOutput) when a slice has none (e.g.
// the CT was resampled with --resample-nonuniform).
SourceSlices read_source_slices(const io::SeriesInfo& source, const Geometry& g);

}  // namespace lungvol::dicomout
