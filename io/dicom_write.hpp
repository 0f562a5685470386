#pragma once
// Writes a CtImage as a CT Image Storage series, one file per slice (Explicit VR Little Endian).
// Pixel encoding: signed 16-bit, RescaleSlope 1, RescaleIntercept 0 (stored value = HU), unless
// `unsigned_pixels` asks for unsigned 16-bit with RescaleIntercept -1024 (stored = HU + 1024,
// HU below -1024 clamped) to exercise readers on the other common vendor encoding.
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::io {

struct CtSeriesMeta {
  std::string patient_id = "ANONYMOUS";
  std::string patient_name = "Anonymous";
  std::string study_uid;              // generated when empty
  std::string series_uid;             // generated when empty
  std::string frame_of_reference_uid;  // generated when empty
  std::string study_date;             // YYYYMMDD, "" = empty (type 2)
  std::string study_time;             // HHMMSS
  std::string study_description;
  std::string series_description;
  std::string kernel;                 // ConvolutionKernel
  std::string modality = "CT";
  std::string image_type = "ORIGINAL\\PRIMARY\\AXIAL";
  std::string manufacturer = "lungvol";
  int series_number = 1;
  double slice_thickness_mm = 0;  // 0 = the slice spacing
  bool unsigned_pixels = false;
  std::string file_prefix = "IM";  // files IM0001, IM0002, ... (no extension)
};

std::string generate_dicom_uid();

// Writes one file per slice k (InstanceNumber k+1) into `dir` (created if needed), each file
// atomically. Returns the paths written, in slice order. Throws Error(kOutput).
std::vector<std::string> write_ct_series(const CtImage& image, const std::string& dir,
                                         const CtSeriesMeta& meta = {});

}  // namespace lungvol::io
