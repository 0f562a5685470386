#pragma once
// Families of dense pathology inserted into a real (or phantom) CT, for the stress suite of
// issue #15 (docs/validation.md, "Dense pathology stress suite"). Given a CT and its clean lung
// label map (a clean run of the pipeline, or a reference mask split into right and left), a
// family, a seed and a count, lesions are placed at seeded random positions drawn per position
// category (lateral, anterior, posterior, paravertebral, apical, on the diaphragm, medial at
// heart level, hilar, lower lobe) and painted with a realistic appearance:
//   - a lesion HU drawn per lesion in the family's range (consolidation +20..+40 HU,
//     ground-glass -650..-350 HU) plus a smooth random texture (+-10 HU, wavelengths 12-30 mm)
//     plus Gaussian noise with the scan's own noise SD (estimated in homogeneous soft tissue);
//   - a soft margin toward aerated lung: the lesion fraction f falls from 1 to 0 over 1-2 mm
//     (widened by the voxel size) around the nominal surface, HU = (1-f) HU_before + f HU_lesion;
//   - full density against the wall: wherever the shape reaches beyond the lung, lung voxels
//     are lesion right up to the old boundary, and the partial-volume voxels on the wall side
//     (non-lung voxels next to the lesion, HU below -150: part air) take the lesion's share of
//     their air fraction, as a voxel half wall, half consolidation would read;
//   - air bronchograms in large consolidations (lobar, and round ones of 40 mL and more): a
//     tree of air tubes (radius 1-3 mm, three generations) from the lesion's hilar side.
// Truth, per lesion: the voxels that were lung before insertion inside the nominal shape
// (f >= 1/2); chest wall replaced by lesion is never lung. Inserted ground-glass and solid
// volumes: every lung voxel the lesion changed (margin included), classified by its new HU with
// the protocol's bands. Lesions of one case never overlap (their boxes keep 8 mm apart).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"

namespace lungvol::test {

enum class Family {
  kRoundJuxtapleural,  // round consolidations on the pleura, 5-100 mL, six positions
  kBandConsolidation,  // subpleural bands of consolidation, 3-20 mm thick, posterior / lateral
  kBandGroundGlass,    // the same bands of ground-glass (-650..-350 HU)
  kLobar,              // most of a lower lobe consolidated (>= 300 mL), air bronchograms
  kParamediastinal,    // consolidation on the medial surface: paracardiac and paramediastinal
  kHilarMass,          // a solid mass at the hilum
};
inline constexpr int kFamilyCount = 6;
const char* family_name(Family f);
std::optional<Family> parse_family(const std::string& name);
std::vector<Family> all_families();

enum class Position {
  kLateral,
  kAnterior,
  kPosterior,
  kParavertebral,
  kApical,
  kDiaphragmatic,
  kParamediastinal,
  kParacardiac,
  kHilar,
  kLowerLobe,
};
const char* position_name(Position p);

enum class InsertedClass { kGroundGlass, kConsolidation };

struct FamilyLesion {
  Family family = Family::kRoundJuxtapleural;
  Position position = Position::kLateral;
  InsertedClass inserted = InsertedClass::kConsolidation;
  std::uint8_t lung = 0;  // labels::kRightLung / kLeftLung
  std::uint64_t seed = 0;  // the case's seed; lesion `index` of that case
  int index = 0;
  double base_hu = 0;  // the lesion's mean HU before texture and noise
  // Size: the nominal shape's volume (sphere, ellipsoid, band, lobe region), in and out of the
  // lung; for bands also the thickness and the extent along the pleura.
  double shape_ml = 0;
  double thickness_mm = 0, length_mm = 0;
  double depth_fraction = 0;  // round: centre this fraction of the radius inside the lung
  std::array<double, 3> centre_lps_mm{0, 0, 0};
  // Truth: voxel indices (sorted) that were lung of `lung` before insertion, inside the nominal
  // shape. `changed` = every lung voxel whose HU the lesion changed (margin included), sorted.
  std::vector<std::size_t> truth;
  std::vector<std::size_t> changed;
  double truth_ml = 0;
  // Classes of the changed lung voxels by their new HU (protocol bands): what was inserted.
  double ggo_ml = 0, solid_ml = 0, other_ml = 0;  // other: below / above the lesion band
  double wall_ml = 0;         // non-lung partial-volume voxels set toward lesion density
  double bronchogram_ml = 0;  // air tube voxels (inside the truth)
  int bronchogram_segments = 0;
  std::size_t qc_slice = 0;  // index k of the axial slice with the most truth voxels
  std::string describe() const;  // one line: family, position, side, size, HU
};

struct FamilyOptions {
  Family family = Family::kRoundJuxtapleural;
  std::uint64_t seed = 1;
  int count = 3;  // lesions wanted (fewer when no free place is found: see notes)
  HuBand ground_glass{-700, -300};  // the protocol's bands, to classify the inserted voxels
  HuBand solid{-300, 100};
  double noise_hu = -1;  // < 0: the scan's own, estimated (ScanAnatomy::noise_hu)
  // Positions to draw from (empty: the family's own list, cycled by seed and index).
  std::vector<Position> positions;
};

// Everything about one clean scan that placement needs, computed once and reused for every
// family and seed: pleural surface points classified by position, per-lung extents, hila and
// the scan's noise.
struct SurfacePoint {
  std::size_t voxel = 0;
  std::uint8_t lung = 0;
  std::array<double, 3> p{0, 0, 0};       // LPS mm
  std::array<double, 3> normal{0, 0, 0};  // outward, unit
  std::optional<Position> position;
};
struct LungExtent {
  std::uint8_t label = 0;
  std::uint64_t voxels = 0;
  double volume_ml = 0;
  std::array<double, 3> centroid{0, 0, 0};         // LPS mm
  std::array<double, 3> lo{0, 0, 0}, hi{0, 0, 0};  // LPS bounding box of the voxel centres
  std::array<double, 3> hilum{0, 0, 0};            // where the main bronchus enters
};
struct ScanAnatomy {
  Geometry geom;
  double noise_hu = 10;  // robust SD of the CT noise in homogeneous soft tissue
  double midline_x = 0;  // LPS x between the lungs
  double spine_y = 0;    // LPS y of the front of the vertebral column
  std::array<LungExtent, 2> lungs;  // [0] right, [1] left
  std::vector<SurfacePoint> surface;  // a seeded sample of pleural surface points, classified
  const LungExtent& extent(std::uint8_t label) const;
  std::size_t count(Position p) const;
};
// `lungs` holds labels::kRightLung and kLeftLung (kAirway optional: it locates the hila).
ScanAnatomy analyse_anatomy(const CtImage& ct, const LabelImage& lungs);

struct FamilyCase {
  CtImage ct;  // the CT with the lesions
  std::vector<FamilyLesion> lesions;
  std::vector<std::string> notes;  // lesions that found no place, and why
  double noise_hu = 0;
};

// Inserts options.count lesions of options.family into a copy of `ct`. Reproducible: the same
// CT, lung map, options and seed give the same voxels. Throws std::runtime_error when not one
// lesion can be placed.
FamilyCase insert_family(const CtImage& ct, const LabelImage& lungs, const ScanAnatomy& anatomy,
                         const FamilyOptions& options);

}  // namespace lungvol::test
