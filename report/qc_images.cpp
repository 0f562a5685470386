#include "report/qc_images.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "core/log.hpp"

namespace lungvol::report {
namespace {

// For each LPS axis (0 = L, 1 = P, 2 = S): the index axis that runs mostly along it and
// whether it runs the positive way. Falls back to identity when the direction matrix is so
// oblique that two index axes share a dominant LPS axis.
struct AnatomicalAxes {
  std::array<int, 3> index_axis{0, 1, 2};
  std::array<bool, 3> positive{true, true, true};
};

AnatomicalAxes anatomical_axes(const Geometry& geom) {
  AnatomicalAxes out;
  std::array<bool, 3> taken{false, false, false};
  std::array<int, 3> lps_of{0, 1, 2};
  std::array<bool, 3> pos_of{true, true, true};
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r) {
      if (std::abs(geom.direction[r * 3 + c]) > std::abs(geom.direction[best * 3 + c])) best = r;
    }
    if (taken[best]) return AnatomicalAxes{};
    taken[best] = true;
    lps_of[c] = best;
    pos_of[c] = geom.direction[best * 3 + c] >= 0.0;
  }
  for (int c = 0; c < 3; ++c) {
    out.index_axis[lps_of[c]] = c;
    out.positive[lps_of[c]] = pos_of[c];
  }
  return out;
}

void check_same_size(const Geometry& a, const Geometry& b, const char* what) {
  if (a.size != b.size) {
    throw Error(ExitCode::kProcessing,
                std::string("QC images: ") + what + " grid " + std::to_string(b.size[0]) + "x" +
                    std::to_string(b.size[1]) + "x" + std::to_string(b.size[2]) +
                    " does not match the CT grid " + std::to_string(a.size[0]) + "x" +
                    std::to_string(a.size[1]) + "x" + std::to_string(a.size[2]));
  }
}

std::uint8_t blend(std::uint8_t base, std::uint8_t over, double alpha) {
  return static_cast<std::uint8_t>(std::lround((1.0 - alpha) * base + alpha * over));
}

// Source positions for each output pixel along one axis: the nearest voxel (labels) and the
// two voxels and weight for linear interpolation (CT). Output pixel centres are spread
// evenly over the full extent of the n voxels.
struct AxisSampling {
  std::vector<std::size_t> nearest, lo, hi;
  std::vector<double> frac;
};

AxisSampling sample_axis(std::size_t n, std::size_t out, bool flip) {
  AxisSampling s;
  s.nearest.resize(out);
  s.lo.resize(out);
  s.hi.resize(out);
  s.frac.resize(out);
  const double step = static_cast<double>(n) / static_cast<double>(out);
  for (std::size_t x = 0; x < out; ++x) {
    const double centre = (static_cast<double>(x) + 0.5) * step;  // in voxel units, [0, n]
    std::size_t near = std::min(n - 1, static_cast<std::size_t>(centre));
    double u = std::clamp(centre - 0.5, 0.0, static_cast<double>(n - 1));
    std::size_t lo = std::min(n - 1, static_cast<std::size_t>(u));
    std::size_t hi = std::min(n - 1, lo + 1);
    double f = u - static_cast<double>(lo);
    if (flip) {
      near = n - 1 - near;
      lo = n - 1 - lo;
      hi = n - 1 - hi;
    }
    s.nearest[x] = near;
    s.lo[x] = lo;
    s.hi[x] = hi;
    s.frac[x] = f;
  }
  return s;
}

const char* plane_name(QcPlane plane) {
  switch (plane) {
    case QcPlane::kAxial:
      return "axial";
    case QcPlane::kCoronal:
      return "coronal";
    default:
      return "sagittal";
  }
}

}  // namespace

PlaneAxes plane_axes(const Geometry& geom, QcPlane plane) {
  const AnatomicalAxes a = anatomical_axes(geom);
  constexpr int kL = 0, kP = 1, kS = 2;
  PlaneAxes p;
  // (LPS axis across, wanted sign across; LPS axis down, wanted sign down; normal).
  int across = kL, down = kP, normal = kS;
  bool across_positive = true, down_positive = true;
  switch (plane) {
    case QcPlane::kAxial:
      break;  // +L to the right, +P down
    case QcPlane::kCoronal:
      down = kS, normal = kP, down_positive = false;  // head up: -S down
      break;
    case QcPlane::kSagittal:
      across = kP, down = kS, normal = kL, down_positive = false;  // anterior left, head up
      break;
  }
  p.across = a.index_axis[across];
  p.down = a.index_axis[down];
  p.normal = a.index_axis[normal];
  p.flip_across = a.positive[across] != across_positive;
  p.flip_down = a.positive[down] != down_positive;
  return p;
}

