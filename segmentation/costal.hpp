#pragma once
// Costal completion: dense lung against the chest wall, recovered from the rib cage.
//
// Consolidated lung and chest-wall muscle share their Hounsfield units, so the costal pleura
// behind a consolidation cannot be found by density. It can be found by anatomy: the parietal
// pleura lines the inner surface of the ribs at a small, slowly varying distance (pleura,
// endothoracic fascia, innermost intercostal muscle, extrapleural fat). In every axial slice,
// rays from the lung's axis measure, per direction, the distance from the outermost aerated lung
// to the inner surface of the nearest rib (the "gap"). Where aerated lung meets the wall the gap
// is the normal pleural gap; where a consolidation lies against the wall the aerated lung stops
// short and the gap is larger. The normal gap is interpolated over the (direction, height) map
// from the rays where it is observed, and the tissue between the aerated lung and the rib, less
// the normal gap, is lung. Nothing limits the lesion's size: the ribs bound it, not a rolling
// ball. The spine and sternum (bone near the body midline) are not used: the aorta, oesophagus
// and azygos vein lie between them and the lung.
#include <cstdint>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {

// CT, labels and outside mask are read in place on their own (larger) grid, at the offset of
// `box`; the lung, the floor and the result are on the box's grid.
struct CostalInput {
  const CtImage* ct = nullptr;
  const LabelImage* labels = nullptr;  // lungs and airway before completion
  const MaskImage* outside = nullptr;  // outside the body
  Box box;
  const MaskImage* lung = nullptr;   // this lung, aerated with enclosed holes filled (box grid)
  std::uint8_t side = 0;             // labels::kRightLung or kLeftLung
  double midline_x = 0;              // LPS x of the body midline
  // Lowest height (index k times the superior step, so larger is higher) a voxel of the
  // column may have to be filled: the diaphragm limit. One value per (i, j) of the box; columns
  // that must not be filled hold INT32_MAX.
  const std::vector<std::int32_t>* floor = nullptr;
  int superior = 1;  // +1 when k grows towards the head
};

struct CostalResult {
  MaskImage fill;           // voxels to add to the lung (box grid)
  // Voxels beyond the interpolated pleural surface (farther out than the normal gap from the
  // rib wall, plus a tolerance) on every ray that has a wall: chest wall, never lung. The
  // rolling-ball bays use it (box grid).
  MaskImage beyond_pleura;
  double gap_median_mm = 0;  // the scan's normal pleural gap (rib inner surface to aerated lung)
  std::size_t rays = 0;      // rays that met aerated lung and then a rib
  std::size_t abnormal_rays = 0;  // rays whose gap exceeds the normal gap by more than the tolerance
  // Tissue on abnormal rays between the aerated lung and the pleural surface that could not be
  // added (below the diaphragm limit, fat, or not connected): a measure of what may be missing.
  double left_out_ml = 0;
};

CostalResult costal_completion(const CostalInput& in, const LungParams& p);

}  // namespace lungvol::seg
