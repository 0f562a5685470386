#include "registration/register.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"

namespace lungvol::registration {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

void check_visit(const VisitImages& v, const char* which) {
  if (!v.ct || !v.lungs || v.ct->empty()) {
    throw Error(ExitCode::kProcessing, fmt::format("registration: the {} scan has no image", which));
  }
  if (!v.lungs->geom.same_grid(v.ct->geom)) {
    throw Error(ExitCode::kProcessing,
                fmt::format("registration: the {} scan's lung map is not on its CT grid", which));
  }
  if (v.lesions && !v.lesions->empty() && !v.lesions->geom.same_grid(v.ct->geom)) {
    throw Error(ExitCode::kProcessing,
                fmt::format("registration: the {} scan's lesion map is not on its CT grid", which));
  }
}

// Centroid (LPS mm) of the lung voxels; nullopt-like flag when there are none.
bool lung_centroid(const LabelImage& lungs, Vec3* c) {
  const auto& g = lungs.geom;
  double s[3] = {0, 0, 0};
  double n = 0;
  const long nz = static_cast<long>(g.size[2]);
#pragma omp parallel for schedule(static) reduction(+ : s[:3], n)
  for (long k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      const std::uint8_t* row = lungs.data.data() + g.index(0, j, std::size_t(k));
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        if (!is_lung(row[i])) continue;
        s[0] += double(i);
        s[1] += double(j);
        s[2] += double(k);
        n += 1;
      }
    }
  }
  if (n == 0) return false;
  *c = g.to_physical(s[0] / n, s[1] / n, s[2] / n);
  return true;
}

// Trilinear HU at a continuous index inside the grid.
double trilinear(const CtImage& img, const Vec3& c) {
  const auto& s = img.geom.size;
  std::size_t i0 = std::min<std::size_t>(std::size_t(c[0]), s[0] > 1 ? s[0] - 2 : 0);
  std::size_t j0 = std::min<std::size_t>(std::size_t(c[1]), s[1] > 1 ? s[1] - 2 : 0);
  std::size_t k0 = std::min<std::size_t>(std::size_t(c[2]), s[2] > 1 ? s[2] - 2 : 0);
  const std::size_t i1 = std::min(i0 + 1, s[0] - 1), j1 = std::min(j0 + 1, s[1] - 1),
                    k1 = std::min(k0 + 1, s[2] - 1);
  const double wx = std::clamp(c[0] - double(i0), 0.0, 1.0);
  const double wy = std::clamp(c[1] - double(j0), 0.0, 1.0);
  const double wz = std::clamp(c[2] - double(k0), 0.0, 1.0);
  const std::size_t nx = s[0], nxy = s[0] * s[1];
  const std::int16_t* d = img.data.data();
  auto v = [&](std::size_t i, std::size_t j, std::size_t k) { return double(d[i + nx * j + nxy * k]); };
  const double c0 = (v(i0, j0, k0) * (1 - wx) + v(i1, j0, k0) * wx) * (1 - wy) +
                    (v(i0, j1, k0) * (1 - wx) + v(i1, j1, k0) * wx) * wy;
  const double c1 = (v(i0, j0, k1) * (1 - wx) + v(i1, j0, k1) * wx) * (1 - wy) +
                    (v(i0, j1, k1) * (1 - wx) + v(i1, j1, k1) * wx) * wy;
  return c0 * (1 - wz) + c1 * wz;
}

// Resamples `img` (on its own grid) at t(x) for every x of `grid`; `outside` beyond it.
FloatImage resample(const FloatImage& img, const Transform& t, const Geometry& grid,
                    double outside) {
  FloatImage out(grid, FloatImage::Uninitialised{});
  const GridMap gm(grid), sm(img.geom);
  const long nz = static_cast<long>(grid.size[2]);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < grid.size[1]; ++j) {
      for (std::size_t i = 0; i < grid.size[0]; ++i) {
        const Vec3 x = gm.to_point({double(i), double(j), double(k)});
        out.data[grid.index(i, j, std::size_t(k))] =
            static_cast<float>(sample_linear(img, sm, t.apply(x), outside));
      }
    }
  }
  return out;
}

// Mean |a - b| over voxels where weight > 0.5.
double mean_abs_difference(const FloatImage& a, const FloatImage& b, const FloatImage& weight) {
  double s = 0, n = 0;
  const long count = static_cast<long>(a.size());
#pragma omp parallel for schedule(static) reduction(+ : s, n)
  for (long q = 0; q < count; ++q) {
    if (weight.data[std::size_t(q)] <= 0.5f) continue;
    s += std::abs(double(a.data[std::size_t(q)]) - b.data[std::size_t(q)]);
    n += 1;
  }
  return n > 0 ? s / n : 0.0;
}