QcPlan plan_qc(const LabelImage& lungs, const LabelImage& lesions) {
  const Geometry& g = lungs.geom;
  if (lungs.data.size() != g.voxel_count() || g.voxel_count() == 0) {
    throw Error(ExitCode::kProcessing, "QC images: the lung label image is empty");
  }
  const bool have_lesions = !lesions.empty();
  if (have_lesions) check_same_size(g, lesions.geom, "lesion label");
  const int axial_axis = plane_axes(g, QcPlane::kAxial).normal;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];

  std::uint64_t count = 0, si = 0, sj = 0, sk = 0;
  std::array<std::uint64_t, 4> right{0, 0, 0, 0};  // count, sum i, sum j, sum k of label 1
  std::vector<std::uint64_t> hist(g.size[axial_axis], 0);
  const std::uint8_t* lung = lungs.data.data();
  const std::uint8_t* les = have_lesions ? lesions.data.data() : nullptr;
#pragma omp parallel
  {
    std::uint64_t c = 0, a = 0, b = 0, d = 0;
    std::array<std::uint64_t, 4> rr{0, 0, 0, 0};
    std::vector<std::uint64_t> h(hist.size(), 0);
#pragma omp for schedule(static) nowait
    for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(nz); ++k) {
      for (std::size_t j = 0; j < ny; ++j) {
        const std::size_t row = nx * (j + ny * static_cast<std::size_t>(k));
        // Branch-free sums: this loop reads the whole label volume, so it must stream.
        const std::uint8_t* lr = lung + row;
        std::uint64_t row_count = 0, row_i = 0, r_count = 0, r_i = 0;
        for (std::size_t i = 0; i < nx; ++i) {
          const std::uint64_t is_r = lr[i] == labels::kRightLung;
          const std::uint64_t in = is_r | (lr[i] == labels::kLeftLung);
          row_count += in;
          row_i += in * i;
          r_count += is_r;
          r_i += is_r * i;
        }
        c += row_count;
        a += row_i;
        b += row_count * j;
        d += row_count * static_cast<std::uint64_t>(k);
        rr[0] += r_count;
        rr[1] += r_i;
        rr[2] += r_count * j;
        rr[3] += r_count * static_cast<std::uint64_t>(k);
        if (les == nullptr) continue;
        const std::uint8_t* er = les + row;
        if (axial_axis == 0) {
          for (std::size_t i = 0; i < nx; ++i) h[i] += er[i] != labels::kNoLesion;
        } else {
          std::uint64_t n = 0;
          for (std::size_t i = 0; i < nx; ++i) n += er[i] != labels::kNoLesion;
          h[axial_axis == 1 ? j : static_cast<std::size_t>(k)] += n;
        }
      }
    }
#pragma omp critical(lungvol_qc_plan)
    {
      count += c;
      si += a;
      sj += b;
      sk += d;
      for (std::size_t n = 0; n < 4; ++n) right[n] += rr[n];
      for (std::size_t n = 0; n < h.size(); ++n) hist[n] += h[n];
    }
  }

  QcPlan plan;
  if (count > 0) {
    const auto mean = [&](std::uint64_t s, std::size_t n) {
      const double m = static_cast<double>(s) / static_cast<double>(count);
      return std::min(n - 1, static_cast<std::size_t>(std::lround(m)));
    };
    plan.centre = {mean(si, nx), mean(sj, ny), mean(sk, nz)};
  } else {
    plan.centre = {nx / 2, ny / 2, nz / 2};
  }
  // Each lung's centroid; the left lung's sums are the total minus the right lung's.
  const auto centroid = [&](std::uint64_t n, std::uint64_t a, std::uint64_t b, std::uint64_t d)
      -> std::optional<std::array<std::size_t, 3>> {
    if (n == 0) return std::nullopt;
    const auto m = [&](std::uint64_t s, std::size_t size) {
      return std::min(size - 1, static_cast<std::size_t>(std::lround(static_cast<double>(s) /
                                                                     static_cast<double>(n))));
    };
    return std::array<std::size_t, 3>{m(a, nx), m(b, ny), m(d, nz)};
  };
  plan.centre_right = centroid(right[0], right[1], right[2], right[3]);
  plan.centre_left = centroid(count - right[0], si - right[1], sj - right[2], sk - right[3]);
  for (std::size_t n = 0; n < hist.size(); ++n) {
    if (hist[n] > 0) plan.lesion_slices.push_back(n);
    if (hist[n] > plan.max_lesion_voxels) {
      plan.max_lesion_voxels = hist[n];
      plan.max_lesion_slice = n;
    }
  }
  return plan;
}

