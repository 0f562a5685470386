#include "io/dicom_write.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace lungvol::io {
namespace {

// DS values are at most 16 characters: use the most precision that fits.
std::string ds(double v) {
  if (std::abs(v) < 1e-9) v = 0;
  char buf[64];
  for (int prec = 12; prec > 3; --prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::string(buf).size() <= 16) break;
  }
  return buf;
}

std::string ds3(double a, double b, double c) { return ds(a) + "\\" + ds(b) + "\\" + ds(c); }

void put(DcmDataset& d, const DcmTagKey& tag, const std::string& value, const std::string& file) {
  const OFCondition c = d.putAndInsertString(tag, value.c_str());
  if (c.bad()) {
    throw Error(ExitCode::kOutput, "cannot write DICOM '" + file + "': " + c.text());
  }
}

}  // namespace

std::string generate_dicom_uid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

std::vector<std::string> write_ct_series(const CtImage& image, const std::string& dir,
                                         const CtSeriesMeta& meta_in) {
  const Geometry& g = image.geom;
  if (image.empty() || image.size() != g.voxel_count()) {
    throw Error(ExitCode::kOutput, "cannot write DICOM series to '" + dir + "': empty image");
  }
  if (g.size[0] > 65535 || g.size[1] > 65535) {
    throw Error(ExitCode::kOutput, "cannot write DICOM series to '" + dir + "': slice too large");
  }
  ensure_directory(dir);
  CtSeriesMeta meta = meta_in;
  if (meta.study_uid.empty()) meta.study_uid = generate_dicom_uid();
  if (meta.series_uid.empty()) meta.series_uid = generate_dicom_uid();
  if (meta.frame_of_reference_uid.empty()) meta.frame_of_reference_uid = generate_dicom_uid();

  const std::size_t nz = g.size[2];
  const std::size_t n_slice = g.slice_voxels();
  const double* d = g.direction.data();
  const std::string iop =
      ds(d[0]) + "\\" + ds(d[3]) + "\\" + ds(d[6]) + "\\" + ds(d[1]) + "\\" + ds(d[4]) + "\\" + ds(d[7]);
  const std::string thickness = ds(meta.slice_thickness_mm > 0 ? meta.slice_thickness_mm : g.spacing[2]);

  // UIDs are generated serially so the parallel writers share nothing mutable.
  std::vector<std::string> sop_uids(nz), paths(nz);
  for (std::size_t k = 0; k < nz; ++k) {
    sop_uids[k] = generate_dicom_uid();
    char name[32];
    std::snprintf(name, sizeof name, "%04zu", k + 1);
    paths[k] = dir + "/" + meta.file_prefix + name;
  }

  std::string first_error;
  const auto nzs = static_cast<std::ptrdiff_t>(nz);
#pragma omp parallel for schedule(dynamic)
  for (std::ptrdiff_t ks = 0; ks < nzs; ++ks) {
    const auto k = static_cast<std::size_t>(ks);
    try {
      DcmFileFormat file;
      DcmDataset& ds_ = *file.getDataset();
      const std::string& path = paths[k];
      const auto pos = g.to_physical(0, 0, static_cast<double>(k));
      const double location = pos[0] * d[2] + pos[1] * d[5] + pos[2] * d[8];
      put(ds_, DCM_SpecificCharacterSet, "ISO_IR 100", path);
      put(ds_, DCM_ImageType, meta.image_type, path);
      put(ds_, DCM_SOPClassUID, UID_CTImageStorage, path);
      put(ds_, DCM_SOPInstanceUID, sop_uids[k], path);
      put(ds_, DCM_StudyDate, meta.study_date, path);
      put(ds_, DCM_SeriesDate, meta.study_date, path);
      put(ds_, DCM_StudyTime, meta.study_time, path);
      put(ds_, DCM_AccessionNumber, "", path);
      put(ds_, DCM_Modality, meta.modality, path);
      put(ds_, DCM_Manufacturer, meta.manufacturer, path);
      put(ds_, DCM_ReferringPhysicianName, "", path);
      put(ds_, DCM_StudyDescription, meta.study_description, path);
      put(ds_, DCM_SeriesDescription, meta.series_description, path);
      put(ds_, DCM_PatientName, meta.patient_name, path);
      put(ds_, DCM_PatientID, meta.patient_id, path);
      put(ds_, DCM_PatientBirthDate, "", path);
      put(ds_, DCM_PatientSex, "", path);
      put(ds_, DCM_SliceThickness, thickness, path);
      put(ds_, DCM_KVP, "", path);
      if (!meta.kernel.empty()) put(ds_, DCM_ConvolutionKernel, meta.kernel, path);
      put(ds_, DCM_StudyInstanceUID, meta.study_uid, path);
      put(ds_, DCM_SeriesInstanceUID, meta.series_uid, path);
      put(ds_, DCM_StudyID, "1", path);
      put(ds_, DCM_SeriesNumber, std::to_string(meta.series_number), path);
      put(ds_, DCM_AcquisitionNumber, "1", path);
      put(ds_, DCM_InstanceNumber, std::to_string(k + 1), path);
      put(ds_, DCM_ImagePositionPatient, ds3(pos[0], pos[1], pos[2]), path);
      put(ds_, DCM_ImageOrientationPatient, iop, path);
      put(ds_, DCM_FrameOfReferenceUID, meta.frame_of_reference_uid, path);
      put(ds_, DCM_PositionReferenceIndicator, "", path);
      put(ds_, DCM_SliceLocation, ds(location), path);
      ds_.putAndInsertUint16(DCM_SamplesPerPixel, 1);
      put(ds_, DCM_PhotometricInterpretation, "MONOCHROME2", path);
      ds_.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(g.size[1]));
      ds_.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(g.size[0]));
      put(ds_, DCM_PixelSpacing, ds(g.spacing[1]) + "\\" + ds(g.spacing[0]), path);
      ds_.putAndInsertUint16(DCM_BitsAllocated, 16);
      ds_.putAndInsertUint16(DCM_BitsStored, 16);
      ds_.putAndInsertUint16(DCM_HighBit, 15);
      ds_.putAndInsertUint16(DCM_PixelRepresentation, meta.unsigned_pixels ? 0 : 1);
      put(ds_, DCM_RescaleIntercept, meta.unsigned_pixels ? "-1024" : "0", path);
      put(ds_, DCM_RescaleSlope, "1", path);
      put(ds_, DCM_RescaleType, "HU", path);

      const std::int16_t* src = image.data.data() + k * n_slice;
      std::vector<Uint16> pixels(n_slice);
      if (meta.unsigned_pixels) {
        std::transform(src, src + n_slice, pixels.begin(), [](std::int16_t hu) {
          return static_cast<Uint16>(std::max(0, hu + 1024));
        });
      } else {
        std::transform(src, src + n_slice, pixels.begin(),
                       [](std::int16_t hu) { return static_cast<Uint16>(hu); });
      }
      const OFCondition pc = ds_.putAndInsertUint16Array(DCM_PixelData, pixels.data(),
                                                         static_cast<unsigned long>(n_slice));
      if (pc.bad()) throw Error(ExitCode::kOutput, "cannot write DICOM '" + path + "': " + pc.text());

      write_file_atomic(path, [&](const std::string& tmp) {
        const OFCondition c = file.saveFile(tmp.c_str(), EXS_LittleEndianExplicit);
        if (c.bad()) {
          throw Error(ExitCode::kOutput, "cannot write DICOM '" + path + "': " + c.text());
        }
      });
    } catch (const std::exception& e) {
#pragma omp critical(lungvol_dicom_write_error)
      if (first_error.empty()) first_error = e.what();
    }
  }
  if (!first_error.empty()) throw Error(ExitCode::kOutput, first_error);
  return paths;
}

}  // namespace lungvol::io
