#include "registration/followup.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/provenance.hpp"
#include "core/timer.hpp"
#include "core/version.hpp"
#include "dicomout/seg.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "registration/change_map.hpp"
#include "registration/inspiration.hpp"
#include "registration/qc_images.hpp"
#include "registration/transform_io.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lungvol::registration {
namespace {

constexpr const char* kAffineFile = "affine.tfm";
constexpr const char* kDeformationFile = "deformation.nii.gz";
constexpr const char* kInverseFile = "inverse.nii.gz";
constexpr const char* kChangeMapFile = "change_map.nii.gz";
constexpr const char* kChangeSegFile = "change_map_seg.dcm";
constexpr const char* kRecordFile = "registration.json";
constexpr const char* kMeasurementsFile = "measurements.csv";

struct LoadedVisit {
  CtImage ct;
  LabelImage lungs, lesions;
  io::SeriesInfo series;  // the CT's source files (the change map's SEG references them)
};

LabelImage read_labels_on(const std::string& path, const Geometry& grid) {
  LabelImage img = io::read_label_image(path);
  if (img.geom.size != grid.size || !img.geom.same_grid(grid, 0.05)) {
    throw Error(ExitCode::kInput, "'" + path + "' is not on its scan's CT grid");
  }
  img.geom = grid;  // NIfTI stores the geometry in single precision
  return img;
}

LoadedVisit load_visit(const VisitScan& v, bool with_ct = true) {
  LoadedVisit out;
  const std::string lungs = (fs::path(v.scan_dir) / "lungs.nii.gz").string();
  const std::string lesions = (fs::path(v.scan_dir) / "lesions.nii.gz").string();
  std::error_code ec;
  if (!fs::is_regular_file(lungs, ec) || !fs::is_regular_file(lesions, ec)) {
    throw Error(ExitCode::kInput,
                fmt::format("{}: no label maps in '{}' (the scan was analyzed with --no-label-maps?)",
                            v.visit, v.scan_dir));
  }
  io::ReadOptions ro;
  ro.series_uid = v.series_uid;
  if (with_ct) {
    io::LoadedCt loaded = io::load_ct(v.input_path, ro);
    out.ct = std::move(loaded.image);
    out.series = std::move(loaded.series);
    out.lungs = read_labels_on(lungs, out.ct.geom);
    out.lesions = read_labels_on(lesions, out.ct.geom);
  } else {
    out.lungs = io::read_label_image(lungs);
  }
  return out;
}

json visit_json(const VisitScan& v) {
  return {{"visit", v.visit},
          {"input_path", v.input_path},
          {"series_uid", v.series_uid},
          {"input_sha256", v.input_sha256},
          {"protocol_sha256", v.protocol_sha256},
          {"software_version", v.software_version},
          {"scan_dir", v.scan_dir}};
}

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json agreement_json(const MaskAgreement& m) {
  return {{"source_visit", m.source_visit},
          {"target_visit", m.target_visit},
          {"dice", m.dice},
          {"carried_ml", m.carried_ml},
          {"own_ml", m.own_ml},
          {"disagreement_ml", m.disagreement_ml},
          {"missed_dense_ml", m.missed_dense_ml},
          {"flagged", m.flagged},
          {"reason", m.reason}};
}

// Packs lungs (0..3) and lesions (0..2) into one label map, so one warp carries both.
LabelImage pack(const LabelImage& lungs, const LabelImage& lesions) {
  LabelImage out(lungs.geom, LabelImage::Uninitialised{});
  const long n = static_cast<long>(out.size());
#pragma omp parallel for schedule(static)
  for (long q = 0; q < n; ++q) {
    out.data[std::size_t(q)] = static_cast<std::uint8_t>(
        (lungs.data[std::size_t(q)] & 3) | ((lesions.data[std::size_t(q)] & 3) << 2));
  }
  return out;
}

void write_measurements_csv(const std::vector<Measurement>& rows, const std::string& path) {
  write_stream_atomic(path, [&](std::ostream& out) {
    out << "region,metric,value,unit\n";
    for (const auto& m : rows) {
      out << m.region << ',' << m.metric << ',';
      if (std::isfinite(m.value)) out << fmt::format("{:.17g}", m.value);
      out << ',' << m.unit << '\n';
    }
  });
}

struct VisitTransforms {
  Transform forward;  // baseline -> visit
  Transform inverse;  // visit -> baseline (a total displacement field)
};

// Registers one follow-up and writes its folder. Returns the outcome; `transforms` gets the maps.
FollowupOutcome register_one(const SubjectJob& job, const LoadedVisit& base, const VisitScan& fv,
                             VisitTransforms* transforms, std::optional<MaskAgreement>* base_agreement) {
  Stopwatch sw;
  FollowupOutcome out;
  out.visit = fv.visit;
  out.key = registration_key(job.baseline, fv, job.settings);
  out.outdir = job.flat ? job.outdir : (fs::path(job.outdir) / fv.visit).string();
  const FollowupSettings& st = job.settings;
  try {
    Stopwatch stage;
    std::clock_t cpu_mark = std::clock();
    // CPU seconds of the process (all threads) since the last call.
    const auto cpu_lap = [&cpu_mark] {
      const std::clock_t now = std::clock();
      const double s = double(now - cpu_mark) / CLOCKS_PER_SEC;
      cpu_mark = now;
      return s;
    };
    const LoadedVisit fu = load_visit(fv);
    log::debug("registration: {} read in {:.2f} s (CPU {:.2f} s)", fv.visit, stage.lap(), cpu_lap());
    throw_if_interrupted();
    const VisitImages bi{&base.ct, &base.lungs, &base.lesions};
    const VisitImages fi{&fu.ct, &fu.lungs, &fu.lesions};
    RegistrationResult r = register_to_baseline(bi, fi, st.params);
    stage.lap();
    cpu_lap();
    throw_if_interrupted();
    Stopwatch post;

    // The follow-up's lungs and lesions in baseline space, around the baseline lungs.
    const Geometry& bg = base.ct.geom;
    IndexBox box = label_box(base.lungs, 20.0, {labels::kRightLung, labels::kLeftLung});
    const LabelImage packed = warp_labels(pack(fu.lungs, fu.lesions), r.forward, bg, box);
    LabelImage warped_lungs(bg, LabelImage::Uninitialised{}), warped_lesions(bg, LabelImage::Uninitialised{});
    for (std::size_t q = 0; q < packed.size(); ++q) {
      warped_lungs.data[q] = packed.data[q] & 3;
      warped_lesions.data[q] = (packed.data[q] >> 2) & 3;
    }
    const LabelImage change = change_map(base.lesions, warped_lesions);
    const auto volumes = change_volumes(change, base.lungs, warped_lungs);
    log::debug("registration: change map {:.2f} s (CPU {:.2f} s)", stage.lap(), cpu_lap());

    // Inspiration and volume-adjusted densitometry.
    const JacobianStats jac = jacobian_in_lungs(r.forward, base.lungs);
    const auto region_or = [](const VisitScan& v, const char* name) {
      const auto it = v.regions.find(name);
      return it == v.regions.end() ? RegionDensity{std::nan(""), std::nan(""), std::nan("")} : it->second;
    };
    const RegionDensity bl = region_or(job.baseline, "lungs"), fl = region_or(fv, "lungs");
    const InspirationLevel insp = inspiration_level(bl.volume_ml, fl.volume_ml, jac, st.inspiration_tolerance);
    log::debug("registration: Jacobian {:.2f} s (CPU {:.2f} s)", stage.lap(), cpu_lap());

    // The baseline's lung mask carried into the follow-up.
    VisitTransforms vt;
    vt.forward = r.forward;
    vt.inverse = field_transform(r.inverse);
    VisitSpace bs{job.baseline.visit, &base.lungs, nullptr, nullptr};
    VisitSpace fs_{fv.visit, &fu.lungs, &vt.forward, &vt.inverse};
    const LabelImage carried = warped_envelope(bs, fs_);
    MaskAgreement agree = compare_lung_masks(carried, fu.lungs, fu.ct, st.consistency);
    agree.source_visit = job.baseline.visit;
    agree.target_visit = fv.visit;
    log::debug("registration: mask consistency {:.2f} s (CPU {:.2f} s)", stage.lap(), cpu_lap());

    // Measurements.
    for (const auto& v : volumes) {
      for (const auto& m : change_metrics(v)) {
        out.measurements.push_back({v.region, "change_" + m.metric, m.value, m.unit});
      }
    }
    auto add = [&](const std::string& region, const std::string& metric, double value,
                   const std::string& unit) { out.measurements.push_back({region, metric, value, unit}); };
    add("lungs", "volume_ratio", insp.volume_ratio, "1");
    add("lungs", "jacobian_mean", jac.mean, "1");
    add("lungs", "jacobian_sd", jac.sd, "1");
    add("lungs", "jacobian_min", jac.min, "1");
    add("lungs", "jacobian_p01", jac.p01, "1");
    add("lungs", "jacobian_p99", jac.p99, "1");
    add("lungs", "jacobian_nonpositive_pct", jac.nonpositive_pct, "%");
    add("lungs", "inspiration_flagged", insp.flagged ? 1 : 0, "1");
    for (const char* name : {"lungs", "right", "left"}) {
      const RegionDensity b = region_or(job.baseline, name), f = region_or(fv, name);
      add(name, "mean_adj_hu", volume_adjusted_hu(f.mean_hu, f.volume_ml, b.volume_ml), "HU");
      add(name, "p15_adj_hu", volume_adjusted_hu(f.p15_hu, f.volume_ml, b.volume_ml), "HU");
    }
    add("lungs", "registration_mad_hu", r.mad_final_hu, "HU");
    add("lungs", "inverse_residual_p99_mm", r.inverse_quality.p99_mm, "mm");
    add("lungs", "baseline_mask_dice", agree.dice, "1");
    add("lungs", "baseline_mask_disagreement_ml", agree.disagreement_ml, "mL");
    add("lungs", "baseline_mask_missed_dense_ml", agree.missed_dense_ml, "mL");
    add("lungs", "baseline_mask_flagged", agree.flagged ? 1 : 0, "1");

    // The record.
    out.registered_at = utc_timestamp();
    json change_json = json::object();
    for (const auto& v : volumes) {
      json j = json::object();
      for (const auto& m : change_metrics(v)) j[m.metric] = finite_or_null(m.value);
      change_json[v.region] = j;
    }
    json adjusted = json::object();
    for (const char* name : {"lungs", "right", "left"}) {
      const RegionDensity b = region_or(job.baseline, name), f = region_or(fv, name);
      adjusted[name] = {{"baseline_volume_ml", finite_or_null(b.volume_ml)},
                        {"followup_volume_ml", finite_or_null(f.volume_ml)},
                        {"mean_hu", finite_or_null(f.mean_hu)},
                        {"mean_adj_hu", finite_or_null(volume_adjusted_hu(f.mean_hu, f.volume_ml, b.volume_ml))},
                        {"p15_hu", finite_or_null(f.p15_hu)},
                        {"p15_adj_hu", finite_or_null(volume_adjusted_hu(f.p15_hu, f.volume_ml, b.volume_ml))}};
    }
    out.inspiration_flagged = insp.flagged;
    out.consistency_flagged = agree.flagged;
    out.record = {
        {"schema", kRecordSchema},
        {"software", {{"name", kSoftwareName}, {"version", kSoftwareVersion}}},
        {"subject_id", job.subject_id},
        {"baseline", visit_json(job.baseline)},
        {"followup", visit_json(fv)},
        {"key", out.key},
        {"parameters", st.params.to_json()},
        {"parameters_sha256", sha256_hex(st.params.text())},
        {"registered_at", out.registered_at},
        {"transform",
         {{"direction", "baseline (fixed) -> follow-up (moving) points, LPS mm"},
          {"composition", "y = affine(x + deformation(x)); ITK CompositeTransform [affine, deformation]"},
          {"affine", kAffineFile},
          {"deformation", kDeformationFile},
          {"inverse", kInverseFile},
          {"inverse_composition", "x = y + inverse(y) (total displacement, follow-up grid)"}}},
        {"files",
         {{"change_map", kChangeMapFile},
          {"measurements", kMeasurementsFile},
          {"qc", st.write_qc_images ? json::array({"qc_change_axial.png", "qc_change_coronal.png",
                                                   "qc_checker_axial.png", "qc_checker_coronal.png"})
                                    : json::array()}}},
        {"quality", r.to_json()},
        {"jacobian",
         {{"mean", jac.mean}, {"sd", jac.sd}, {"min", jac.min}, {"max", jac.max},
          {"p01", jac.p01}, {"p99", jac.p99}, {"nonpositive_pct", jac.nonpositive_pct},
          {"voxels", jac.voxels}}},
        {"inspiration",
         {{"baseline_lung_ml", finite_or_null(insp.baseline_lung_ml)},
          {"followup_lung_ml", finite_or_null(insp.followup_lung_ml)},
          {"volume_ratio", finite_or_null(insp.volume_ratio)},
          {"jacobian_ratio", insp.jacobian_ratio},
          {"tolerance", insp.tolerance},
          {"flagged", insp.flagged}}},
        {"volume_adjusted_densitometry",
         {{"method", "sponge model: HU_adj + 1000 = (HU + 1000) * V / V_baseline (Stoel et al., "
                     "Proc Am Thorac Soc 2008;5:919-924)"},
          {"regions", adjusted}}},
        {"change", change_json},
        {"baseline_mask_consistency", agreement_json(agree)},
        {"timing_s", {{"registration", r.timing.total_s}, {"outputs", 0.0}}}};

    // The folder, swapped in whole.
    StagedDirectory staged(out.outdir, registration_file_is_replaceable);
    const fs::path d(staged.path());
    write_affine(r.forward.affine, (d / kAffineFile).string());
    write_field(r.forward.field, (d / kDeformationFile).string());
    write_field(r.inverse, (d / kInverseFile).string());
    log::debug("registration: transforms written in {:.2f} s (CPU {:.2f} s)", stage.lap(), cpu_lap());
    io::write_label_image(change, (d / kChangeMapFile).string());
    // The change map as a DICOM SEG on the baseline series, for a viewer beside the baseline
    // CT. Only a DICOM baseline has slices to reference; no lesion at either visit gives no
    // segment, hence no SEG. A SEG that cannot be made (a source header DCMTK cannot copy) costs
    // the SEG, with a warning in registration.json, not the registration.
    json seg_file = nullptr;
    json warnings = json::array();
    const bool any_change =
        std::any_of(change.data.begin(), change.data.end(), [](std::uint8_t v) { return v != 0; });
    if (base.series.dicom && dicomout::has_dicom_source(base.series, base.ct.geom) && any_change) {
      dicomout::SegOptions so;
      so.series_description = "lungvol lesion change " + fv.visit + " vs " + job.baseline.visit;
      so.series_number = 9903;
      try {
        dicomout::write_change_map_seg(base.ct.geom, change, base.series,
                                       (d / kChangeSegFile).string(), so);
        seg_file = kChangeSegFile;
      } catch (const Error& e) {
        warnings.push_back(std::string("change map DICOM SEG not written: ") + e.what());
        log::warn("{} {}: change map DICOM SEG not written: {}", job.subject_id, fv.visit, e.what());
      }
    }
    out.record["files"]["change_seg"] = seg_file;
    out.record["warnings"] = warnings;
    log::debug("registration: change map and its SEG written in {:.2f} s (CPU {:.2f} s)", stage.lap(), cpu_lap());
    write_measurements_csv(out.measurements, (d / kMeasurementsFile).string());
    if (st.write_qc_images) {
      write_registration_qc(base.ct, base.lungs, change, fu.ct, r.forward, d.string());
    }
    out.record["timing_s"]["outputs"] = post.seconds();
    write_text_atomic((d / kRecordFile).string(), out.record.dump(2) + "\n");
    throw_if_interrupted();
    staged.commit();
    *transforms = std::move(vt);
    *base_agreement = agree;
    out.status = "ok";
  } catch (const Error& e) {
    if (e.code() == ExitCode::kInterrupted) throw;
    out.status = "failed";
    out.error = e.what();
    out.exit_code = e.exit_status();
  } catch (const std::bad_alloc&) {
    out.status = "failed";
    out.error = "out of memory";
    out.exit_code = static_cast<int>(ExitCode::kProcessing);
  } catch (const std::exception& e) {
    out.status = "failed";
    out.error = e.what();
    out.exit_code = static_cast<int>(ExitCode::kProcessing);
  }
  out.seconds = sw.seconds();
  if (out.status == "ok") {
    log::info("registration: {} {} -> {}: ok ({:.1f} s; volume ratio {:.3f}, Jacobian {:.3f}{}{})",
              job.subject_id, fv.visit, job.baseline.visit, out.seconds,
              out.record["inspiration"]["volume_ratio"].is_number()
                  ? out.record["inspiration"]["volume_ratio"].get<double>() : std::nan(""),
              out.record["jacobian"]["mean"].get<double>(),
              out.inspiration_flagged ? "; inspiration flagged" : "",
              out.consistency_flagged ? "; lung masks disagree" : "");
  } else {
    out.registered_at = utc_timestamp();
    log::warn("registration: {} {} failed: {}", job.subject_id, fv.visit, out.error);
  }
  return out;
}

}  // namespace

