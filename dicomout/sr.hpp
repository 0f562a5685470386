#pragma once
// DICOM Enhanced SR (DCMTK picks the smallest SR class the tree fits), TID 1500 Measurement Report, with a scan's volumes and densitometry,
// referencing the SEG written by write_dicom_seg and the source CT series.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/version.hpp"
#include "densitometry/density.hpp"
#include "dicomout/seg.hpp"
#include "io/series.hpp"
#include "volumetry/volumes.hpp"

namespace lungvol::dicomout {

// One region's results ("lungs", "right", "left"; other names are ignored).
struct SrRegion {
  std::string name;
  vol::RegionVolumes volumes;
  dens::DensityMetrics density;
};

struct SrOptions {
  std::string software_name = kSoftwareName;
  std::string software_version = kSoftwareVersion;
  std::string protocol;  // "name version", recorded as the algorithm parameters
  std::string series_description = "lungvol measurement report";
  int series_number = 9902;
  const SourceSlices* source_slices = nullptr;  // as in SegOptions
};

struct SrWriteResult {
  std::string path;
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::size_t measurement_groups = 0;
  std::size_t measurements = 0;
};

// Groups (TID 1411, each referencing one SEG segment): right lung, left lung, ground-glass,
// solid; plus a TID 1501 group for both lungs. Throws Error(kInput) without a DICOM source,
// Error(kOutput) otherwise.
SrWriteResult write_dicom_sr(const Geometry& ct_geometry, const io::SeriesInfo& source,
                             const SegWriteResult& seg, const std::vector<SrRegion>& regions,
                             const std::string& path, const SrOptions& options = {});

}  // namespace lungvol::dicomout
