#pragma once
// Subpleural lesion families for tests (issue #15): bands of ground-glass or consolidation that
// follow the pleura, and crazy paving (ground-glass crossed by a grid of denser septa), written
// into a real or synthetic CT with texture, noise and soft margins. Deliberately separate from
// lesion_insertion.* (ellipsoids).
//
// Truth is kept per voxel: a voxel is inserted lesion when insertion raised its HU, and it is
// ground-glass or solid by its own new HU (the protocol's rule). Voxels that were denser than
// the lesion (vessels crossing it) keep their HU and are not lesion: a vessel crossing a
// ground-glass band is lung, not solid component.
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"

namespace lungvol::test {

enum class BandKind { kGroundGlass, kSolid, kCrazyPaving };
const char* band_kind_name(BandKind kind);

struct PleuralBand {
  BandKind kind = BandKind::kGroundGlass;
  std::array<double, 3> anchor_index{0, 0, 0};  // a lung voxel on the pleura (voxel index)
  double thickness_mm = 5;   // lung within this depth below the pleura
  double radius_mm = 25;     // ... and within this distance of the anchor (the patch)
  double margin_mm = 3;      // soft lateral margin: the lesion fades out over this width
  double lo_hu = -650, hi_hu = -350;  // HU of the lesion (base + texture + noise, clipped)
  double texture_hu = 35;    // amplitude of a smooth random texture (wavelengths 4-12 mm)
  double noise_hu = 20;      // white noise SD
  // Crazy paving only: three families of parallel septa (random orientation) through the band.
  double septa_spacing_mm = 7;
  double septa_thickness_mm = 1.5;
  double septa_lo_hu = -250, septa_hi_hu = -50;
};

struct BandTruth {
  std::uint64_t ggo_voxels = 0, solid_voxels = 0;  // inserted voxels by their new HU
  double ggo_ml = 0, solid_ml = 0;
  std::vector<std::size_t> voxels;  // every inserted voxel (HU raised), sorted
  std::uint64_t lung_in_reach = 0;  // lung voxels of the patch and depth (weight > 0)
};

// Writes the band into `ct` (lung voxels of `lungs` only) and returns its truth. Depth below the
// pleura = distance from a voxel centre to the nearest voxel centre that is not right or left
// lung, minus half an in-plane voxel (the surface lies between the two); the band's inner edge
// is one in-plane voxel of partial volume, its lateral edge fades over margin_mm.
BandTruth insert_pleural_band(CtImage& ct, const LabelImage& lungs, const PleuralBand& band,
                              const LesionParams& bands, std::uint64_t seed);

enum class Facing { kPosterior, kLateral };
const char* facing_name(Facing f);
// A random anchor on the costal pleura of lung `label` facing posterior (dependent) or lateral:
// a lung voxel whose face neighbour in that direction (patient LPS) is not lung, between 30 %
// and 70 % of the lung's height, at least `clear_mm` from every anchor already in `taken`.
std::array<double, 3> pick_pleural_anchor(const LabelImage& lungs, std::uint8_t label,
                                          Facing facing, std::mt19937_64& rng,
                                          const std::vector<std::array<double, 3>>& taken,
                                          double clear_mm);

}  // namespace lungvol::test