VisitScan visit_scan_from_analysis(const std::string& dir, const std::string& visit) {
  const std::string path = (fs::path(dir) / "metrics.json").string();
  json m;
  try {
    m = json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    throw Error(ExitCode::kInput, "'" + path + "' is not JSON: " + e.what());
  }
  if (m.value("schema", "") != "lungvol.metrics/1") {
    throw Error(ExitCode::kInput, "'" + path + "' is not a lungvol analyze output (metrics.json)");
  }
  VisitScan v;
  v.visit = visit;
  try {
    const json& in = m.at("input");
    v.input_path = in.at("path").get<std::string>();
    v.series_uid = in.value("series_instance_uid", "");
    v.input_sha256 = in.value("sha256", "");
    v.protocol_sha256 = m.at("protocol").value("sha256", "");
    v.software_version = m.at("software").value("version", "");
    v.scan_dir = dir;
    const auto num = [](const json& x) { return x.is_number() ? x.get<double>() : std::nan(""); };
    for (const char* name : {"lungs", "right", "left"}) {
      const json& r = m.at("regions").at(name);
      v.regions[name] = {num(r.value("volume_ml", json())), num(r.at("density").value("mean_hu", json())),
                         num(r.at("density").value("p15_hu", json()))};
    }
    v.lesion_pct = num(m.at("regions").at("lungs").value("lesion_pct", json()));
  } catch (const json::exception& e) {
    throw Error(ExitCode::kInput, "'" + path + "': " + e.what());
  }
  return v;
}