// Lung fraction of the baseline on its registration grid (nearest neighbour at voxel centres).
FloatImage lung_weight(const LabelImage& lungs, const Geometry& grid) {
  FloatImage out(grid, 0.0f);
  const GridMap gm(grid), sm(lungs.geom);
  const auto& s = lungs.geom.size;
  const long nz = static_cast<long>(grid.size[2]);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < grid.size[1]; ++j) {
      for (std::size_t i = 0; i < grid.size[0]; ++i) {
        const Vec3 c = sm.to_index(gm.to_point({double(i), double(j), double(k)}));
        const double ri = std::floor(c[0] + 0.5), rj = std::floor(c[1] + 0.5),
                     rk = std::floor(c[2] + 0.5);
        if (ri < 0 || rj < 0 || rk < 0 || ri >= double(s[0]) || rj >= double(s[1]) ||
            rk >= double(s[2])) {
          continue;
        }
        if (is_lung(lungs.data[lungs.geom.index(std::size_t(ri), std::size_t(rj), std::size_t(rk))])) {
          out.data[grid.index(i, j, std::size_t(k))] = 1.0f;
        }
      }
    }
  }
  return out;
}

}  // namespace

std::string RegistrationParams::text() const {
  std::string its;
  for (int i : iterations) its += (its.empty() ? "" : ",") + std::to_string(i);
  return fmt::format(
      "method=affine+diffeomorphic-demons\ngrid_mm={:.17g}\niterations={}\nfield_sigma_vox={:.17g}\n"
      "update_sigma_vox={:.17g}\nmax_step_vox={:.17g}\naffine_grid_mm={:.17g}\n"
      "affine_iterations={}\nmargin_mm={:.17g}\nclip_hu={:.17g},{:.17g}\n"
      "lesion_margin_mm={:.17g}\nmask_lesions={}\nnormalize_density={}\ninverse_iterations={}\n",
      grid_mm, its, field_sigma_vox, update_sigma_vox, max_step_vox, affine_grid_mm,
      affine_iterations, margin_mm, clip_low_hu, clip_high_hu, lesion_margin_mm,
      mask_lesions ? 1 : 0, normalize_density ? 1 : 0, inverse_iterations);
}

nlohmann::json RegistrationParams::to_json() const {
  return {{"method", "affine (ITK v4, mean squares) + diffeomorphic demons (ITK, symmetric forces)"},
          {"grid_mm", grid_mm},
          {"levels", iterations.size()},
          {"iterations", iterations},
          {"field_sigma_vox", field_sigma_vox},
          {"update_sigma_vox", update_sigma_vox},
          {"max_step_vox", max_step_vox},
          {"affine_grid_mm", affine_grid_mm},
          {"affine_iterations", affine_iterations},
          {"margin_mm", margin_mm},
          {"clip_hu", {clip_low_hu, clip_high_hu}},
          {"lesion_margin_mm", lesion_margin_mm},
          {"mask_lesions", mask_lesions},
          {"normalize_density", normalize_density},
          {"inverse_iterations", inverse_iterations}};
}

nlohmann::json RegistrationResult::to_json() const {
  return {{"mad_initial_hu", mad_initial_hu},
          {"mad_affine_hu", mad_affine_hu},
          {"mad_final_hu", mad_final_hu},
          {"baseline_parenchyma_hu", baseline_parenchyma_hu},
          {"followup_parenchyma_hu", followup_parenchyma_hu},
          {"density_scale", density_scale},
          {"inverse_residual_mm",
           {{"max", inverse_quality.max_mm},
            {"p99", inverse_quality.p99_mm},
            {"over_1mm_pct", inverse_quality.over_1mm_pct}}},
          {"max_displacement_mm", forward.field.max_norm()},
          {"affine_determinant", forward.affine.determinant()},
          {"timing_s",
           {{"prepare", timing.prepare_s},
            {"affine", timing.affine_s},
            {"deformable", timing.deformable_s},
            {"inverse", timing.inverse_s},
            {"total", timing.total_s},
            {"cpu", timing.cpu_s}}}};
}