std::vector<std::size_t> spread_levels(const std::vector<std::size_t>& slices, std::size_t n) {
  if (slices.size() <= n || n == 0) return n == 0 ? std::vector<std::size_t>{} : slices;
  std::vector<std::size_t> out;
  for (std::size_t m = 0; m < n; ++m) {
    // Evenly spaced positions from the first to the last lesion-bearing slice.
    const double pos = n == 1 ? 0.5 * static_cast<double>(slices.size() - 1)
                              : static_cast<double>(m) * static_cast<double>(slices.size() - 1) /
                                    static_cast<double>(n - 1);
    const std::size_t s = slices[static_cast<std::size_t>(std::lround(pos))];
    if (out.empty() || out.back() != s) out.push_back(s);
  }
  return out;
}

Raster montage(const std::vector<Raster>& tiles, std::size_t gap) {
  std::size_t w = 0, h = 0;
  for (const auto& t : tiles) {
    w += t.width + (w ? gap : 0);
    h = std::max(h, t.height);
  }
  Raster out(std::max<std::size_t>(1, w), std::max<std::size_t>(1, h), 3, 40);
  std::size_t x0 = 0;
  for (const auto& t : tiles) {
    for (std::size_t y = 0; y < t.height; ++y) {
      for (std::size_t x = 0; x < t.width; ++x) {
        const std::uint8_t* src = t.at(x, y);
        std::uint8_t* dst = out.at(x0 + x, y);
        for (int c = 0; c < 3; ++c) dst[c] = src[t.channels == 3 ? c : 0];
      }
    }
    x0 += t.width + gap;
  }
  return out;
}

std::array<std::size_t, 2> qc_image_size(const Geometry& geom, QcPlane plane,
                                         std::size_t max_side, std::size_t min_side) {
  const PlaneAxes ax = plane_axes(geom, plane);
  const double w_mm = static_cast<double>(geom.size[ax.across]) * geom.spacing[ax.across];
  const double h_mm = static_cast<double>(geom.size[ax.down]) * geom.spacing[ax.down];
  double pixel = std::min(geom.spacing[ax.across], geom.spacing[ax.down]);
  if (max_side > 0 && std::max(w_mm, h_mm) / pixel > static_cast<double>(max_side)) {
    pixel = std::max(w_mm, h_mm) / static_cast<double>(max_side);
  }
  if (min_side > 0 && std::max(w_mm, h_mm) / pixel < static_cast<double>(min_side)) {
    pixel = std::max(w_mm, h_mm) / static_cast<double>(min_side);  // enlarge a small matrix
  }
  const auto side = [&](double mm) {
    return std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(mm / pixel)));
  };
  return {side(w_mm), side(h_mm)};
}

