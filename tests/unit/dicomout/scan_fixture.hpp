#pragma once
// A tiny CT series on disk with known label maps, for the SEG / SR tests.
#include <cmath>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/labels.hpp"
#include "io/dicom_write.hpp"
#include "io/series.hpp"

namespace lungvol::dicomout::test_support {

struct Scan {
  CtImage ct;
  LabelImage lungs, lesions;
  io::CtSeriesMeta meta;
  io::SeriesInfo series;
  std::vector<std::string> files;
};

// variant 0: axial identity grid 20 x 13 x 7; variant 1: grid rotated 30 degrees about z and
// tilted, 17 x 11 x 6. Right lung = columns i < nx/2, left lung = the rest, both inside an
// ellipse; airway = a 2x2 column on slices 0-1; ground-glass = a ball in the right lung; solid =
// a box in the left lung; the last slice is empty of everything.
inline Scan make_scan(const std::string& dir, int variant) {
  Scan s;
  Geometry g;
  if (variant == 0) {
    g.size = {20, 13, 7};
    g.spacing = {0.8, 0.7, 2.5};
    g.origin = {-8.0, -4.5, -30.0};
  } else {
    g.size = {17, 11, 6};
    g.spacing = {0.9, 0.9, 1.25};
    g.origin = {12.5, -7.25, 40.0};
    const double c = std::cos(0.5235987755982988), sn = std::sin(0.5235987755982988);
    // Columns: row direction, column direction, normal (orthonormal, right-handed).
    const double t = 0.2, ct = std::cos(t), st = std::sin(t);
    g.direction = {c, -sn * ct, sn * st, sn, c * ct, -c * st, 0, st, ct};
  }
  s.ct = CtImage(g, -1000);
  s.lungs = LabelImage(g, labels::kBackground);
  s.lesions = LabelImage(g, labels::kNoLesion);
  const auto nx = g.size[0], ny = g.size[1], nz = g.size[2];
  for (std::size_t k = 0; k + 1 < nz; ++k)
    for (std::size_t j = 0; j < ny; ++j)
      for (std::size_t i = 0; i < nx; ++i) {
        const double u = (static_cast<double>(i) - (nx - 1) / 2.0) / (nx / 2.0);
        const double v = (static_cast<double>(j) - (ny - 1) / 2.0) / (ny / 2.0);
        const std::size_t idx = g.index(i, j, k);
        if (u * u + v * v < 0.8) {
          s.lungs[idx] = i < nx / 2 ? labels::kRightLung : labels::kLeftLung;
          s.ct[idx] = -850;
        }
        if (k < 2 && (i == nx / 2 || i == nx / 2 - 1) && (j == 1 || j == 2)) {
          s.lungs[idx] = labels::kAirway;
        }
        const double di = static_cast<double>(i) - nx / 4.0, dj = static_cast<double>(j) - ny / 2.0,
                     dk = static_cast<double>(k) - 2.0;
        if (s.lungs[idx] == labels::kRightLung && di * di + dj * dj + 4 * dk * dk < 6.0) {
          s.lesions[idx] = labels::kGroundGlass;
          s.ct[idx] = -500;
        }
        if (s.lungs[idx] == labels::kLeftLung && i >= 3 * nx / 4 - 1 && i <= 3 * nx / 4 &&
            j >= ny / 2 - 1 && j <= ny / 2 + 1 && k >= 1 && k <= 3) {
          s.lesions[idx] = labels::kSolid;
          s.ct[idx] = 20;
        }
      }
  s.meta.patient_id = "LV-TEST-01";
  s.meta.patient_name = "Test^Dicomout";
  s.meta.study_uid = io::generate_dicom_uid();
  s.meta.series_uid = io::generate_dicom_uid();
  s.meta.frame_of_reference_uid = io::generate_dicom_uid();
  s.meta.study_date = "20200415";
  s.meta.study_time = "101500";
  s.meta.series_description = "synthetic chest CT";
  s.files = io::write_ct_series(s.ct, dir + "/ct", s.meta);
  s.series.series_instance_uid = s.meta.series_uid;
  s.series.study_instance_uid = s.meta.study_uid;
  s.series.patient_id = s.meta.patient_id;
  s.series.study_date = s.meta.study_date;
  s.series.modality = "CT";
  s.series.dicom = true;
  s.series.files = s.files;
  s.series.n_files = s.files.size();
  s.series.n_slices = nz;
  return s;
}

}  // namespace lungvol::dicomout::test_support
