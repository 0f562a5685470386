#include "pipeline/given_masks.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/labels.hpp"
#include "dicomout/seg.hpp"
#include "io/image_io.hpp"
#include "segmentation/lungs.hpp"

namespace lungvol::pipeline {
namespace {

bool is_dicom_seg(const std::string& path) {
  return !io::is_image_file(path);  // anything that is not NIfTI/NRRD/MHA is read as a SEG
}

// Physical corners of the grid's first and last voxel centres.
std::array<std::array<double, 3>, 2> extent(const Geometry& g) {
  return {g.to_physical(0, 0, 0),
          g.to_physical(double(g.size[0] - 1), double(g.size[1] - 1), double(g.size[2] - 1))};
}

std::uint8_t max_value(const LabelImage& m) {
  return m.empty() ? 0 : *std::max_element(m.data.begin(), m.data.end());
}

}  // namespace

LabelImage to_ct_grid(const LabelImage& mask, const Geometry& ct, const std::string& path,
                      std::vector<std::string>& warnings) {
  const Geometry& mg = mask.geom;
  if (mg.same_grid(ct, 1e-3)) return mask;
  // The same voxels in another axis order (e.g. a mask saved on lungvol's canonical axial grid
  // for a coronal series): permuted onto the CT's grid, exactly.
  const Orientation om = orientation_of(mg), oc = orientation_of(ct);
  if (om.axis_aligned && oc.axis_aligned && !(om.map.source_axis == oc.map.source_axis &&
                                              om.map.flipped == oc.map.flipped)) {
    const LabelImage canonical = to_canonical(mask, om.map);
    if (canonical.geom.same_grid(canonical_geometry(ct, oc.map), 1e-3)) {
      return to_original(canonical, oc.map, ct);
    }
  }
  for (int n = 0; n < 9; ++n) {
    if (std::abs(mg.direction[n] - ct.direction[n]) > 1e-3) {
      throw Error(ExitCode::kInput, "mask '" + path +
                                        "' has another orientation than the CT; resample it "
                                        "onto the CT first");
    }
  }
  // The same physical box: the outer faces of the two grids agree within half a voxel.
  const auto a = extent(mg), b = extent(ct);
  for (int axis = 0; axis < 3; ++axis) {
    const double tol = 0.5 * std::max(mg.spacing[axis], ct.spacing[axis]);
    const double a_lo = std::min(a[0][axis], a[1][axis]) - 0.5 * mg.spacing[axis];
    const double a_hi = std::max(a[0][axis], a[1][axis]) + 0.5 * mg.spacing[axis];
    const double b_lo = std::min(b[0][axis], b[1][axis]) - 0.5 * ct.spacing[axis];
    const double b_hi = std::max(b[0][axis], b[1][axis]) + 0.5 * ct.spacing[axis];
    if (std::abs(a_lo - b_lo) > tol || std::abs(a_hi - b_hi) > tol) {
      throw Error(ExitCode::kInput,
                  "mask '" + path + "' does not cover the same physical space as the CT (axis " +
                      std::to_string(axis) + ": mask " + std::to_string(a_lo) + ".." +
                      std::to_string(a_hi) + " mm, CT " + std::to_string(b_lo) + ".." +
                      std::to_string(b_hi) + " mm)");
    }
  }
  warnings.push_back("mask '" + path + "' is on another grid (" + std::to_string(mg.size[0]) +
                     "x" + std::to_string(mg.size[1]) + "x" + std::to_string(mg.size[2]) +
                     "); resampled to the CT grid by nearest neighbour");
  LabelImage out(ct, 0);
  // Direction matrices agree and are orthonormal: index = D^T (p - origin) / spacing.
  const auto& d = mg.direction;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(ct.size[2]); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < ct.size[1]; ++j) {
      for (std::size_t i = 0; i < ct.size[0]; ++i) {
        const auto p = ct.to_physical(double(i), double(j), double(k));
        const double v[3] = {p[0] - mg.origin[0], p[1] - mg.origin[1], p[2] - mg.origin[2]};
        std::array<long, 3> idx{};
        bool inside = true;
        for (int c = 0; c < 3; ++c) {
          const double t = (d[c] * v[0] + d[3 + c] * v[1] + d[6 + c] * v[2]) / mg.spacing[c];
          idx[c] = std::lround(t);
          inside = inside && idx[c] >= 0 && idx[c] < long(mg.size[c]);
        }
        if (inside) {
          out.at(i, j, k) = mask.at(std::size_t(idx[0]), std::size_t(idx[1]), std::size_t(idx[2]));
        }
      }
    }
  }
  return out;
}

