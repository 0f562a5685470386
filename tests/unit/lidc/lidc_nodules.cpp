#include "tests/unit/lidc/lidc_nodules.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.hpp"
#include "io/image_io.hpp"
#include "report/csv.hpp"
#include "segmentation/morphology.hpp"
#include "volumetry/volumes.hpp"

namespace lungvol::lidc {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Distances to the nearest non-mask voxel, on a grid padded by one voxel of background so that
// the crop's faces count as nodule border.
std::vector<float> border_distances(const MaskImage& mask) {
  const Geometry& g = mask.geom;
  Geometry pg = g;
  for (int a = 0; a < 3; ++a) pg.size[a] = g.size[a] + 2;
  MaskImage background(pg, 1);
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        background.at(i + 1, j + 1, k + 1) = mask.at(i, j, k) ? 0 : 1;
  const VoxelVector<float> d2 = seg::squared_distance_to(background);
  std::vector<float> d;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        if (mask.at(i, j, k)) d.push_back(std::sqrt(d2[pg.index(i + 1, j + 1, k + 1)]));
  return d;
}

Nodule read_nodule(const std::string& dir, const std::string& file, int texture) {
  const CtImage ct = io::read_ct_image(dir + "/image/" + file);
  const LabelImage mask = io::read_label_image(dir + "/nodule_mask/" + file);
  if (!ct.geom.same_grid(mask.geom)) {
    throw Error(ExitCode::kInput, dir + "/nodule_mask/" + file + ": grid differs from the image");
  }
  Nodule n;
  n.file = file;
  n.texture = texture;
  n.voxel_ml = ct.geom.voxel_volume_ml();
  const auto& s = mask.geom.size;
  const auto in = [&](long i, long j, long k) {
    if (i < 0 || j < 0 || k < 0 || i >= long(s[0]) || j >= long(s[1]) || k >= long(s[2]))
      return false;
    return mask.at(std::size_t(i), std::size_t(j), std::size_t(k)) != 0;
  };
  for (long k = 0; k < long(s[2]); ++k)
    for (long j = 0; j < long(s[1]); ++j)
      for (long i = 0; i < long(s[0]); ++i) {
        if (!in(i, j, k)) continue;
        n.hu.push_back(ct.at(std::size_t(i), std::size_t(j), std::size_t(k)));
        const bool plane = in(i - 1, j, k) && in(i + 1, j, k) && in(i, j - 1, k) && in(i, j + 1, k);
        n.interior_2d.push_back(plane);
        n.interior_3d.push_back(plane && in(i, j, k - 1) && in(i, j, k + 1));
      }
  if (n.hu.empty()) throw Error(ExitCode::kInput, dir + "/nodule_mask/" + file + ": empty mask");
  MaskImage m(mask.geom);
  for (std::size_t v = 0; v < m.size(); ++v) m[v] = mask[v] ? 1 : 0;
  n.border_mm = border_distances(m);
  return n;
}

}  // namespace

std::vector<Nodule> load_nodules(const std::string& dir) {
  const report::CsvTable table = report::read_csv(dir + "/nodules.csv");
  const std::size_t c_file = table.column("file"), c_tex = table.column("Texture_value");
  std::vector<Nodule> nodules(table.rows.size());
  std::vector<std::string> errors(table.rows.size());
  // Reading is independent per nodule; an exception must not leave the parallel region.
#pragma omp parallel for schedule(dynamic)
  for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(table.rows.size()); ++r) {
    const auto& row = table.rows[std::size_t(r)];
    try {
      nodules[std::size_t(r)] = read_nodule(dir, row[c_file], std::stoi(row[c_tex]));
    } catch (const std::exception& e) {
      errors[std::size_t(r)] = e.what();
    }
  }
  for (const std::string& e : errors)
    if (!e.empty()) throw Error(ExitCode::kInput, e);
  return nodules;
}

HuHistogram histogram(const Nodule& n, const std::function<bool(std::size_t)>& keep) {
  HuHistogram h;
  for (std::size_t v = 0; v < n.hu.size(); ++v)
    if (keep(v)) h.add(n.hu[v]);
  return h;
}

double banded_solid_fraction(const HuHistogram& h, const Protocol& protocol, double voxel_ml) {
  vol::RegionHistograms region;
  region.name = "nodule";
  region.lung = h;  // nodule mask as the lung; nothing suppressed: the whole mask is lesion
  const vol::RegionVolumes v = vol::measure_volumes(region, protocol, voxel_ml);
  return v.lesion_ml > 0 ? v.solid_ml / v.lesion_ml : kNaN;
}

double all_solid_fraction(const HuHistogram& h, double split_hu) {
  const double total = double(h.total());
  return total > 0 ? double(h.count_in(split_hu, 1e9)) / total : kNaN;
}

double weighted_banded_fraction(const Nodule& n, const Protocol& protocol,
                                const std::function<double(std::size_t)>& weight) {
  const LesionParams& p = protocol.lesion;
  double band = 0, solid = 0;
  for (std::size_t v = 0; v < n.hu.size(); ++v) {
    const double hu = n.hu[v];
    if (hu < p.low_hu() || hu >= p.high_hu()) continue;
    const double w = weight(v);
    band += w;
    if (hu >= p.split_hu()) solid += w;
  }
  return band > 0 ? solid / band : kNaN;
}

double roc_auc(const std::vector<double>& positive, const std::vector<double>& negative) {
  double u = 0;
  std::size_t m = 0, k = 0;
  for (double x : positive) {
    if (std::isnan(x)) continue;
    ++m;
  }
  for (double y : negative) {
    if (std::isnan(y)) continue;
    ++k;
  }
  for (double x : positive) {
    if (std::isnan(x)) continue;
    for (double y : negative) {
      if (std::isnan(y)) continue;
      u += x > y ? 1.0 : x == y ? 0.5 : 0.0;
    }
  }
  return m && k ? u / (double(m) * double(k)) : kNaN;
}

double median(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double x) { return std::isnan(x); }),
               values.end());
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace lungvol::lidc
