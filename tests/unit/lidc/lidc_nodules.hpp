#pragma once
// LIDC-IDRI nodule crops (../shared/data/lidc-nodule-vois-ct-slicing): the radiologists' nodule
// mask used as both the lung mask and the lesion region, so the protocol's ground-glass / solid
// split can be checked against the per-nodule texture rating (1 ground-glass ... 5 solid).
// Shared by bench/lidc_validation.cpp (prints the tables of docs/validation.md) and the data test.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/histogram.hpp"
#include "core/protocol.hpp"

namespace lungvol::lidc {

// The voxels of one nodule mask; everything the scores need, so the images are read once.
struct Nodule {
  std::string file;
  int texture = 0;  // LIDC max-voted Texture_value, 1..5
  double voxel_ml = 0;
  std::vector<std::int16_t> hu;  // HU of every mask voxel
  // Distance (mm) from each mask voxel's centre to the nearest non-mask voxel centre; voxels
  // outside the crop count as non-mask (the crop's first/last slice is the nodule's edge).
  std::vector<float> border_mm;
  std::vector<std::uint8_t> interior_2d;  // all 4 in-plane face neighbours are mask
  std::vector<std::uint8_t> interior_3d;  // all 6 face neighbours are mask
};

// Reads nodules.csv and every image/mask pair of `dir`. Throws Error(kInput) naming the file.
std::vector<Nodule> load_nodules(const std::string& dir);

// Histogram of the mask voxels for which keep(voxel index) is true.
HuHistogram histogram(const Nodule& n, const std::function<bool(std::size_t)>& keep);

// The protocol's solid fraction with the nodule as lung and lesion region: solid / lesion
// volume from vol::measure_volumes, i.e. among voxels in [low, high) those with HU >= split.
// NaN when no voxel is in the band.
double banded_solid_fraction(const HuHistogram& h, const Protocol& protocol, double voxel_ml);
// Fraction of all counted voxels with HU >= split (no band; calcium counts as solid).
double all_solid_fraction(const HuHistogram& h, double split_hu);
// Banded fraction with a weight per voxel (partial-volume down-weighting at the border).
double weighted_banded_fraction(const Nodule& n, const Protocol& protocol,
                                const std::function<double(std::size_t)>& weight);

// ROC AUC of `positive` (should score higher) against `negative`: the Mann-Whitney statistic
// U / (m n), counting every pair, ties as 1/2. Exact (no approximation). NaN values are skipped.
double roc_auc(const std::vector<double>& positive, const std::vector<double>& negative);
double median(std::vector<double> values);

}  // namespace lungvol::lidc