bool registration_file_is_replaceable(const std::string& name) {
  static const char* const kNames[] = {kAffineFile,           kDeformationFile,        kInverseFile,
                                       kChangeMapFile,        kChangeSegFile,
                                       kRecordFile,           kMeasurementsFile,
                                       "qc_change_axial.png", "qc_change_coronal.png", "qc_checker_axial.png",
                                       "qc_checker_coronal.png"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return !name.empty() && name[0] == '.' && name.find(".tmp") != std::string::npos;
}

std::string registration_key(const VisitScan& b, const VisitScan& f, const FollowupSettings& s) {
  const std::string text = fmt::format(
      "{}\nparameters:\n{}consistency={:.17g},{:.17g},{:.17g},{:.17g},{:.17g}\n"
      "inspiration_tolerance={:.17g}\nqc={}\n"
      "baseline={}|{}|{}|{}\nfollowup={}|{}|{}|{}\nsoftware={}\n",
      kRecordSchema, s.params.text(), s.consistency.min_dice, s.consistency.max_missed_dense_ml,
      s.consistency.dense_low_hu, s.consistency.dense_high_hu, s.consistency.erode_mm,
      s.inspiration_tolerance, s.write_qc_images ? 1 : 0, b.visit, b.input_sha256,
      b.protocol_sha256, b.software_version, f.visit, f.input_sha256, f.protocol_sha256,
      f.software_version, kSoftwareVersion);
  return sha256_hex(text);
}

std::string subject_key(const VisitScan& b, const std::vector<VisitScan>& followups,
                        const FollowupSettings& s) {
  std::string text = fmt::format("{}\nsubject\nbaseline={}|{}|{}|{}|{:.17g}\n", kRecordSchema, b.visit,
                                 b.input_sha256, b.protocol_sha256, b.software_version, b.lesion_pct);
  for (const auto& f : followups) {
    text += fmt::format("followup={}|{}|{:.17g}\n", f.visit, registration_key(b, f, s), f.lesion_pct);
  }
  return sha256_hex(text);
}

SubjectOutcome run_subject(const SubjectJob& job) {
  SubjectOutcome out;
  out.subject_id = job.subject_id;
  out.subject_key = subject_key(job.baseline, job.followups, job.settings);
  if (job.followups.empty()) return out;
  LoadedVisit base;
  std::map<std::string, VisitTransforms> transforms;
  std::map<std::string, MaskAgreement> base_agreements;
  try {
    base = load_visit(job.baseline);
  } catch (const Error& e) {
    if (e.code() == ExitCode::kInterrupted) throw;
    // Nothing can be registered without the baseline: every follow-up asked for fails.
    for (const auto& v : job.to_register) {
      FollowupOutcome f;
      f.visit = v;
      f.status = "failed";
      f.error = std::string("baseline: ") + e.what();
      f.exit_code = e.exit_status();
      f.registered_at = utc_timestamp();
      f.key = "";
      for (const auto& fv : job.followups) {
        if (fv.visit == v) f.key = registration_key(job.baseline, fv, job.settings);
      }
      f.outdir = (fs::path(job.outdir) / v).string();
      out.followups.push_back(std::move(f));
    }
    out.status = "failed";
    out.error = std::string("baseline: ") + e.what();
    return out;
  }
  for (const auto& fv : job.followups) {
    throw_if_interrupted();
    const bool asked = std::find(job.to_register.begin(), job.to_register.end(), fv.visit) !=
                       job.to_register.end();
    if (!asked) {
      // Registered earlier with the same key: its transforms are read back for the cross-visit
      // part; if they cannot be, it is registered again.
      try {
        const fs::path d = job.flat ? fs::path(job.outdir) : fs::path(job.outdir) / fv.visit;
        VisitTransforms vt;
        vt.forward.affine = read_affine((d / kAffineFile).string());
        vt.forward.field = read_field((d / kDeformationFile).string());
        vt.inverse = field_transform(read_field((d / kInverseFile).string()));
        transforms[fv.visit] = std::move(vt);
        continue;
      } catch (const Error& e) {
        log::warn("registration: {} {}: earlier outputs unusable ({}); registering again",
                  job.subject_id, fv.visit, e.what());
      }
    }
    VisitTransforms vt;
    std::optional<MaskAgreement> agree;
    FollowupOutcome f = register_one(job, base, fv, &vt, &agree);
    if (f.status == "ok") {
      transforms[fv.visit] = std::move(vt);
      if (agree) base_agreements[fv.visit] = *agree;
    }
    out.followups.push_back(std::move(f));
  }

  // Cross-visit consistency of the lung masks: the baseline's mask in every registered follow-up,
  // and the best-aerated visit's mask in every other visit.
  try {
    std::vector<const VisitScan*> visits{&job.baseline};
    for (const auto& fv : job.followups) {
      if (transforms.count(fv.visit)) visits.push_back(&fv);
    }
    std::vector<double> pct, ml;
    for (const VisitScan* v : visits) {
      pct.push_back(v->lesion_pct);
      const auto it = v->regions.find("lungs");
      ml.push_back(it == v->regions.end() ? 0.0 : it->second.volume_ml);
    }
    const VisitScan& best = *visits[best_aerated(pct, ml)];
    out.best_aerated_visit = best.visit;
    auto space_of = [&](const VisitScan& v, const LabelImage* lungs) {
      VisitSpace s{v.visit, lungs, nullptr, nullptr};
      if (&v != &job.baseline) {
        s.from_baseline = &transforms.at(v.visit).forward;
        s.to_baseline = &transforms.at(v.visit).inverse;
      }
      return s;
    };
    std::optional<LoadedVisit> best_loaded;
    if (&best != &job.baseline) best_loaded = load_visit(best, false);
    const LabelImage* best_lungs = &best == &job.baseline ? &base.lungs : &best_loaded->lungs;
    for (const VisitScan* v : visits) {
      throw_if_interrupted();
      const bool is_base = v == &job.baseline;
      const bool need_base_row = !is_base;
      const bool need_best_row = v != &best && &best != &job.baseline;
      if (!need_base_row && !need_best_row) continue;
      std::optional<LoadedVisit> loaded;
      const LoadedVisit* target = &base;
      if (!is_base && (need_best_row || !base_agreements.count(v->visit))) {
        loaded = load_visit(*v);
        target = &*loaded;
      }
      const VisitSpace ts = space_of(*v, &target->lungs);
      if (need_base_row) {
        MaskAgreement m;
        if (base_agreements.count(v->visit)) {
          m = base_agreements.at(v->visit);
        } else {
          const VisitSpace bs = space_of(job.baseline, &base.lungs);
          m = compare_lung_masks(warped_envelope(bs, ts), target->lungs, target->ct,
                                 job.settings.consistency);
          m.source_visit = job.baseline.visit;
          m.target_visit = v->visit;
        }
        out.consistency.push_back({v->visit, job.baseline.visit, "baseline", m});
      }
      if (need_best_row) {
        const VisitSpace bs = space_of(best, best_lungs);
        MaskAgreement m = compare_lung_masks(warped_envelope(bs, ts), target->lungs, target->ct,
                                             job.settings.consistency);
        m.source_visit = best.visit;
        m.target_visit = v->visit;
        out.consistency.push_back({v->visit, best.visit, "best_aerated", m});
      }
    }
  } catch (const Error& e) {
    if (e.code() == ExitCode::kInterrupted) throw;
    out.status = "failed";
    out.error = e.what();
    log::warn("registration: {}: cross-visit consistency failed: {}", job.subject_id, e.what());
  }
  return out;
}

}  // namespace lungvol::registration
