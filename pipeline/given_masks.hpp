#pragma once
// Masks given instead of computed (a reviewer's corrections from 3D Slicer, ITK-SNAP or OHIF):
// loaded onto the CT grid, checked, and turned into lungvol's label maps.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/orientation.hpp"
#include "core/protocol.hpp"
#include "segmentation/lesions.hpp"

namespace lungvol::pipeline {

struct GivenMask {
  std::string path;
  std::string sha256;
  LabelImage labels;  // on the CT's canonical grid (see `to_canonical`), lungvol's label values
  bool labelled = false;  // the file carried classes (left/right, ground-glass/solid)
  // Lungs: a binary mask that is one region (one lung, a region of interest) and cannot be
  // told apart into right and left. Its voxels carry label 1 (so the file written back is the
  // same binary mask); it is measured as `lungs`, with `right`, `left` and their zones empty.
  bool one_region = false;
  std::vector<std::string> warnings;
};

// What became of a given lesions mask's voxels, in mL (metrics.json segmentation.lesions_mask
// .use). A binary mask is limited to the lung voxels in the protocol's lesion band (split into
// ground glass and solid by HU): the rest is dropped and counted here. A labelled mask is
// counted as given; voxels whose HU contradicts their label are counted as questionable.
struct LesionsMaskUse {
  double painted_ml = 0;        // non-zero voxels of the mask
  double counted_ml = 0;        // counted as lesion
  double outside_lungs_ml = 0;  // dropped: not in a lung
  // binary masks, dropped:
  double below_band_ml = 0;  // HU below the lesion band (aerated lung)
  double above_band_ml = 0;  // HU at or above the band's upper bound
  // labelled masks, counted as given but questionable:
  double ggo_below_band_ml = 0;    // ground glass over HU below the band (aerated lung)
  double ggo_solid_range_ml = 0;   // ground glass over HU in the solid range [split, high)
  double solid_below_band_ml = 0;  // solid over HU below the band (aerated lung)
  double solid_ggo_range_ml = 0;   // solid over HU in the ground-glass range [low, split)
  double labelled_above_band_ml = 0;  // either label over HU at or above the band's upper bound
};

// A given lesions mask as lungvol's lesion map inside `lungs` (binary: split by the protocol's
// bands, voxels outside the band not lesion; labelled: taken as they are). The lung voxels in
// the band outside the mask are "suppressed", so sweeps still work. Fills `use` and adds a
// warning for every part dropped or questionable.
seg::LesionSegmentation lesions_from_given_mask(const CtImage& ct, const LabelImage& lungs,
                                                const GivenMask& mask, const LesionParams& p,
                                                LesionsMaskUse& use,
                                                std::vector<std::string>& warnings);

// Puts a label map onto the CT grid: the same grid as is; the same physical box on another
// grid by nearest neighbour (with a warning); anything else is refused (Error kInput).
LabelImage to_ct_grid(const LabelImage& mask, const Geometry& ct, const std::string& path,
                      std::vector<std::string>& warnings);

// `ct` is the CT's own grid as read (a mask drawn on the series, or a SEG referencing it, lies
// on it); `to_canonical` is orientation_of(ct).map: the mask is read on `ct`, then permuted to
// the canonical grid the pipeline works on (GivenMask::labels).
// Lungs: binary (0/1, split into right and left here; a single region that cannot be split,
// such as one lung or a region of interest, is accepted as `one_region` with a warning) or
// labelled with lungvol's values (1 right, 2 left, 3 airway). NIfTI / NRRD / MHA, or a DICOM SEG (lungvol's or another tool's:
// segments are matched by code and label, see dicomout::segment_meaning).
GivenMask load_lungs_mask(const std::string& path, const Geometry& ct, double min_lung_ml,
                          const AxisMap& to_canonical = {});
// Lesions: binary (0/1, split into ground-glass and solid by the protocol) or labelled
// (1 ground-glass, 2 solid, taken as they are).
GivenMask load_lesions_mask(const std::string& path, const Geometry& ct,
                            const AxisMap& to_canonical = {});

}  // namespace lungvol::pipeline
