#include "registration/qc_images.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "report/qc_images.hpp"

namespace lungvol::registration {
namespace {

report::QcPlane to_report(RegPlane p) {
  return p == RegPlane::kAxial ? report::QcPlane::kAxial : report::QcPlane::kCoronal;
}

// The continuous voxel index of output pixel (x, y) of a plane at `slice`.
struct PlaneSampler {
  report::PlaneAxes ax;
  std::size_t w = 0, h = 0, slice = 0;
  std::array<std::size_t, 3> n{};
  Vec3 index(std::size_t x, std::size_t y) const {
    auto axis = [&](std::size_t p, std::size_t out, std::size_t size, bool flip) {
      double u = (double(p) + 0.5) * double(size) / double(out) - 0.5;
      u = std::clamp(u, 0.0, double(size - 1));
      return flip ? double(size - 1) - u : u;
    };
    Vec3 c{0, 0, 0};
    c[std::size_t(ax.across)] = axis(x, w, n[std::size_t(ax.across)], ax.flip_across);
    c[std::size_t(ax.down)] = axis(y, h, n[std::size_t(ax.down)], ax.flip_down);
    c[std::size_t(ax.normal)] = double(slice);
    return c;
  }
};

PlaneSampler sampler(const Geometry& g, RegPlane plane, std::size_t slice, std::size_t max_side) {
  PlaneSampler s;
  s.ax = report::plane_axes(g, to_report(plane));
  if (slice >= g.size[std::size_t(s.ax.normal)]) {
    throw Error(ExitCode::kProcessing, "registration QC: slice outside the image");
  }
  const auto wh = report::qc_image_size(g, to_report(plane), max_side);
  s.w = wh[0];
  s.h = wh[1];
  s.slice = slice;
  s.n = g.size;
  return s;
}

std::uint8_t grey_of(double hu, const RegistrationQcOptions& o) {
  const double low = o.window_level - o.window_width / 2.0;
  return static_cast<std::uint8_t>(std::lround(std::clamp((hu - low) * 255.0 / o.window_width, 0.0, 255.0)));
}

std::uint8_t blend(std::uint8_t a, std::uint8_t b, double alpha) {
  return static_cast<std::uint8_t>(std::lround((1 - alpha) * a + alpha * b));
}

std::size_t nearest(const Geometry& g, const Vec3& c) {
  return g.index(std::size_t(std::lround(c[0])), std::size_t(std::lround(c[1])),
                 std::size_t(std::lround(c[2])));
}

// The slice (along the plane's normal) with the most voxels of `mask_value` != 0 in `labels`,
// else the centroid slice of the lungs.
std::size_t busiest_slice(const LabelImage& change, const LabelImage& lungs, RegPlane plane) {
  const Geometry& g = change.geom;
  const auto ax = report::plane_axes(g, to_report(plane));
  const std::size_t axis = std::size_t(ax.normal);
  std::vector<double> count(g.size[axis], 0), lung(g.size[axis], 0);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const std::size_t q = g.index(i, j, k);
        const std::size_t s = axis == 0 ? i : axis == 1 ? j : k;
        if (change.data[q] != labels::kNoChange) count[s] += 1;
        if (lungs.data[q] == labels::kRightLung || lungs.data[q] == labels::kLeftLung) lung[s] += 1;
      }
    }
  }
  const auto best = std::max_element(count.begin(), count.end());
  if (*best > 0) return std::size_t(best - count.begin());
  double total = 0, moment = 0;
  for (std::size_t s = 0; s < lung.size(); ++s) {
    total += lung[s];
    moment += lung[s] * double(s);
  }
  return total > 0 ? std::size_t(std::lround(moment / total)) : g.size[axis] / 2;
}

}  // namespace

std::array<std::uint8_t, 3> change_colour(std::uint8_t label) {
  switch (label) {
    case labels::kResolved: return {0, 200, 0};
    case labels::kPersistent: return {255, 220, 0};
    case labels::kNew: return {255, 0, 0};
    case labels::kProgressed: return {255, 0, 255};
    case labels::kRegressed: return {0, 200, 255};
    default: return {0, 0, 0};
  }
}