namespace {

std::string ml_text(double ml) { return fmt::format("{:.2f} mL", ml); }

// Physical x (LPS: towards the patient's left) range of the voxels carrying `label`.
std::pair<double, double> x_range(const LabelImage& lab, std::uint8_t label) {
  const Geometry& g = lab.geom;
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  std::size_t n = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i, ++n) {
        if (lab[n] != label) continue;
        const double x = g.to_physical(double(i), double(j), double(k))[0];
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
  return {lo, hi};
}

// A binary lungs mask (any non-zero voxel is lung) split into right and left. A mask that is
// one region (one lung, a region of interest) cannot be split: it is kept whole as label 1
// and marked one_region.
LabelImage split_binary_lungs(const LabelImage& raw, const Geometry& ct, const std::string& path,
                              double min_lung_ml, bool* one_region,
                              std::vector<std::string>& warnings) {
  MaskImage m(raw.geom, 0);
  double sum_x = 0;
  std::size_t n_in = 0;
  for (std::size_t k = 0; k < ct.size[2]; ++k)
    for (std::size_t j = 0; j < ct.size[1]; ++j)
      for (std::size_t i = 0; i < ct.size[0]; ++i) {
        const std::size_t n = ct.index(i, j, k);
        if (!raw[n]) continue;
        m[n] = 1;
        sum_x += ct.to_physical(double(i), double(j), double(k))[0];
        ++n_in;
      }
  if (n_in == 0) throw Error(ExitCode::kInput, "lungs mask '" + path + "' is empty");
  const double voxel_ml = ct.voxel_volume_ml();
  *one_region = false;
  std::string why;
  LabelImage out;
  bool touching = false;
  try {
    // The lungs' own centroid stands in for the body midline: they lie on either side of it.
    out = seg::separate_left_right(m, sum_x / double(n_in), min_lung_ml, &touching);
  } catch (const Error& e) {
    if (e.code() != ExitCode::kProcessing) throw;
    *one_region = true;
    why = e.what();
  }
  if (!*one_region && touching) {
    // Split by erosion: two lungs meeting at the midline lie side by side; two pieces of one
    // lung (or of a region of interest) cut at a narrow point lie above or behind each other,
    // over the same range of x.
    const auto r = x_range(out, labels::kRightLung), l = x_range(out, labels::kLeftLung);
    const double overlap = std::min(r.second, l.second) - std::max(r.first, l.first);
    const double narrower = std::min(r.second - r.first, l.second - l.first);
    if (overlap > 0.5 * narrower) {
      *one_region = true;
      why = fmt::format("its two parts after erosion overlap over {:.0f} of {:.0f} mm left to "
                        "right (not two lungs side by side)",
                        overlap, narrower);
    }
  }
  if (*one_region) {
    out = LabelImage(ct, labels::kBackground);
    for (std::size_t n = 0; n < out.size(); ++n) {
      if (m[n]) out[n] = labels::kRightLung;
    }
    warnings.push_back(fmt::format(
        "given lungs mask '{}' is one region ({}, {}): measured as 'lungs' only; 'right', "
        "'left' and their zones are left empty and no DICOM SEG/SR is written (their lung "
        "segments must say right or left)",
        path, ml_text(double(n_in) * voxel_ml), why));
    return out;
  }
  if (touching) warnings.push_back("given lungs mask: one region, split into right and left");
  std::size_t kept = 0;
  for (std::size_t n = 0; n < out.size(); ++n) kept += out[n] != labels::kBackground;
  if (kept < n_in) {
    warnings.push_back(fmt::format(
        "given lungs mask '{}': {} in regions other than the two lungs (smaller pieces) not "
        "counted as lung",
        path, ml_text(double(n_in - kept) * voxel_ml)));
  }
  return out;
}

dicomout::SegReadResult read_seg(const std::string& path, const Geometry& ct,
                                 std::vector<std::string>& warnings) {
  dicomout::SegReadResult r = dicomout::read_dicom_seg(path, ct);
  for (const auto& n : r.notes) {
    if (n.find("ignored") != std::string::npos) warnings.push_back("given SEG: " + n);
  }
  return r;
}

}  // namespace

