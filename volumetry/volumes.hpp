#pragma once
#include <string>
#include <vector>

#include "core/protocol.hpp"
#include "volumetry/regions.hpp"

namespace lungvol::vol {

struct ClassVolume {
  std::string name;
  double volume_ml = 0;
  double pct = 0;  // of the region's lung volume
};

struct RegionVolumes {
  double volume_ml = 0;
  double lesion_ml = 0, ggo_ml = 0, solid_ml = 0;
  double lesion_pct = 0, ggo_pct = 0, solid_pct = 0;  // of volume_ml; 0 when the region is empty
  std::vector<ClassVolume> classes;  // every protocol class, raw voxel counts in its band
};

// Lesion = voxels in the lesion band minus suppressed ones; ground-glass / solid by the split.
RegionVolumes measure_volumes(const RegionHistograms& h, const Protocol& protocol,
                              double voxel_ml);

}  // namespace lungvol::vol