report::Raster render_change_plane(const CtImage& ct, const LabelImage& lungs,
                                   const LabelImage& change, RegPlane plane, std::size_t slice,
                                   const RegistrationQcOptions& o) {
  const Geometry& g = ct.geom;
  if (!lungs.geom.same_grid(g) || !change.geom.same_grid(g)) {
    throw Error(ExitCode::kProcessing, "registration QC: maps not on the baseline grid");
  }
  const PlaneSampler s = sampler(g, plane, slice, o.max_side);
  const GridMap gm(g);
  report::Raster out(s.w, s.h, 3);
  std::vector<std::uint8_t> lung_px(s.w * s.h, 0);
  for (std::size_t y = 0; y < s.h; ++y) {
    for (std::size_t x = 0; x < s.w; ++x) {
      const Vec3 c = s.index(x, y);
      const std::uint8_t grey = grey_of(sample_linear(ct, gm, gm.to_point(c), -1000), o);
      std::uint8_t* px = out.at(x, y);
      px[0] = px[1] = px[2] = grey;
      const std::size_t q = nearest(g, c);
      const std::uint8_t ch = change.data[q];
      if (ch != labels::kNoChange && ch < labels::kChangeLabelCount) {
        const auto col = change_colour(ch);
        for (int k = 0; k < 3; ++k) px[k] = blend(grey, col[std::size_t(k)], o.opacity);
      }
      const std::uint8_t l = lungs.data[q];
      lung_px[y * s.w + x] = (l == labels::kRightLung || l == labels::kLeftLung) ? l : 0;
    }
  }
  for (std::size_t y = 0; y < s.h; ++y) {
    for (std::size_t x = 0; x < s.w; ++x) {
      const std::uint8_t l = lung_px[y * s.w + x];
      if (!l) continue;
      const bool edge = x == 0 || y == 0 || x + 1 == s.w || y + 1 == s.h ||
                        lung_px[y * s.w + x - 1] != l || lung_px[y * s.w + x + 1] != l ||
                        lung_px[(y - 1) * s.w + x] != l || lung_px[(y + 1) * s.w + x] != l;
      if (!edge) continue;
      const report::Rgb c = l == labels::kRightLung ? report::kRightLungColour : report::kLeftLungColour;
      std::uint8_t* px = out.at(x, y);
      px[0] = c.r;
      px[1] = c.g;
      px[2] = c.b;
    }
  }
  return out;
}

report::Raster render_checkerboard(const CtImage& base, const CtImage& follow, const Transform& t,
                                   RegPlane plane, std::size_t slice, const RegistrationQcOptions& o) {
  const Geometry& g = base.geom;
  const PlaneSampler s = sampler(g, plane, slice, o.max_side);
  const GridMap gm(g), fm(follow.geom);
  report::Raster out(s.w, s.h, 1);
  // Square size in output pixels: the plane's mm per pixel along "across".
  const double mm_per_px = double(g.size[std::size_t(s.ax.across)]) *
                           g.spacing[std::size_t(s.ax.across)] / double(s.w);
  const double side = std::max(1.0, o.checker_mm / mm_per_px);
  for (std::size_t y = 0; y < s.h; ++y) {
    for (std::size_t x = 0; x < s.w; ++x) {
      const Vec3 p = gm.to_point(s.index(x, y));
      const bool from_followup =
          ((static_cast<long>(double(x) / side) + static_cast<long>(double(y) / side)) & 1) != 0;
      const double hu = from_followup ? sample_linear(follow, fm, t.apply(p), -1000)
                                      : sample_linear(base, gm, p, -1000);
      *out.at(x, y) = grey_of(hu, o);
    }
  }
  return out;
}

std::vector<std::string> write_registration_qc(const CtImage& base_ct, const LabelImage& base_lungs,
                                               const LabelImage& change, const CtImage& follow_ct,
                                               const Transform& t, const std::string& dir,
                                               const RegistrationQcOptions& o) {
  ensure_directory(dir);
  const std::filesystem::path d(dir);
  std::vector<std::string> names;
  for (RegPlane plane : {RegPlane::kAxial, RegPlane::kCoronal}) {
    const std::size_t slice = busiest_slice(change, base_lungs, plane);
    const std::string suffix = plane == RegPlane::kAxial ? "axial" : "coronal";
    const std::string cname = "qc_change_" + suffix + ".png";
    report::write_png((d / cname).string(),
                      render_change_plane(base_ct, base_lungs, change, plane, slice, o));
    names.push_back(cname);
  }
  for (RegPlane plane : {RegPlane::kAxial, RegPlane::kCoronal}) {
    const std::size_t slice = busiest_slice(change, base_lungs, plane);
    const std::string suffix = plane == RegPlane::kAxial ? "axial" : "coronal";
    const std::string kname = "qc_checker_" + suffix + ".png";
    report::write_png((d / kname).string(),
                      render_checkerboard(base_ct, follow_ct, t, plane, slice, o));
    names.push_back(kname);
  }
  return names;
}

}  // namespace lungvol::registration