GivenMask load_lungs_mask(const std::string& path, const Geometry& ct, double min_lung_ml,
                          const AxisMap& to_canonical) {
  GivenMask g;
  g.path = path;
  g.sha256 = sha256_file(path);
  LabelImage raw;
  bool binary = false;
  if (is_dicom_seg(path)) {
    dicomout::SegReadResult r = read_seg(path, ct, g.warnings);
    if (max_value(r.lungs) == labels::kBackground) {
      throw Error(ExitCode::kInput, "DICOM SEG '" + path + "' has no lung segment");
    }
    binary = r.lungs_binary;
    raw = std::move(r.lungs);
  } else {
    raw = to_ct_grid(io::read_label_image(path), ct, path, g.warnings);
    const std::uint8_t top = max_value(raw);
    if (top > labels::kAirway) {
      throw Error(ExitCode::kInput, "lungs mask '" + path + "' holds label " + std::to_string(top) +
                                        "; expected 0/1 (binary) or 1 right, 2 left, 3 airway");
    }
    binary = top <= 1;
  }
  // Read on the series' own grid; split and used on the canonical one.
  raw = lungvol::to_canonical(raw, to_canonical);
  if (binary) {
    g.labels = split_binary_lungs(raw, raw.geom, path, min_lung_ml, &g.one_region, g.warnings);
  } else {
    g.labelled = true;
    g.labels = std::move(raw);
  }
  return g;
}

GivenMask load_lesions_mask(const std::string& path, const Geometry& ct,
                            const AxisMap& to_canonical) {
  GivenMask g;
  g.path = path;
  g.sha256 = sha256_file(path);
  if (is_dicom_seg(path)) {
    dicomout::SegReadResult r = read_seg(path, ct, g.warnings);
    g.labelled = !r.lesions_binary;
    g.labels = lungvol::to_canonical(r.lesions, to_canonical);
    return g;
  }
  g.labels = to_ct_grid(io::read_label_image(path), ct, path, g.warnings);
  const std::uint8_t top = max_value(g.labels);
  if (top > labels::kSolid) {
    throw Error(ExitCode::kInput, "lesions mask '" + path + "' holds label " +
                                      std::to_string(top) +
                                      "; expected 0/1 (binary) or 1 ground-glass, 2 solid");
  }
  g.labelled = top == labels::kSolid;
  g.labels = lungvol::to_canonical(g.labels, to_canonical);
  return g;
}

