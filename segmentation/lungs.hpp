#pragma once
// Lung segmentation: right and left lung (dense lesions included), trachea and main bronchi.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "segmentation/lung_base.hpp"
#include "core/protocol.hpp"

namespace lungvol::seg {

struct LungSegmentation {
  LabelImage lungs;  // labels::kRightLung / kLeftLung / kAirway
  std::vector<std::string> warnings;
  double airway_ml = 0;
  double dense_added_ml = 0;  // volume brought back into the lungs by hole filling and closing
  double costal_added_ml = 0;  // of which by the costal (rib cage) completion
  // Dense tissue between aerated lung and ribs, beyond the normal pleural gap, that was not
  // added (below the diaphragm limit or not connected): what may be missing from the lungs.
  double costal_left_out_ml = 0;
  // Bays of tissue the rolling ball cannot enter that lie below the diaphragm limit or at the
  // edge of the field of view and were left out (the domes' creases, bowel, the chest wall cut
  // by the image border, or a lesion there).
  double bays_left_out_ml = 0;
  // Tissue admitted from bays away from the chest wall (against the heart, the mediastinum or
  // the diaphragm) as lesion-shaped blobs: a paracardiac or basal consolidation, or, in a chest
  // so small that the rolling ball bridges the heart's own indentation, the heart's border. A
  // reviewer checks large values.
  double blobs_added_ml = 0;
  bool lungs_touching = false;  // the lungs formed one component and were split
  // The shape of each lung's base in the final mask (segmentation/lung_base.hpp).
  LungBase right_base, left_base;
};

// Throws Error(kProcessing) when two lungs cannot be found.
LungSegmentation segment_lungs(const CtImage& ct, const LungParams& params);

// Right and left lung from a mask holding both: two regions on either side of `midline_x`
// (LPS mm), or one region split by erosion and regrowth (`touching` set). Regions smaller than
// min_lung_ml are ignored. Throws Error(kProcessing) when two lungs cannot be told apart.
// `discarded_ml`, when given, receives the volume of every region of at least min_lung_ml that
// was not taken as a lung (a lung cut in two by a bad slice, a large pneumothorax, bowel gas).
LabelImage separate_left_right(const MaskImage& mask, double midline_x, double min_lung_ml,
                               bool* touching, std::vector<double>* discarded_ml = nullptr);

// Index step along k that points to the patient's head (+1 or -1), from the direction matrix.
int superior_step(const Geometry& g);

}  // namespace lungvol::seg