Geometry lung_grid(const LabelImage& lungs, double margin_mm, double spacing_mm) {
  const IndexBox b = label_box(lungs, 0.0, {labels::kRightLung, labels::kLeftLung});
  if (b.empty()) throw Error(ExitCode::kProcessing, "registration: no lung voxel");
  Vec3 lo{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
          std::numeric_limits<double>::infinity()};
  Vec3 hi{-lo[0], -lo[1], -lo[2]};
  for (int corner = 0; corner < 8; ++corner) {
    const double ci = (corner & 1) ? double(b.hi[0]) - 0.5 : double(b.lo[0]) - 0.5;
    const double cj = (corner & 2) ? double(b.hi[1]) - 0.5 : double(b.lo[1]) - 0.5;
    const double ck = (corner & 4) ? double(b.hi[2]) - 0.5 : double(b.lo[2]) - 0.5;
    const auto p = lungs.geom.to_physical(ci, cj, ck);
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  Geometry g;
  for (int a = 0; a < 3; ++a) {
    const double extent = hi[a] - lo[a] + 2 * margin_mm;
    g.size[a] = static_cast<std::size_t>(std::ceil(extent / spacing_mm)) + 1;
    g.spacing[a] = spacing_mm;
    // Centred on the box.
    const double centre = 0.5 * (lo[a] + hi[a]);
    g.origin[a] = centre - 0.5 * spacing_mm * double(g.size[a] - 1);
  }
  return g;
}

double parenchyma_median_hu(const VisitImages& v) {
  constexpr int kLo = -1100, kHi = 200;
  std::vector<std::uint64_t> hist(kHi - kLo + 1, 0);
  const CtImage& ct = *v.ct;
  const LabelImage& lungs = *v.lungs;
  const bool have_lesions = v.lesions && !v.lesions->empty();
  const long n = static_cast<long>(ct.size());
#pragma omp parallel
  {
    std::vector<std::uint64_t> local(hist.size(), 0);
#pragma omp for schedule(static) nowait
    for (long q = 0; q < n; ++q) {
      if (!is_lung(lungs.data[std::size_t(q)])) continue;
      if (have_lesions && v.lesions->data[std::size_t(q)] != 0) continue;
      const int h = std::clamp<int>(ct.data[std::size_t(q)], kLo, kHi);
      ++local[std::size_t(h - kLo)];
    }
#pragma omp critical
    for (std::size_t b = 0; b < hist.size(); ++b) hist[b] += local[b];
  }
  std::uint64_t total = 0;
  for (auto c : hist) total += c;
  if (total == 0) throw Error(ExitCode::kProcessing, "registration: no lung voxel");
  std::uint64_t acc = 0;
  for (std::size_t b = 0; b < hist.size(); ++b) {
    acc += hist[b];
    if (2 * acc >= total) return double(int(b) + kLo);
  }
  return double(kHi);
}

FloatImage prepare_image(const VisitImages& v, const Geometry& grid, const RegistrationParams& p,
                         double replacement_hu, double density_scale, FloatImage* lesion_weight) {
  const CtImage& ct = *v.ct;
  const LabelImage& lungs = *v.lungs;
  const bool have_lesions = p.mask_lesions && v.lesions && !v.lesions->empty();
  const GridMap gm(grid), sm(ct.geom);
  const auto& s = ct.geom.size;
  // Sub-samples per grid voxel along each axis (anti-aliasing: an average over the footprint; two
  // per axis are enough for the smooth images the demons use).
  int ns[3];
  for (int a = 0; a < 3; ++a) {
    ns[a] = std::clamp(static_cast<int>(std::lround(grid.spacing[a] / ct.geom.spacing[a])), 1, 2);
  }
  FloatImage value(grid, FloatImage::Uninitialised{});
  FloatImage lesion(grid, 0.0f);
  const double lo = p.clip_low_hu, hi = p.clip_high_hu;
  const long nz = static_cast<long>(grid.size[2]);
#pragma omp parallel for schedule(static)
  for (long k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < grid.size[1]; ++j) {
      for (std::size_t i = 0; i < grid.size[0]; ++i) {
        double sum = 0;
        int count = 0, nles = 0;
        for (int c = 0; c < ns[2]; ++c) {
          for (int b = 0; b < ns[1]; ++b) {
            for (int a = 0; a < ns[0]; ++a) {
              const Vec3 gi{double(i) + (a + 0.5) / ns[0] - 0.5, double(j) + (b + 0.5) / ns[1] - 0.5,
                            double(k) + (c + 0.5) / ns[2] - 0.5};
              const Vec3 ci = sm.to_index(gm.to_point(gi));
              // Beyond the scan: the nearest voxel (clamped), like a replicated border.
              Vec3 cc;
              for (int q = 0; q < 3; ++q) cc[q] = std::clamp(ci[q], 0.0, double(s[q] - 1));
              double hu = trilinear(ct, cc);
              const std::size_t n = ct.geom.index(std::size_t(std::lround(cc[0])),
                                                  std::size_t(std::lround(cc[1])),
                                                  std::size_t(std::lround(cc[2])));
              if (have_lesions && v.lesions->data[n] != 0) {
                ++nles;
              } else if (density_scale != 1.0 && is_lung(lungs.data[n]) && hu < -300) {
                hu = -1000 + (hu + 1000) * density_scale;
              }
              sum += std::clamp(hu, lo, hi);
              ++count;
            }
          }
        }
        const std::size_t idx = grid.index(i, j, std::size_t(k));
        value.data[idx] = static_cast<float>(sum / count);
        lesion.data[idx] = static_cast<float>(double(nles) / count);
      }
    }
  }
  if (lesion_weight) *lesion_weight = FloatImage(grid, 0.0f);
  if (!have_lesions) return value;
  // Lesions grown by lesion_margin_mm (a box max filter of that radius) replace the value.
  int r[3];
  for (int a = 0; a < 3; ++a) {
    r[a] = static_cast<int>(std::ceil(p.lesion_margin_mm / grid.spacing[a] - 1e-9));
  }
  const auto& g = grid.size;
#pragma omp parallel for schedule(static)
  for (long k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < g[1]; ++j) {
      for (std::size_t i = 0; i < g[0]; ++i) {
        // A neighbour that is mostly lesion replaces this voxel whole (its rim is partial
        // volume); otherwise the voxel's own lesion fraction is replaced in proportion.
        float w = lesion.data[grid.index(i, j, std::size_t(k))];
        const long k0 = std::max<long>(0, k - r[2]), k1 = std::min<long>(long(g[2]) - 1, k + r[2]);
        const long j0 = std::max<long>(0, long(j) - r[1]), j1 = std::min<long>(long(g[1]) - 1, long(j) + r[1]);
        const long i0 = std::max<long>(0, long(i) - r[0]), i1 = std::min<long>(long(g[0]) - 1, long(i) + r[0]);
        for (long kk = k0; kk <= k1 && w < 1; ++kk) {
          for (long jj = j0; jj <= j1 && w < 1; ++jj) {
            for (long ii = i0; ii <= i1; ++ii) {
              if (lesion.data[grid.index(std::size_t(ii), std::size_t(jj), std::size_t(kk))] >= 0.5f) {
                w = 1;
                break;
              }
            }
          }
        }
        const std::size_t idx = grid.index(i, j, std::size_t(k));
        value.data[idx] = static_cast<float>(w * std::clamp(replacement_hu, lo, hi) +
                                             (1 - w) * value.data[idx]);
        if (lesion_weight) lesion_weight->data[idx] = w;
      }
    }
  }
  return value;
}

