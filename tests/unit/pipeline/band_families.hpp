#pragma once
// Families of subpleural lesions (issue #15) inserted at seeded random places into a scan and
// measured back by the lesion stage: ground-glass bands, solid bands and crazy paving along the
// pleura, each at several thicknesses. Shared by the tests (tests/unit/pipeline/
// ggo_bands_test.cpp) and the table/QC-image tool (bench/ggo_bands.cpp).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"
#include "segmentation/lesions.hpp"
#include "tests/support/ggo_bands.hpp"

namespace lungvol::test {

struct BandResult {
  BandKind kind;
  double thickness_mm = 0;
  Facing facing = Facing::kPosterior;
  std::uint8_t lung = 0;
  std::array<double, 3> anchor{};
  BandTruth truth;
  // Measured near the band (truth voxels and lung within near_mm of them): with the band minus
  // without it, in mL, by class.
  double ggo_ml = 0, solid_ml = 0;
  // Of the inserted voxels whose new HU lies in the lesion band (band_voxels), the share
  // labelled lesion (either class).
  std::uint64_t band_voxels = 0;
  double labelled_fraction = 0;
  double ggo_error_pct() const;    // (measured - truth) / truth, NaN when truth is empty
  double solid_error_pct() const;
  double lesion_error_pct() const;  // ground-glass + solid together
};

struct FamilySpec {
  BandKind kind = BandKind::kGroundGlass;
  std::vector<double> thicknesses_mm;
  double radius_mm = 25;
  std::uint64_t seed = 1;
};

// The lesion stage on a scan with bands inserted: for each thickness one copy of the scan with
// four bands (posterior and lateral, right and left lung, anchors at least 70 mm apart),
// segment_lesions with `lungs` (the scan's lung mask before insertion: every band voxel was
// lung), each band measured in its own neighbourhood against `base` (the lesion stage on the
// scan without bands). `inserted` receives, when non-null, the last scan with bands and its
// lesions (for QC images).
std::vector<BandResult> run_family(const CtImage& ct, const LabelImage& lungs,
                                   const seg::LesionSegmentation& base, const Protocol& protocol,
                                   const FamilySpec& spec, CtImage* inserted = nullptr,
                                   seg::LesionSegmentation* inserted_lesions = nullptr,
                                   std::vector<BandResult>* inserted_bands = nullptr);

// One line per band and a summary per thickness, for logs and docs.
std::string format_results(const std::string& title, const std::vector<BandResult>& results);

// Residual lesion (both classes) in % of the lung volume.
double lesion_percent(const seg::LesionSegmentation& s, const LabelImage& lungs);

}  // namespace lungvol::test