seg::LesionSegmentation lesions_from_given_mask(const CtImage& ct, const LabelImage& lungs,
                                                const GivenMask& mask, const LesionParams& p,
                                                LesionsMaskUse& use,
                                                std::vector<std::string>& warnings) {
  const auto is_lung = [](std::uint8_t v) {
    return v == labels::kRightLung || v == labels::kLeftLung;
  };
  seg::LesionSegmentation out;
  out.lesions = LabelImage(ct.geom, labels::kNoLesion);
  out.suppressed = MaskImage(ct.geom, 0);
  const double lo = p.low_hu(), split = p.split_hu(), hi = p.high_hu();
  std::uint64_t painted = 0, counted = 0, outside = 0, below = 0, above = 0;
  std::uint64_t ggo_below = 0, ggo_solid = 0, solid_below = 0, solid_ggo = 0, lab_above = 0;
  for (std::size_t n = 0; n < ct.size(); ++n) {
    const std::uint8_t m = mask.labels[n];
    painted += m != 0;
    if (!is_lung(lungs[n])) {
      outside += m != 0;
      continue;
    }
    const double hu = ct[n];
    const bool in_band = hu >= lo && hu < hi;
    if (m && mask.labelled) {
      out.lesions[n] = m;
      ++counted;
      if (hu >= hi) {
        ++lab_above;
      } else if (m == labels::kGroundGlass) {
        ggo_below += hu < lo;
        ggo_solid += hu >= split;
      } else {
        solid_below += hu < lo;
        solid_ggo += hu >= lo && hu < split;
      }
    } else if (m && in_band) {
      out.lesions[n] = hu < split ? labels::kGroundGlass : labels::kSolid;
      ++counted;
    } else if (m) {
      below += hu < lo;
      above += hu >= hi;
    } else if (in_band) {
      out.suppressed[n] = 1;
    }
  }
  const double v = ct.geom.voxel_volume_ml();
  use = LesionsMaskUse{};
  use.painted_ml = double(painted) * v;
  use.counted_ml = double(counted) * v;
  use.outside_lungs_ml = double(outside) * v;
  use.below_band_ml = double(below) * v;
  use.above_band_ml = double(above) * v;
  use.ggo_below_band_ml = double(ggo_below) * v;
  use.ggo_solid_range_ml = double(ggo_solid) * v;
  use.solid_below_band_ml = double(solid_below) * v;
  use.solid_ggo_range_ml = double(solid_ggo) * v;
  use.labelled_above_band_ml = double(lab_above) * v;

  const std::string what = fmt::format("lesions mask '{}' ({}, {} painted, {} counted)", mask.path,
                                       mask.labelled ? "labelled" : "binary",
                                       ml_text(use.painted_ml), ml_text(use.counted_ml));
  if (outside) {
    warnings.push_back(fmt::format("{}: {} outside the lungs not counted", what,
                                   ml_text(use.outside_lungs_ml)));
  }
  if (below || above) {
    warnings.push_back(fmt::format(
        "{}: a binary mask counts only lung voxels in the lesion band [{:g}, {:g}) HU; not "
        "counted: {} below {:g} HU (aerated lung), {} at or above {:g} HU",
        what, lo, hi, ml_text(use.below_band_ml), lo, ml_text(use.above_band_ml), hi));
  }
  if (solid_below || ggo_below) {
    warnings.push_back(fmt::format(
        "{}: labelled lesion over aerated lung, HU below the lesion band ({:g} HU): {} solid, "
        "{} ground glass; counted as given, check the mask",
        what, lo, ml_text(use.solid_below_band_ml), ml_text(use.ggo_below_band_ml)));
  }
  if (solid_ggo || ggo_solid) {
    warnings.push_back(fmt::format(
        "{}: labels contradict the HU split at {:g} HU: {} labelled solid in [{:g}, {:g}) HU, {} "
        "labelled ground glass in [{:g}, {:g}) HU; counted as labelled",
        what, split, ml_text(use.solid_ggo_range_ml), lo, split, ml_text(use.ggo_solid_range_ml),
        split, hi));
  }
  if (lab_above) {
    warnings.push_back(fmt::format("{}: {} labelled lesion at or above {:g} HU (bone, contrast, "
                                   "metal?); counted as given, check the mask",
                                   what, ml_text(use.labelled_above_band_ml), hi));
  }
  return out;
}

}  // namespace lungvol::pipeline
