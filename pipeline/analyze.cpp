#include "pipeline/analyze.hpp"

#include <cmath>
#include <exception>

#include <fmt/format.h>
#include <filesystem>
#include <functional>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/labels.hpp"
#include "core/fs.hpp"
#include "core/names.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "core/timer.hpp"
#include "core/version.hpp"
#include "dicomout/seg.hpp"
#include "dicomout/source.hpp"
#include "dicomout/sr.hpp"
#include "io/image_io.hpp"
#include "pipeline/flags.hpp"
#include "pipeline/tables.hpp"
#include "report/qc_images.hpp"

namespace lungvol::pipeline {

const RegionResult& Analysis::region(const std::string& name) const {
  for (const auto& r : regions) {
    if (r.name == name) return r;
  }
  throw Error(ExitCode::kProcessing, "no region named '" + name + "'");
}

std::vector<RegionResult> measure_regions(std::vector<vol::RegionHistograms> histograms,
                                          const Protocol& protocol, double voxel_ml) {
  std::vector<RegionResult> out;
  out.reserve(histograms.size());
  for (auto& h : histograms) {
    RegionResult r;
    r.name = h.name;
    r.volumes = vol::measure_volumes(h, protocol, voxel_ml);
    r.density = dens::measure_density(h.lung, protocol.densitometry, voxel_ml);
    r.histograms = std::move(h);
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

// Dense tissue next to the lungs that was left out of them, and tissue admitted away from the
// chest wall as lesion-shaped blobs (segmentation/lungs.hpp), each as % of the lungs, with the
// protocol's flag on either: both are where the lung mask may be wrong in a way that moves the
// lesion proportion, and a reviewer sorts by them.
struct DenseReview {
  double left_out_ml = 0, left_out_pct = 0, blobs_pct = 0;
  double right_share = 0;  // right lung / both lungs; 0 when the sides are unknown
  // How far the back of each lung's base lies above its lowest part (segmentation/lung_base.hpp)
  // and the limit for the scan's slice spacing.
  double base_rise_mm[2] = {0, 0};  // right, left
  double base_limit_mm = 0;
  bool left_out_flag = false, blobs_flag = false, share_flag = false;
  bool base_flag[2] = {false, false};
  bool flagged() const { return left_out_flag || blobs_flag || share_flag || base_flag[0] || base_flag[1]; }
};

// The right lung holds a little more than half of the lung volume (three lobes to the left's
// two and the heart on the left; CIP 10002K 53 %, POPI 52 %). A share outside this range means
// a lung lost or gained a lobe's worth: a consolidated lobe left out of the mask (which the
// costal completion cannot see when no aerated lung borders it from outside), atelectasis, a
// pneumothorax or a lobectomy; each needs a reader. Not a protocol setting: it is a plausibility
// check on anatomy, not a measurement threshold.
constexpr double kRightShareLo = 0.45, kRightShareHi = 0.62;

DenseReview dense_review(const Analysis& a) {
  DenseReview r;
  const double lungs_ml = a.regions.empty() ? 0.0 : a.region("lungs").volumes.volume_ml;
  r.left_out_ml = a.lungs.costal_left_out_ml + a.lungs.bays_left_out_ml;
  if (lungs_ml > 0) {
    r.left_out_pct = 100.0 * r.left_out_ml / lungs_ml;
    r.blobs_pct = 100.0 * a.lungs.blobs_added_ml / lungs_ml;
  }
  if (!a.regions.empty() && !a.sides_unknown() && lungs_ml > 0) {
    r.right_share = a.region("right").volumes.volume_ml / lungs_ml;
    r.share_flag = r.right_share < kRightShareLo || r.right_share > kRightShareHi;
  }
  r.left_out_flag = r.left_out_pct > a.protocol.lung.left_out_flag_pct;
  r.blobs_flag = r.blobs_pct > a.protocol.lung.left_out_flag_pct;
  if (!a.sides_unknown()) {
    r.base_limit_mm = seg::base_rise_flag_mm(a.lungs.lungs.geom.spacing[2]);
    const seg::LungBase* bases[2] = {&a.lungs.right_base, &a.lungs.left_base};
    for (int s = 0; s < 2; ++s) {
      if (bases[s]->columns == 0) continue;
      r.base_rise_mm[s] = bases[s]->rise_mm();
      r.base_flag[s] = r.base_rise_mm[s] > r.base_limit_mm;
    }
  }
  return r;
}

std::vector<std::string> dense_warnings(const Analysis& a) {
  if (a.given_lungs) return {};
  const DenseReview r = dense_review(a);
  std::vector<std::string> out;
  if (r.left_out_flag) {
    out.push_back(fmt::format(
        "dense tissue left out of the lungs: {:.1f} mL ({:.2f} % of the lung volume, flag above "
        "{:.2f} %): consolidation on the diaphragm or in a whole lobe may be missing; review the "
        "coronal QC image",
        r.left_out_ml, r.left_out_pct, a.protocol.lung.left_out_flag_pct));
  }
  if (r.share_flag) {
    out.push_back(fmt::format(
        "dense tissue may be missing from one lung: the right lung holds {:.1f} % of the lung "
        "volume (expected {:.0f}-{:.0f} %): a consolidated lobe left out of the mask, "
        "atelectasis, pneumothorax or resection; review the coronal QC image",
        100 * r.right_share, 100 * kRightShareLo, 100 * kRightShareHi));
  }
  for (int s = 0; s < 2; ++s) {
    if (!r.base_flag[s]) continue;
    out.push_back(fmt::format(
        "dense tissue may be missing from the base of the {} lung: its back ends {:.0f} mm above "
        "its lowest part (flag above {:.0f} mm; a normal lung is lowest at the back): a "
        "consolidated lower lobe, dependent consolidation, atelectasis or pleural effusion left "
        "out of the mask; review the sagittal QC image",
        s == 0 ? "right" : "left", r.base_rise_mm[s], r.base_limit_mm));
  }
  if (r.blobs_flag) {
    out.push_back(fmt::format(
        "dense tissue admitted away from the chest wall: {:.1f} mL ({:.2f} % of the lung volume, "
        "flag above {:.2f} %): a paracardiac or basal consolidation, or the heart's border in a "
        "small chest; review the axial QC images",
        a.lungs.blobs_added_ml, r.blobs_pct, a.protocol.lung.left_out_flag_pct));
  }
  return out;
}

nlohmann::json dense_json(const Analysis& a) {
  if (a.given_lungs) return nullptr;
  const DenseReview r = dense_review(a);
  return {{"added_ml", a.lungs.dense_added_ml},
          {"costal_added_ml", a.lungs.costal_added_ml},
          {"blobs_added_ml", a.lungs.blobs_added_ml},
          {"blobs_added_pct", r.blobs_pct},
          {"left_out_ml", r.left_out_ml},
          {"left_out_pct", r.left_out_pct},
          {"costal_left_out_ml", a.lungs.costal_left_out_ml},
          {"bays_left_out_ml", a.lungs.bays_left_out_ml},
          {"flag_threshold_pct", a.protocol.lung.left_out_flag_pct},
          {"left_out_flagged", r.left_out_flag},
          {"blobs_flagged", r.blobs_flag},
          {"right_share", r.right_share > 0 ? nlohmann::json(r.right_share) : nlohmann::json(nullptr)},
          {"right_share_flagged", r.share_flag},
          {"base_rise_right_mm", r.base_rise_mm[0]},
          {"base_rise_left_mm", r.base_rise_mm[1]},
          {"base_rise_limit_mm", r.base_limit_mm},
          {"base_flagged", r.base_flag[0] || r.base_flag[1]},
          {"flagged", r.flagged()}};
}

}  // namespace

void canonicalize_input(Analysis& a) {
  if (a.canonical) return;
  const Geometry& g = a.input.image.geom;
  const Orientation o = orientation_of(g);
  if (!o.axis_aligned) {
    throw Error(ExitCode::kDicom,
                "'" + a.input.source_path + "': the image grid is " + o.describe() +
                    "; lungvol analyzes grids whose axes lie along the patient axes (within " +
                    fmt::format("{:.3f}", std::asin(kTiltTolerance) * 180.0 / M_PI) +
                    " degrees) and does not resample oblique ones");
  }
  a.original_geometry = g;
  a.orientation = o;
  if (!o.map.identity()) {
    log::info("input is {}: analyzed on the canonical axial grid (axes permuted, no interpolation)",
              o.describe());
    a.input.image = to_canonical(a.input.image, o.map);
    // Masks given on the original grid (analyze() loads them onto the canonical one itself).
    for (auto* m : {&a.given_lungs, &a.given_lesions}) {
      if (*m && (*m)->labels.geom.same_grid(g)) (*m)->labels = to_canonical((*m)->labels, o.map);
    }
  }
  a.canonical = true;
}

void segment_and_measure(Analysis& a) {
  canonicalize_input(a);
  CtImage& ct = a.input.image;
  Stopwatch sw;
  if (a.given_lungs) {
    a.lungs = seg::LungSegmentation{};
    a.lungs.lungs = a.given_lungs->labels;
    a.lungs.airway_ml = 0;
    for (auto v : a.lungs.lungs.data) a.lungs.airway_ml += v == labels::kAirway;
    a.lungs.airway_ml *= ct.geom.voxel_volume_ml();
  } else {
    a.lungs = seg::segment_lungs(ct, a.protocol.lung);
  }
  a.timings.lungs_s = sw.lap();
  throw_if_interrupted();
  // Lungs cut by the volume's boundary: the numbers then describe part of the lungs only.
  a.coverage = vol::measure_coverage(a.lungs.lungs);
  if (const std::string w = a.coverage.warning(); !w.empty()) {
    a.warnings.push_back(w);
    log::warn("{}", w);
  }
  // The air check needs the trachea; segmenting before a correction is safe because the lung
  // threshold (-500 HU) is far from air.
  const dens::CalibrationParams cal = dens::calibration_params(a.protocol.air_check);
  a.calibration = dens::check_calibration(ct, a.lungs.lungs, cal);
  log::debug("calibration check {:.3f} s", sw.seconds());
  for (const auto& f : a.calibration.flags) a.warnings.push_back("calibration: " + f);
  if (a.calibrate_air) {
    a.air_correction = dens::apply_air_calibration(
        a.input.image, a.calibration, dens::AirCalibrationMode::kScaleAboutWater, cal);
    if (!a.air_correction.applied) {
      a.warnings.push_back("--calibrate air not applied: " + a.air_correction.reason);
    }
  }
  const bool labelled_lesions = a.given_lesions && a.given_lesions->labelled;
  if (a.given_lesions) {
    a.lesions_mask_use.emplace();
    a.lesions = lesions_from_given_mask(ct, a.lungs.lungs, *a.given_lesions, a.protocol.lesion,
                                        *a.lesions_mask_use, a.warnings);
  } else {
    a.lesions = seg::segment_lesions(ct, a.lungs.lungs, a.protocol.lesion);
  }
  a.timings.lesions_s = sw.lap();
  throw_if_interrupted();
  auto hist = vol::build_region_histograms(ct, a.lungs.lungs, a.lesions.suppressed,
                                           labelled_lesions ? &a.lesions.lesions : nullptr);
  if (a.sides_unknown()) {
    // A one-region lungs mask: its side is unknown, so right, left and their zones stay empty.
    for (auto& h : hist) {
      if (h.name.rfind("right", 0) == 0 || h.name.rfind("left", 0) == 0) {
        h = vol::RegionHistograms{h.name, {}, {}, h.lesion_labels_given, {}, {}};
      }
    }
  }
  a.regions = measure_regions(std::move(hist), a.protocol, ct.geom.voxel_volume_ml());
  a.timings.measure_s = sw.lap();
  for (const auto& w : a.lungs.warnings) a.warnings.push_back(w);
  for (const auto& w : dense_warnings(a)) a.warnings.push_back(w);
}

bool output_file_is_replaceable(const std::string& name) {
  static const char* const kNames[] = {
      "metrics.json",   "measurements.csv",   "histograms.csv",  "lungs.nii.gz",
      "lesions.nii.gz", "qc_axial.png",       "qc_coronal.png",  "qc_sagittal.png",
      "qc_sagittal_right.png", "qc_sagittal_left.png", "qc_axial_lesion_levels.png",
      "qc_axial_max_lesion.png", "qc_3d.png", "seg.dcm",         "sr.dcm",
      "protocol.toml",  "meshes"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  // A temporary file of an interrupted writer (core/fs.cpp: ".<stem>.tmp<pid>_<n><ext>").
  return !name.empty() && name[0] == '.' && name.find(".tmp") != std::string::npos;
}

std::string protocol_text(const Protocol& protocol) {
  std::string text;
  try {
    text = read_text_file(protocol.source_path);
  } catch (const Error&) {
    throw Error(ExitCode::kProtocol, "protocol file '" + protocol.source_path +
                                         "' cannot be read again to store its text");
  }
  if (sha256_hex(text) != protocol.sha256) {
    throw Error(ExitCode::kProtocol, "protocol file '" + protocol.source_path +
                                         "' changed while lungvol was using it (sha256 " +
                                         protocol.sha256.substr(0, 12) + " when loaded)");
  }
  return text;
}

namespace {

// The UIDs that reach the outputs (metrics.json, CSV, results.sqlite, SEG/SR) must be DICOM UIDs:
// anything else (e.g. "=HYPERLINK(...)" from a hostile or broken header) is refused.
void check_uids(Analysis& a) {
  const auto& s = a.input.series;
  for (const auto& [tag, uid] : {std::pair<const char*, const std::string*>{"SeriesInstanceUID", &s.series_instance_uid},
                                 {"StudyInstanceUID", &s.study_instance_uid}}) {
    if (uid->empty()) continue;  // image files (NIfTI, NRRD, MHA) carry none
    const std::string problem = uid_problem(*uid);
    if (!problem.empty()) {
      throw Error(ExitCode::kDicom, "'" + a.input.source_path + "': " + tag + " '" +
                                        printable(*uid, 80) + "' is not a valid DICOM UID (" +
                                        problem + "); refusing a series whose identity cannot "
                                        "be trusted");
    }
    const std::string warning = uid_warning(*uid);
    if (!warning.empty()) a.input.warnings.push_back(std::string(tag) + ": " + warning);
  }
}

constexpr std::size_t kMinSlices = 3;

Analysis analyze_into(const AnalyzeOptions& options, StagedDirectory* out) {
  Stopwatch total;
  Analysis a;
  a.analyzed_at = utc_timestamp();
  a.protocol = load_protocol(options.protocol);
  if (out) a.protocol_toml = protocol_text(a.protocol);
  Stopwatch sw;
  a.input = io::load_ct(options.input, options.read);
  // A lung volume needs a stack of slices: two images (a scout pair, a stray localizer) are not
  // a chest CT, whatever the segmentation would make of them.
  if (const std::size_t nz = a.input.image.geom.size[2]; nz < kMinSlices) {
    throw Error(ExitCode::kDicom,
                "'" + options.input + "': too few slices (" + std::to_string(nz) +
                    "): a chest CT volume needs at least " + std::to_string(kMinSlices) +
                    " (is this a localizer or a single-slice series? `lungvol inspect` lists the "
                    "series)");
  }
  check_uids(a);
  canonicalize_input(a);
  a.calibrate_air = options.calibrate_air;
  if (!options.lungs_mask.empty()) {
    a.given_lungs = load_lungs_mask(options.lungs_mask, a.original_geometry,
                                    a.protocol.lung.min_lung_ml, a.orientation.map);
    for (const auto& w : a.given_lungs->warnings) a.input.warnings.push_back(w);
  }
  if (!options.lesions_mask.empty()) {
    if (!a.given_lungs) {
      throw Error(
          ExitCode::kUsage,
          "--lesions-mask needs --lungs-mask: a given lesions mask is measured inside the lungs "
          "it was drawn in, and the lesion proportion's denominator is that lung volume. With "
          "lungs segmented automatically, lesion voxels the segmentation left out (dense "
          "consolidation along the chest wall, what reviewers correct most) would be dropped "
          "unseen. Give the lungs mask the lesions were drawn with; to keep lungvol's lungs, "
          "give its own: run 'lungvol analyze PATH -o OUT' once, then add --lungs-mask "
          "OUT/lungs.nii.gz (or OUT/seg.dcm)");
    }
    a.given_lesions =
        load_lesions_mask(options.lesions_mask, a.original_geometry, a.orientation.map);
    for (const auto& w : a.given_lesions->warnings) a.input.warnings.push_back(w);
  }
  a.timings.read_s = sw.lap();
  a.warnings = a.input.warnings;
  log::info("read {} ({} x {} x {} voxels) in {:.2f} s", options.input,
            a.input.image.geom.size[0], a.input.image.geom.size[1], a.input.image.geom.size[2],
            a.timings.read_s);
  throw_if_interrupted();
  segment_and_measure(a);
  if (out) {
    throw_if_interrupted();
    AnalyzeOptions staged = options;
    staged.outdir = out->path();
    write_outputs(a, staged);
    a.timings.total_s = total.seconds();
    // metrics.json carries the final total; rewrite it (small) now that it is known.
    write_text_atomic(out->path() + "/metrics.json", metrics_json(a).dump(2) + "\n");
    out->commit();
  }
  a.timings.total_s = total.seconds();
  return a;
}

}  // namespace

Analysis analyze(const AnalyzeOptions& options) {
  if (options.outdir.empty()) return analyze_into(options, nullptr);
  // The output folder is checked (and its temporary sibling made) before minutes of work.
  StagedDirectory out(options.outdir, output_file_is_replaceable);
  try {
    return analyze_into(options, &out);
  } catch (const Error& e) {
    out.discard();
    throw Error(e.code(), out.with_final_path(e.what()));
  }
}

namespace {
double finite_or_zero(double v) { return std::isfinite(v) ? v : 0.0; }

nlohmann::json region_json(const RegionResult& r) {
  const auto& v = r.volumes;
  const auto& d = r.density;
  nlohmann::json density = {{"mean_hu", d.mean_hu},   {"median_hu", finite_or_zero(d.median_hu)},
                            {"sd_hu", d.sd_hu},       {"skewness", d.skewness},
                            {"kurtosis", d.kurtosis}, {"haa_pct", d.haa_pct},
                            {"mass_g", d.mass_g}};
  for (const auto& [q, hu] : d.percentiles) {
    density["p" + std::to_string(int(std::lround(q))) + "_hu"] = finite_or_zero(hu);
  }
  for (const auto& [t, pct] : d.laa_pct) {
    density["laa" + std::to_string(int(std::lround(-t))) + "_pct"] = pct;
  }
  nlohmann::json classes = nlohmann::json::object();
  for (const auto& c : v.classes) classes[c.name] = {{"volume_ml", c.volume_ml}, {"pct", c.pct}};
  return {{"volume_ml", v.volume_ml}, {"lesion_ml", v.lesion_ml}, {"ggo_ml", v.ggo_ml},
          {"solid_ml", v.solid_ml},   {"lesion_pct", v.lesion_pct}, {"ggo_pct", v.ggo_pct},
          {"solid_pct", v.solid_pct}, {"density", density},         {"classes", classes}};
}

nlohmann::json mask_json(const std::optional<GivenMask>& m) {
  if (!m) return nullptr;
  return {{"path", m->path}, {"sha256", m->sha256}, {"labelled", m->labelled}};
}

nlohmann::json lesions_mask_json(const Analysis& a) {
  nlohmann::json j = mask_json(a.given_lesions);
  if (!a.given_lesions || !a.lesions_mask_use) return j;
  const LesionsMaskUse& u = *a.lesions_mask_use;
  j["use"] = {{"painted_ml", u.painted_ml},
              {"counted_ml", u.counted_ml},
              {"outside_lungs_ml", u.outside_lungs_ml},
              {"below_band_ml", u.below_band_ml},
              {"above_band_ml", u.above_band_ml},
              {"ggo_below_band_ml", u.ggo_below_band_ml},
              {"ggo_solid_range_ml", u.ggo_solid_range_ml},
              {"solid_below_band_ml", u.solid_below_band_ml},
              {"solid_ggo_range_ml", u.solid_ggo_range_ml},
              {"labelled_above_band_ml", u.labelled_above_band_ml}};
  return j;
}

nlohmann::json stats_json(const dens::RegionStats& s) {
  const auto or_null = [&](double v) { return s.n ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"mean_hu", or_null(s.mean_hu)}, {"sd_hu", or_null(s.sd_hu)},
          {"median_hu", or_null(s.median_hu)}, {"n", s.n}, {"found", s.found}};
}

// Lung and lesion voxels on the first and last slice (k = 0 and k = nz - 1): the lungs or a
// lesion may continue outside the scanned range (the coverage QC flags, pipeline/flags.hpp).
nlohmann::json end_slices_json(const Analysis& a) {
  const LabelImage& lungs = a.lungs.lungs;
  const LabelImage& lesions = a.lesions.lesions;
  const std::size_t nz = lungs.geom.size[2];
  const std::size_t slice = lungs.geom.slice_voxels();
  std::size_t lung_end = 0, lung_all = 0, lesion_end = 0;
  const auto is_lung = [](std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; };
  if (nz > 0 && lungs.data.size() >= slice * nz) {
    for (std::size_t n = 0; n < lungs.data.size(); ++n) lung_all += is_lung(lungs.data[n]);
    for (const std::size_t k : {std::size_t{0}, nz - 1}) {
      for (std::size_t i = k * slice; i < (k + 1) * slice; ++i) {
        lung_end += is_lung(lungs.data[i]);
        if (lesions.data.size() == lungs.data.size()) lesion_end += lesions.data[i] != 0;
      }
      if (nz == 1) break;
    }
  }
  return {{"lung_voxels", lung_end},
          {"lesion_voxels", lesion_end},
          {"lung_fraction", lung_all ? static_cast<double>(lung_end) / static_cast<double>(lung_all) : 0.0}};
}

nlohmann::json calibration_json(const Analysis& a) {
  const dens::CalibrationParams p = dens::calibration_params(a.protocol.air_check);
  const auto& c = a.air_correction;
  return {{"outside_air", stats_json(a.calibration.outside_air)},
          {"trachea", stats_json(a.calibration.trachea)},
          {"expected_air_hu", p.expected_air_hu},
          {"outside_air_range_hu", {p.air_lo_hu, p.air_hi_hu}},
          {"trachea_range_hu", {p.trachea_lo_hu, p.trachea_hi_hu}},
          {"ranges_source", a.protocol.air_check.source},
          {"body_margin_mm", p.body_margin_mm},
          {"outside_air_padding",
           {{"values_hu", a.calibration.padding_values_hu},
            {"voxels", a.calibration.padding_voxels}}},
          {"trachea_slices", a.calibration.trachea_slices},
          {"flags", a.calibration.flags},
          {"checked", a.calibration.checked},
          {"within_tolerance", a.calibration.within_tolerance},
          {"correction",
           {{"applied", c.applied},
            {"mode", c.mode},
            {"reference", c.reference},
            {"measured_air_hu", c.measured_air_hu},
            {"slope", c.slope},
            {"intercept_hu", c.intercept_hu},
            {"reason", c.reason}}}};
}

nlohmann::json coverage_side_json(const vol::CoverageSide& c) {
  nlohmann::json faces = nlohmann::json::object();
  for (std::size_t f = 0; f < 6; ++f) faces[vol::volume_face_names()[f]] = c.boundary_mm2[f];
  return {{"cut_by", c.cut_by()},
          {"boundary_fraction", c.boundary_fraction()},
          {"surface_mm2", c.surface_mm2},
          {"boundary_mm2", faces}};
}

nlohmann::json coverage_json(const vol::Coverage& c) {
  nlohmann::json j = coverage_side_json(c.lungs);
  j["complete"] = c.complete();
  j["right"] = coverage_side_json(c.right);
  j["left"] = coverage_side_json(c.left);
  return j;
}
}  // namespace

nlohmann::json metrics_json(const Analysis& a) {
  const auto& in = a.input;
  // Size and spacing of the input as stored (the series' own axis order).
  const auto& g = a.canonical ? a.original_geometry : in.image.geom;
  nlohmann::json regions = nlohmann::json::object();
  for (const auto& r : a.regions) regions[r.name] = region_json(r);
  const auto& s = in.series;
  nlohmann::json j = {
      {"schema", "lungvol.metrics/1"},
      {"software",
       {{"name", kSoftwareName}, {"version", kSoftwareVersion}, {"commit", kSoftwareCommit}}},
      {"analyzed_at", a.analyzed_at},
      {"input",
       {{"path", in.source_path},
        {"series_instance_uid", s.series_instance_uid},
        {"study_instance_uid", s.study_instance_uid},
        {"study_date", s.study_date},
        {"patient_id", s.patient_id},
        {"series_description", s.description},
        {"kernel", s.kernel},
        {"n_slices", g.size[2]},
        {"size", {g.size[0], g.size[1], g.size[2]}},
        {"spacing_mm", {g.spacing[0], g.spacing[1], g.spacing[2]}},
        {"orientation", a.canonical ? a.orientation.describe() : in.series.orientation},
        {"reoriented", a.canonical && !a.orientation.map.identity()},
        {"sha256", in.sha256},
        {"selection_reason", in.selection_reason},
        {"warnings", a.warnings}}},
      {"protocol",
       {{"name", a.protocol.name},
        {"version", a.protocol.version},
        {"sha256", a.protocol.sha256},
        {"lesion_band_hu", {a.protocol.lesion.low_hu(), a.protocol.lesion.high_hu()}},
        {"split_hu", a.protocol.lesion.split_hu()},
        {"file", a.protocol_toml.empty() ? nlohmann::json(nullptr) : nlohmann::json("protocol.toml")},
        {"toml", a.protocol_toml.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.protocol_toml)}}},
      {"segmentation",
       {{"lungs", a.given_lungs ? "given" : "computed"},
        {"lesions", a.given_lesions ? "given" : "computed"},
        {"lungs_mask", mask_json(a.given_lungs)},
        {"lesions_mask", lesions_mask_json(a)},
        {"lung_sides", a.sides_unknown() ? "unknown" : "right_left"},
        {"airway_ml", a.lungs.airway_ml},
        {"dense_added_ml", a.lungs.dense_added_ml},
        {"dense", dense_json(a)},
        {"lungs_touching", a.lungs.lungs_touching},
        {"end_slices", end_slices_json(a)}}},
      {"calibration", calibration_json(a)},
      {"coverage", coverage_json(a.coverage)},
      {"regions", regions},
      {"timing_s",
       {{"read", a.timings.read_s},
        {"segment", a.timings.lungs_s + a.timings.lesions_s},
        {"lungs", a.timings.lungs_s},
        {"lesions", a.timings.lesions_s},
        {"measure", a.timings.measure_s},
        {"write", a.timings.write_s},
        {"total", a.timings.total_s}}},
  };
  if (a.meshes) j["meshes"] = mesh::mesh_outputs_json(*a.meshes);
  // QC flags from what this file says, so that a reader of an older file computes the same.
  const std::vector<QcFlag> flags = scan_flags(j);
  j["flags"] = flags_json(flags);
  j["qc_score"] = qc_score(flags);
  return j;
}

namespace {
// SEG and SR need the source instances; for other inputs they are skipped with a warning.
// `g`, `lungs`, `lesions`: the series' own grid and the label maps on it.
void write_dicom_outputs(Analysis& a, const Geometry& g, const LabelImage& lungs,
                         const LabelImage& lesions, const std::string& dir) {
  if (a.sides_unknown()) return;  // warned when the mask was read: a SEG lung is right or left
  // An image file (NIfTI, NRRD, MHA) has no instances to reference: no SEG/SR is made, and no
  // attempt to read it as DICOM (which only produced DCMTK errors and a misleading warning).
  if (!a.input.series.dicom) return;
  if (!dicomout::has_dicom_source(a.input.series, g)) {
    a.warnings.push_back("DICOM SEG/SR not written: the input is not an unresampled DICOM series");
    return;
  }
  // The numbers do not depend on these objects: a source header DCMTK cannot copy into a SEG
  // costs the DICOM outputs (with a warning), not the analysis.
  try {
    const dicomout::SourceSlices src = dicomout::read_source_slices(a.input.series, g);
    dicomout::SegOptions seg_options;
    seg_options.source_slices = &src;
    const dicomout::SegWriteResult seg = dicomout::write_dicom_seg(
        g, lungs, lesions, a.input.series, dir + "/seg.dcm", seg_options);
    std::vector<dicomout::SrRegion> regions;
    for (const auto& r : a.regions) regions.push_back({r.name, r.volumes, r.density});
    dicomout::SrOptions so;
    so.protocol = a.protocol.name + " " + a.protocol.version;
    so.source_slices = &src;
    dicomout::write_dicom_sr(g, a.input.series, seg, regions, dir + "/sr.dcm", so);
  } catch (const Error& e) {
    // Saving the file failed (disk full, no permission): an output error like any other.
    if (std::string(e.what()).find("': save (") != std::string::npos) {
      std::error_code ec;
      const auto space = std::filesystem::space(dir, ec);
      const bool full = !ec && space.available < (std::uintmax_t(1) << 20);
      throw Error(ExitCode::kOutput, std::string(e.what()) +
                                         (full ? ": No space left on device" : " (disk full?)"));
    }
    a.warnings.push_back(std::string("DICOM SEG/SR not written: ") + e.what());
    log::warn("DICOM SEG/SR not written: {}", e.what());
  }
}
}  // namespace

void write_outputs(Analysis& a, const AnalyzeOptions& options) {
  Stopwatch sw;
  const std::string& dir = options.outdir;
  ensure_directory(dir);
  // Label maps and DICOM objects go out on the series' own grid: a reformat's label map
  // overlays its own slices, and its SEG references them. QC images and meshes are anatomical
  // views and physical surfaces: the same from either grid.
  const bool reoriented = a.canonical && !a.orientation.map.identity();
  const Geometry& out_geom = a.canonical ? a.original_geometry : a.input.image.geom;
  LabelImage lungs_out, lesions_out;
  if (reoriented) {
    lungs_out = to_original(a.lungs.lungs, a.orientation.map, out_geom);
    lesions_out = to_original(a.lesions.lesions, a.orientation.map, out_geom);
  }
  const LabelImage& lungs = reoriented ? lungs_out : a.lungs.lungs;
  const LabelImage& lesions = reoriented ? lesions_out : a.lesions.lesions;
  // The writers are independent and mostly compression: run them side by side. An error in
  // one is rethrown after all have finished, so no writer is left half-way.
  std::exception_ptr failure;
  const auto guarded = [&failure](const std::function<void()>& write) {
    try {
      write();
    } catch (...) {
#pragma omp critical(lungvol_write_outputs)
      if (!failure) failure = std::current_exception();
    }
  };
  // Sections are handed out in this order: the longest first (meshes when asked for, else the
  // DICOM objects, which alone take longer than the label maps and QC images together), so that
  // the short ones fill in beside them.
#pragma omp parallel sections
  {
#pragma omp section
    guarded([&] {
      if (options.write_meshes) {
        a.meshes = mesh::write_mesh_outputs(a.lungs.lungs, a.lesions.lesions, dir);
      }
    });
#pragma omp section
    guarded([&] {
      if (options.write_dicom) write_dicom_outputs(a, out_geom, lungs, lesions, dir);
    });
#pragma omp section
    guarded([&] {
      if (options.write_qc_images) {
        report::QcOptions qc;
        qc.min_side = 384;  // a 64 x 64 scan (CIP) is drawn at 384 px, not 64
        report::write_qc_images(a.input.image, a.lungs.lungs, a.lesions.lesions, dir, qc);
      }
    });
#pragma omp section
    guarded([&] {
      if (options.write_label_maps) io::write_label_image(lungs, dir + "/lungs.nii.gz");
    });
#pragma omp section
    guarded([&] {
      if (options.write_label_maps) {
        io::write_label_image(lesions, dir + "/lesions.nii.gz");
      }
    });
  }
  if (failure) std::rethrow_exception(failure);
  write_measurements_csv(a, dir + "/measurements.csv");
  write_histograms_csv(a, dir + "/histograms.csv");
  if (!a.protocol_toml.empty()) write_text_atomic(dir + "/protocol.toml", a.protocol_toml);
  a.timings.write_s = sw.lap();
  write_text_atomic(dir + "/metrics.json", metrics_json(a).dump(2) + "\n");
}

}  // namespace lungvol::pipeline