Raster render_qc_plane(const CtImage& ct, const LabelImage& lungs, const LabelImage& lesions,
                       QcPlane plane, std::size_t slice, const QcOptions& options) {
  const Geometry& g = ct.geom;
  if (ct.data.size() != g.voxel_count() || g.voxel_count() == 0) {
    throw Error(ExitCode::kProcessing, "QC images: the CT image is empty");
  }
  const bool have_lungs = !lungs.empty();
  const bool have_lesions = !lesions.empty();
  if (have_lungs) check_same_size(g, lungs.geom, "lung label");
  if (have_lesions) check_same_size(g, lesions.geom, "lesion label");
  const PlaneAxes ax = plane_axes(g, plane);
  if (slice >= g.size[ax.normal]) {
    throw Error(ExitCode::kProcessing, std::string("QC images: ") + plane_name(plane) + " slice " +
                                           std::to_string(slice) + " is outside the image");
  }
  const std::array<std::size_t, 2> wh = qc_image_size(g, plane, options.max_side, options.min_side);
  const std::size_t w = wh[0], h = wh[1];
  const std::array<std::size_t, 3> stride{1, g.size[0], g.size[0] * g.size[1]};
  const std::size_t base = slice * stride[ax.normal];
  const std::size_t sa = stride[ax.across], sd = stride[ax.down];
  const AxisSampling cols = sample_axis(g.size[ax.across], w, ax.flip_across);
  const AxisSampling rows = sample_axis(g.size[ax.down], h, ax.flip_down);

  const double low = options.window_level - options.window_width / 2.0;
  const double grey_per_hu = 255.0 / options.window_width;
  const double alpha = std::clamp(options.lesion_opacity, 0.0, 1.0);
  Raster out(w, h, 3);
  std::vector<std::uint8_t> lung_px(w * h, labels::kBackground);

  for (std::size_t y = 0; y < h; ++y) {
    const std::size_t r0 = base + rows.lo[y] * sd, r1 = base + rows.hi[y] * sd;
    const std::size_t rn = base + rows.nearest[y] * sd;
    const double fy = rows.frac[y];
    for (std::size_t x = 0; x < w; ++x) {
      const std::size_t c0 = cols.lo[x] * sa, c1 = cols.hi[x] * sa;
      const double fx = cols.frac[x];
      const double top = (1.0 - fx) * ct.data[r0 + c0] + fx * ct.data[r0 + c1];
      const double bottom = (1.0 - fx) * ct.data[r1 + c0] + fx * ct.data[r1 + c1];
      const double hu = (1.0 - fy) * top + fy * bottom;
      const auto grey =
          static_cast<std::uint8_t>(std::lround(std::clamp((hu - low) * grey_per_hu, 0.0, 255.0)));
      std::uint8_t* px = out.at(x, y);
      px[0] = px[1] = px[2] = grey;
      const std::size_t n = rn + cols.nearest[x] * sa;
      if (have_lesions && lesions.data[n] != labels::kNoLesion) {
        const Rgb c = lesions.data[n] == labels::kSolid ? kSolidColour : kGroundGlassColour;
        px[0] = blend(grey, c.r, alpha);
        px[1] = blend(grey, c.g, alpha);
        px[2] = blend(grey, c.b, alpha);
      }
      if (have_lungs) lung_px[y * w + x] = lungs.data[n];
    }
  }

  // A labelled pixel is on the contour when a 4-neighbour (or the image edge) differs.
  if (have_lungs) {
    for (std::size_t y = 0; y < h; ++y) {
      for (std::size_t x = 0; x < w; ++x) {
        const std::uint8_t l = lung_px[y * w + x];
        if (l == labels::kBackground) continue;
        const bool edge = x == 0 || y == 0 || x + 1 == w || y + 1 == h ||
                          lung_px[y * w + x - 1] != l || lung_px[y * w + x + 1] != l ||
                          lung_px[(y - 1) * w + x] != l || lung_px[(y + 1) * w + x] != l;
        if (!edge) continue;
        Rgb c = kAirwayColour;
        if (l == labels::kRightLung)
          c = kRightLungColour;
        else if (l == labels::kLeftLung)
          c = kLeftLungColour;
        else if (l != labels::kAirway)
          continue;
        std::uint8_t* px = out.at(x, y);
        px[0] = c.r;
        px[1] = c.g;
        px[2] = c.b;
      }
    }
  }
  return out;
}

std::vector<std::string> write_qc_images(const CtImage& ct, const LabelImage& lungs,
                                         const LabelImage& lesions, const std::string& outdir,
                                         const QcOptions& options) {
  check_same_size(ct.geom, lungs.geom, "lung label");
  const QcPlan plan = plan_qc(lungs, lesions);
  ensure_directory(outdir);
  const std::filesystem::path dir(outdir);
  std::vector<std::string> written;
  const auto emit = [&](QcPlane plane, std::size_t slice, const char* name) {
    const std::string path = (dir / name).string();
    write_png(path, render_qc_plane(ct, lungs, lesions, plane, slice, options), options.png_level);
    written.push_back(path);
  };
  const auto centre_along = [&](QcPlane plane) {
    return plan.centre[plane_axes(ct.geom, plane).normal];
  };
  emit(QcPlane::kAxial, centre_along(QcPlane::kAxial), "qc_axial.png");
  emit(QcPlane::kCoronal, centre_along(QcPlane::kCoronal), "qc_coronal.png");
  // Sagittal through each lung, not the midline (which shows the trachea and slivers of lung).
  const int sagittal_axis = plane_axes(ct.geom, QcPlane::kSagittal).normal;
  if (plan.centre_right) emit(QcPlane::kSagittal, (*plan.centre_right)[sagittal_axis], "qc_sagittal_right.png");
  if (plan.centre_left) emit(QcPlane::kSagittal, (*plan.centre_left)[sagittal_axis], "qc_sagittal_left.png");
  if (plan.max_lesion_slice) {
    emit(QcPlane::kAxial, *plan.max_lesion_slice, "qc_axial_max_lesion.png");
    // A row of axial slices through the lesion-bearing levels, each tile at most 256 px.
    QcOptions tile = options;
    tile.max_side = 256;
    tile.min_side = std::min<std::size_t>(options.min_side, 256);
    std::vector<Raster> tiles;
    for (const std::size_t k : spread_levels(plan.lesion_slices, options.max_levels)) {
      tiles.push_back(render_qc_plane(ct, lungs, lesions, QcPlane::kAxial, k, tile));
    }
    const std::string path = (dir / "qc_axial_lesion_levels.png").string();
    write_png(path, montage(tiles), options.png_level);
    written.push_back(path);
  } else {
    log::info("QC images: no lesion voxel, qc_axial_max_lesion.png not written");
  }
  return written;
}

}  // namespace lungvol::report
