#pragma once
// Does the scan cover the whole lungs? Lungs cut by the volume's boundary (a scan starting
// below the apices, ending above the bases, or a field of view narrower than the chest) give
// volumes and proportions of part of the lungs only, with nothing else to show it.
//
// Measured on the canonical axial grid (core/orientation.hpp): index axes run right to left,
// anterior to posterior and feet to head, so the faces of the volume are named anatomically
// whatever order the series was stored in.
#include <array>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::vol {

// The six faces of the volume, in the order of CoverageSide::boundary_mm2.
const std::array<const char*, 6>& volume_face_names();  // right, left, anterior, posterior,
                                                        // inferior, superior

struct CoverageSide {
  double surface_mm2 = 0;                 // lung surface: voxel faces between lung and not-lung
                                          // (or the outside of the volume), in mm2
  std::array<double, 6> boundary_mm2{};   // of it, lying on each face of the volume
  double boundary_mm2_total() const;
  double boundary_fraction() const;       // boundary / surface (0 when no lung)
  std::vector<std::string> cut_by() const;  // names of the faces with lung on them
};

struct Coverage {
  CoverageSide lungs, right, left;  // both lungs; each lung (label 1 / 2; the airway is not lung)
  bool complete() const { return lungs.cut_by().empty(); }
  // One warning line when incomplete, "" otherwise.
  std::string warning() const;
};

// `lungs`: the lung label map on the canonical grid (identity direction axis order).
Coverage measure_coverage(const LabelImage& lungs);

}  // namespace lungvol::vol