RegistrationResult register_to_baseline(const VisitImages& baseline, const VisitImages& followup,
                                        const RegistrationParams& p) {
  Stopwatch total, lap;
  const std::clock_t cpu0 = std::clock();
  // CPU seconds of the process (all threads) per stage, for the debug log.
  std::clock_t cpu_mark = cpu0;
  const auto cpu_lap = [&cpu_mark] {
    const std::clock_t now = std::clock();
    const double s = double(now - cpu_mark) / CLOCKS_PER_SEC;
    cpu_mark = now;
    return s;
  };
  double cpu_stage[4] = {0, 0, 0, 0};
  check_visit(baseline, "baseline");
  check_visit(followup, "follow-up");
  if (p.iterations.empty() || p.grid_mm <= 0) {
    throw Error(ExitCode::kUsage, "registration: at least one level and a positive grid spacing");
  }
  RegistrationResult r;
  Vec3 cb, cf;
  if (!lung_centroid(*baseline.lungs, &cb)) {
    throw Error(ExitCode::kProcessing, "registration: the baseline scan has no lung voxel");
  }
  if (!lung_centroid(*followup.lungs, &cf)) {
    throw Error(ExitCode::kProcessing, "registration: the follow-up scan has no lung voxel");
  }
  r.baseline_parenchyma_hu = parenchyma_median_hu(baseline);
  r.followup_parenchyma_hu = parenchyma_median_hu(followup);
  if (p.normalize_density && r.followup_parenchyma_hu > -1000 && r.baseline_parenchyma_hu > -1000) {
    r.density_scale = (r.baseline_parenchyma_hu + 1000) / (r.followup_parenchyma_hu + 1000);
  }
  const Geometry gf = lung_grid(*baseline.lungs, p.margin_mm, p.grid_mm);
  // The follow-up's image reaches further, so that the affine's image of the baseline grid
  // stays inside it.
  const Geometry gm = lung_grid(*followup.lungs, p.margin_mm + 30.0, p.grid_mm);
  FloatImage fixed_lesions, moving_lesions;
  const FloatImage fixed =
      prepare_image(baseline, gf, p, r.baseline_parenchyma_hu, 1.0, &fixed_lesions);
  const FloatImage moving =
      prepare_image(followup, gm, p, r.baseline_parenchyma_hu, r.density_scale, &moving_lesions);
  const FloatImage weight = lung_weight(*baseline.lungs, gf);
  r.timing.prepare_s = lap.lap();
  cpu_stage[0] = cpu_lap();

  Affine init;
  for (int a = 0; a < 3; ++a) init.t[a] = cf[a] - cb[a];
  {
    Transform t0;
    t0.affine = init;
    r.mad_initial_hu = mean_abs_difference(fixed, resample(moving, t0, gf, p.clip_high_hu), weight);
  }
  r.forward.affine = itk_affine(fixed, moving, init, p);
  Transform ta;
  ta.affine = r.forward.affine;
  const FloatImage moved = resample(moving, ta, gf, p.clip_high_hu);
  r.mad_affine_hu = mean_abs_difference(fixed, moved, weight);
  r.timing.affine_s = lap.lap();
  cpu_stage[1] = cpu_lap();

  // Each scan's lesions, brought into the other's image by the affine and grown by one voxel (its
  // error), are replaced in both: where either visit has a lesion, both images are the same flat
  // parenchyma, no force acts, and the field there is interpolated by the regularisation from the
  // lung around it.
  FloatImage demons_fixed = fixed, demons_moving = moved;
  if (p.mask_lesions) {
    const FloatImage moved_lesions = resample(moving_lesions, ta, gf, 0.0);
    const auto& g = gf.size;
    FloatImage both(gf, 0.0f);
    for (std::size_t q = 0; q < both.size(); ++q) {
      both.data[q] = std::max(fixed_lesions.data[q], moved_lesions.data[q]);
    }
    const float rep = static_cast<float>(std::clamp(r.baseline_parenchyma_hu, p.clip_low_hu, p.clip_high_hu));
    const long nz = static_cast<long>(g[2]);
#pragma omp parallel for schedule(static)
    for (long k = 0; k < nz; ++k) {
      for (std::size_t j = 0; j < g[1]; ++j) {
        for (std::size_t i = 0; i < g[0]; ++i) {
          float w = 0;
          for (long dk = -1; dk <= 1; ++dk) {
            for (long dj = -1; dj <= 1; ++dj) {
              for (long di = -1; di <= 1; ++di) {
                const long ii = long(i) + di, jj = long(j) + dj, kk = k + dk;
                if (ii < 0 || jj < 0 || kk < 0 || ii >= long(g[0]) || jj >= long(g[1]) || kk >= long(g[2])) continue;
                const float b = both.data[gf.index(std::size_t(ii), std::size_t(jj), std::size_t(kk))];
                w = std::max(w, (di == 0 && dj == 0 && dk == 0) ? b : (b >= 0.5f ? 1.0f : 0.0f));
              }
            }
          }
          const std::size_t q = gf.index(i, j, std::size_t(k));
          demons_fixed.data[q] = w * rep + (1 - w) * demons_fixed.data[q];
          demons_moving.data[q] = w * rep + (1 - w) * demons_moving.data[q];
        }
      }
    }
  }

  r.forward.field = itk_demons(demons_fixed, demons_moving, p);
  r.mad_final_hu = mean_abs_difference(fixed, resample(moving, r.forward, gf, p.clip_high_hu), weight);
  r.timing.deformable_s = lap.lap();
  cpu_stage[2] = cpu_lap();

  r.inverse = invert(r.forward, lung_grid(*followup.lungs, p.margin_mm, p.grid_mm),
                     p.inverse_iterations, &r.inverse_quality);
  r.timing.inverse_s = lap.lap();
  cpu_stage[3] = cpu_lap();
  r.timing.total_s = total.seconds();
  r.timing.cpu_s = double(std::clock() - cpu0) / CLOCKS_PER_SEC;
  log::debug("registration: prepare {:.2f} s, affine {:.2f} s, demons {:.2f} s, inverse {:.2f} s "
             "(CPU {:.2f} s: {:.2f}, {:.2f}, {:.2f}, {:.2f}); MAD {:.1f} -> {:.1f} -> {:.1f} HU",
             r.timing.prepare_s, r.timing.affine_s, r.timing.deformable_s, r.timing.inverse_s,
             r.timing.cpu_s, cpu_stage[0], cpu_stage[1], cpu_stage[2], cpu_stage[3],
             r.mad_initial_hu, r.mad_affine_hu, r.mad_final_hu);
  return r;
}

}  // namespace lungvol::registration
