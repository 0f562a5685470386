#pragma once
// Internal to lungvol::io: discovery that keeps the parsed headers so load_ct decodes from
// them without parsing the files a second time.
#include <array>
#include <string>
#include <vector>

#include "io/dicom_internal.hpp"
#include "io/series.hpp"

namespace lungvol::io::detail {

// Geometry tolerances (documented in docs/dicom-reading.md).
constexpr double kOrientationTol = 1e-3;   // IOP component difference treated as equal
constexpr double kPixelSpacingTol = 1e-3;  // mm
constexpr double kDuplicateTol = 1e-3;     // mm along the normal: same position
constexpr double kSpacingRelTol = 0.01;    // step deviation allowed, fraction of the step...
constexpr double kSpacingAbsTol = 0.01;    // ...but at least this many mm
// Gantry tilt / shear and oblique orientations: core/orientation.hpp (kTiltTolerance), shared
// with the SEG/SR writer.

struct SliceRef {
  std::size_t header = 0;  // index into FullDiscovery::headers
  std::size_t frame = 0;
  double s = 0;            // position along the slice normal, mm
};

struct SeriesRecord {
  SeriesInfo info;
  std::vector<SliceRef> slices;  // geometric order (ascending along the normal)
  std::array<double, 3> row{1, 0, 0}, col{0, 1, 0}, normal{0, 0, 1};
  std::array<double, 3> origin{0, 0, 0};
  double step = 1.0;  // slice spacing (median step when non-uniform)
  bool nonuniform_only = false;  // the only problem is uneven spacing: resampling can fix it
  std::string nonuniform_problem;
  // The same instance (SOPInstanceUID and frame) stored again at the same position: decoded
  // too, and the series is refused unless its pixels equal those of slices[kept].
  struct Duplicate {
    SliceRef copy;
    std::size_t kept = 0;
  };
  std::vector<Duplicate> duplicates;
};

struct FullDiscovery {
  std::vector<Header> headers;
  std::vector<SeriesRecord> series;
  std::vector<SkippedFile> skipped;
};

FullDiscovery discover_full(const std::string& path);
bool is_lung_kernel(const std::string& kernel);

}  // namespace lungvol::io::detail
