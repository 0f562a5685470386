#include "volumetry/volumes.hpp"

namespace lungvol::vol {

RegionVolumes measure_volumes(const RegionHistograms& h, const Protocol& protocol,
                              double voxel_ml) {
  RegionVolumes v;
  const auto lesion_voxels = [&](const HuBand& b) {
    return double(h.lung.count_in(b.lo_hu, b.hi_hu) - h.suppressed.count_in(b.lo_hu, b.hi_hu));
  };
  const double total = double(h.lung.total());
  v.volume_ml = total * voxel_ml;
  const double ggo = h.lesion_labels_given ? double(h.given_ggo.total())
                                            : lesion_voxels(protocol.lesion.ground_glass);
  const double solid = h.lesion_labels_given ? double(h.given_solid.total())
                                              : lesion_voxels(protocol.lesion.solid);
  v.ggo_ml = ggo * voxel_ml;
  v.solid_ml = solid * voxel_ml;
  v.lesion_ml = (ggo + solid) * voxel_ml;
  if (total > 0) {
    v.ggo_pct = 100.0 * ggo / total;
    v.solid_pct = 100.0 * solid / total;
    v.lesion_pct = 100.0 * (ggo + solid) / total;
  }
  for (const auto& c : protocol.classes) {
    const double n = double(h.lung.count_in(c.band.lo_hu, c.band.hi_hu));
    v.classes.push_back({c.name, n * voxel_ml, total > 0 ? 100.0 * n / total : 0.0});
  }
  return v;
}

}  // namespace lungvol::vol
