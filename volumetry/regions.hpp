#pragma once
// Regions of a scan (both lungs, each lung, upper/middle/lower thirds) and their histograms,
// built in one pass over the volume.
#include <string>
#include <vector>

#include "core/histogram.hpp"
#include "core/image.hpp"

namespace lungvol::vol {

struct RegionHistograms {
  std::string name;        // lungs, right, left, right_upper, ..., upper, middle, lower
  HuHistogram lung;        // every lung voxel of the region
  HuHistogram suppressed;  // lung voxels in the lesion band that are not lesion (vessels, specks)
  // Only for a given (reviewer-labelled) lesion map, which is taken as it is: its ground-glass
  // and solid voxels, whatever their HU.
  bool lesion_labels_given = false;
  HuHistogram given_ggo;
  HuHistogram given_solid;
};

// Region names in output order.
const std::vector<std::string>& region_names();

// The zone of each slice k for the lung `label` (right or left): 0 upper, 1 middle, 2 lower
// third of that lung's physical craniocaudal extent; -1 for every slice when the lung is absent.
std::vector<int> lung_slice_zones(const LabelImage& lungs, std::uint8_t label);

// Thirds of each lung's craniocaudal extent (by slice position) define the zones; upper/middle/
// lower combine the two lungs' zones.
// `given_lesions` (may be null): a labelled lesion map whose classes are counted as given.
std::vector<RegionHistograms> build_region_histograms(const CtImage& ct, const LabelImage& lungs,
                                                      const MaskImage& suppressed,
                                                      const LabelImage* given_lesions = nullptr);

}  // namespace lungvol::vol
