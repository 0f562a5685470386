#pragma once
// Masks given instead of computed (a reviewer's corrections from 3D Slicer, ITK-SNAP or OHIF):
// loaded onto the CT grid, checked, and turned into lungvol's label maps.
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::pipeline {

struct GivenMask {
  std::string path;
  std::string sha256;
  LabelImage labels;  // on the CT grid, lungvol's label values
  bool labelled = false;  // the file carried classes (left/right, ground-glass/solid)
  std::vector<std::string> warnings;
};

// Puts a label map onto the CT grid: the same grid as is; the same physical box on another
// grid by nearest neighbour (with a warning); anything else is refused (Error kInput).
LabelImage to_ct_grid(const LabelImage& mask, const Geometry& ct, const std::string& path,
                      std::vector<std::string>& warnings);

// Lungs: binary (0/1, split into right and left here) or labelled with lungvol's values
// (1 right, 2 left, 3 airway). NIfTI / NRRD / MHA, or a DICOM SEG (lungvol's or another tool's:
// segments are matched by code and label, see dicomout::segment_meaning).
GivenMask load_lungs_mask(const std::string& path, const Geometry& ct, double min_lung_ml);
// Lesions: binary (0/1, split into ground-glass and solid by the protocol) or labelled
// (1 ground-glass, 2 solid, taken as they are).
GivenMask load_lesions_mask(const std::string& path, const Geometry& ct);

}  // namespace lungvol::pipeline
