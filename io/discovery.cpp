// DICOM discovery: find files, read headers, skip what is not a CT volume, group into series,
// order slices geometrically and record every reason a series cannot be assembled safely.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>
#include <tuple>

#include <dcmtk/dcmdata/dcuid.h>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/orientation.hpp"
#include "io/series_internal.hpp"

namespace fs = std::filesystem;

namespace lungvol::io {
namespace detail {
namespace {

using Vec3 = std::array<double, 3>;

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
Vec3 normalized(Vec3 v) {
  const double n = std::sqrt(dot(v, v));
  if (n > 0) {
    for (double& x : v) x /= n;
  }
  return v;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::vector<std::string> collect_files(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool is_ct_sop_class(const std::string& uid) {
  return uid == UID_CTImageStorage || uid == UID_EnhancedCTImageStorage ||
         uid == UID_LegacyConvertedEnhancedCTImageStorage;
}

std::string sop_name(const std::string& uid) {
  const char* name = dcmFindNameOfUID(uid.c_str(), nullptr);
  return name ? std::string(name) : "SOP class " + uid;
}

// "" when the file is a CT volume candidate, otherwise why it is skipped.
std::string skip_reason(const Header& h) {
  const std::string type = upper(h.image_type);
  if (h.sop_class == UID_MediaStorageDirectoryStorage) return "DICOMDIR (media directory index)";
  if (starts_with(h.sop_class, "1.2.840.10008.5.1.4.1.1.7")) {
    return "secondary capture (screenshot), not a CT volume";
  }
  if (!h.sop_class.empty() && !is_ct_sop_class(h.sop_class)) {
    return "not a CT image: " + sop_name(h.sop_class) +
           (h.modality.empty() ? "" : " (modality " + h.modality + ")");
  }
  if (!h.modality.empty() && upper(h.modality) != "CT") return "modality " + h.modality;
  if (!h.has_pixel_data) return "no pixel data";
  if (type.find("LOCALIZER") != std::string::npos || type.find("SCOUT") != std::string::npos) {
    return "localizer / scout image";
  }
  if (type.find("SCREEN SAVE") != std::string::npos) return "screen capture, not a CT volume";
  if (h.samples_per_pixel != 1 || !starts_with(upper(h.photometric), "MONOCHROME")) {
    return "colour image (" + h.photometric + "), not a CT volume";
  }
  if (h.rows <= 0 || h.columns <= 0) return "no image pixel module (Rows/Columns)";
  return {};
}

struct GeoKey {
  int rows, columns;
  bool has_iop;
  std::array<double, 6> iop;
  std::array<double, 2> spacing;
  bool same(const GeoKey& o) const {
    if (rows != o.rows || columns != o.columns || has_iop != o.has_iop) return false;
    for (int i = 0; i < 6; ++i) {
      if (std::abs(iop[i] - o.iop[i]) > kOrientationTol) return false;
    }
    return std::abs(spacing[0] - o.spacing[0]) <= kPixelSpacingTol &&
           std::abs(spacing[1] - o.spacing[1]) <= kPixelSpacingTol;
  }
  bool same_orientation(const GeoKey& o) const {
    if (has_iop != o.has_iop) return false;
    for (int i = 0; i < 6; ++i) {
      if (std::abs(iop[i] - o.iop[i]) > kOrientationTol) return false;
    }
    return true;
  }
  std::string describe() const {
    return fmt::format("{}x{} @ {:g}x{:g} mm", columns, rows, spacing[1], spacing[0]);
  }
};

GeoKey key_of(const Header& h, std::size_t frame) {
  const FrameInfo& f = h.frames.at(frame);
  return GeoKey{h.rows, h.columns, f.has_iop, f.iop, h.pixel_spacing};
}

// Values that must be one per series (patient, study, frame of reference): a broken anonymiser
// or a merge can put two scans under one SeriesInstanceUID. "" when they agree.
std::string mixed_identity(const SeriesRecord& rec, const std::vector<Header>& headers,
                           const char* attribute, const char* plural,
                           std::string Header::*field) {
  std::map<std::string, std::pair<std::size_t, std::string>> seen;  // value -> (files, first)
  std::size_t last = std::size_t(-1);
  for (const auto& sl : rec.slices) {
    if (sl.header == last) continue;
    last = sl.header;
    const Header& h = headers[sl.header];
    auto& entry = seen[h.*field];
    if (entry.first++ == 0) entry.second = h.path;
  }
  if (seen.size() < 2) return {};
  std::string list;
  for (const auto& [value, entry] : seen) {
    list += fmt::format("{}{} '{}' in {} file(s), e.g. '{}'", list.empty() ? "" : "; ",
                        attribute, value, entry.first, entry.second);
  }
  return fmt::format("one SeriesInstanceUID holds {} {} ({}): slices of different scans cannot be "
                     "measured as one volume",
                     seen.size(), plural, list);
}

// Rescale checks: every slice needs its own valid RescaleSlope / RescaleIntercept, and all
// slices the same ones. A slice without them (or with a zero, negative or NaN slope) reads
// every HU wrong, and a lung cut by one wrong slice loses its upper part without a word.
void check_rescale(const SeriesRecord& rec, const std::vector<Header>& headers,
                   std::vector<std::string>& problems, std::vector<std::string>& warnings) {
  using Pair = std::pair<double, double>;
  std::map<Pair, std::vector<std::size_t>> valid;  // (slope, intercept) -> slice indices
  std::vector<std::size_t> missing;
  bool any_unsigned = false;
  auto where = [&](std::size_t k) {
    const SliceRef& sl = rec.slices[k];
    const Header& h = headers[sl.header];
    return h.frames.size() > 1 ? fmt::format("'{}' frame {}", h.path, sl.frame + 1)
                               : "'" + h.path + "'";
  };
  for (std::size_t k = 0; k < rec.slices.size(); ++k) {
    const Header& h = headers[rec.slices[k].header];
    const FrameInfo& f = h.frames.at(rec.slices[k].frame);
    any_unsigned = any_unsigned || h.pixel_representation == 0;
    if (!f.has_slope || !f.has_intercept) {
      missing.push_back(k);
      continue;
    }
    if (!std::isfinite(f.slope) || !(f.slope > 0) || !std::isfinite(f.intercept)) {
      problems.push_back(fmt::format(
          "{}: RescaleSlope {} / RescaleIntercept {}: the slope must be a positive finite number "
          "and the intercept finite, so its Hounsfield units cannot be known",
          where(k), f.slope, f.intercept));
      continue;
    }
    valid[{f.slope, f.intercept}].push_back(k);
  }
  if (valid.empty() && !missing.empty() && missing.size() == rec.slices.size()) {
    if (any_unsigned) {
      problems.push_back(fmt::format(
          "no RescaleSlope / RescaleIntercept in any slice and unsigned pixel data (e.g. {}): "
          "Hounsfield units cannot be known",
          where(0)));
    } else {
      warnings.push_back("no RescaleSlope / RescaleIntercept in any slice: the signed stored "
                         "values are taken as Hounsfield units");
    }
    return;
  }
  if (valid.empty()) return;  // every slice already named above
  // The rescale most slices share is the series'; every other slice is named.
  auto common = valid.begin();
  for (auto it = valid.begin(); it != valid.end(); ++it) {
    if (it->second.size() > common->second.size()) common = it;
  }
  const std::string reference =
      fmt::format("slope {:g}, intercept {:g} in {} of {} slices", common->first.first,
                  common->first.second, common->second.size(), rec.slices.size());
  auto name_some = [&](const std::vector<std::size_t>& ks) {
    std::string out;
    for (std::size_t q = 0; q < ks.size() && q < 3; ++q) out += (q ? ", " : "") + where(ks[q]);
    if (ks.size() > 3) out += fmt::format(" and {} more", ks.size() - 3);
    return out;
  };
  if (!missing.empty()) {
    problems.push_back(fmt::format("{} ha{} no RescaleSlope / RescaleIntercept, unlike the rest of "
                                   "the series ({}): its Hounsfield units would be guessed",
                                   name_some(missing), missing.size() == 1 ? "s" : "ve",
                                   reference));
  }
  for (auto it = valid.begin(); it != valid.end(); ++it) {
    if (it == common) continue;
    problems.push_back(fmt::format("{}: RescaleSlope {:g} / RescaleIntercept {:g} differ from the "
                                   "rest of the series ({})",
                                   name_some(it->second), it->first.first, it->first.second,
                                   reference));
  }
}

// Orders the slices of one record and checks that they form a regular volume.
void assemble(SeriesRecord& rec, const std::vector<Header>& headers) {
  SeriesInfo& info = rec.info;
  const Header& h0 = headers[rec.slices.front().header];
  const FrameInfo& f0 = h0.frames.at(rec.slices.front().frame);
  std::vector<std::string> problems;

  {
    std::size_t last = std::size_t(-1);
    for (const auto& sl : rec.slices) {
      if (sl.header == last) continue;
      last = sl.header;
      const Header& h = headers[sl.header];
      if (!h.parse_error.empty()) problems.push_back("'" + h.path + "': " + h.parse_error);
      if (!h.defect.empty()) problems.push_back("'" + h.path + "': " + h.defect);
    }
  }
  for (const auto& [attribute, plural, field] :
       {std::tuple{"PatientID", "patients", &Header::patient_id},
        std::tuple{"StudyInstanceUID", "studies", &Header::study_uid},
        std::tuple{"FrameOfReferenceUID", "frames of reference", &Header::frame_of_reference_uid}}) {
    std::string p = mixed_identity(rec, headers, attribute, plural, field);
    if (!p.empty()) problems.push_back(std::move(p));
  }
  bool geometry_ok = true;
  if (!f0.has_iop) {
    problems.push_back("no ImageOrientationPatient");
    geometry_ok = false;
  }
  if (!h0.has_pixel_spacing) problems.push_back("no PixelSpacing");
  for (const auto& sl : rec.slices) {
    if (!headers[sl.header].frames.at(sl.frame).has_ipp) {
      problems.push_back("no ImagePositionPatient in '" + headers[sl.header].path + "'");
      geometry_ok = false;
      break;
    }
  }
  if (geometry_ok) {
    rec.row = normalized({f0.iop[0], f0.iop[1], f0.iop[2]});
    rec.col = normalized({f0.iop[3], f0.iop[4], f0.iop[5]});
    if (std::abs(dot(rec.row, rec.col)) > 1e-3) {
      problems.push_back("ImageOrientationPatient rows and columns are not orthogonal");
    }
    rec.normal = normalized(cross(rec.row, rec.col));
    for (auto& sl : rec.slices) sl.s = dot(headers[sl.header].frames[sl.frame].ipp, rec.normal);
    std::stable_sort(rec.slices.begin(), rec.slices.end(),
                     [](const SliceRef& a, const SliceRef& b) { return a.s < b.s; });
    // The same instance stored twice is harmless if it is really the same: its pixels are
    // compared when the series is read (load_ct). Two instances at one position are not.
    std::vector<SliceRef> unique;
    std::size_t more_duplicates = 0;
    for (const auto& sl : rec.slices) {
      if (!unique.empty() && std::abs(sl.s - unique.back().s) < kDuplicateTol) {
        const Header& a = headers[unique.back().header];
        const Header& b = headers[sl.header];
        if (!a.sop_instance.empty() && a.sop_instance == b.sop_instance && sl.frame == unique.back().frame) {
          rec.duplicates.push_back({sl, unique.size() - 1});
          info.warnings.push_back("'" + b.path + "' repeats SOPInstanceUID " + b.sop_instance +
                                  " of '" + a.path +
                                  "' at the same position (read only to check that its pixel "
                                  "data are identical)");
          continue;
        }
        if (more_duplicates++ == 0) {
          problems.push_back(fmt::format("duplicate slice position {:.3f} mm ('{}' and '{}')",
                                         sl.s, a.path, b.path));
        }
      }
      unique.push_back(sl);
    }
    if (more_duplicates > 1) {
      problems.push_back(fmt::format("{} more duplicate slice positions", more_duplicates - 1));
    }
    rec.slices = std::move(unique);
    // One instance (and frame) at two positions: one of them is not what it claims to be.
    {
      std::map<std::pair<std::string, std::size_t>, const SliceRef*> by_uid;
      for (const auto& sl : rec.slices) {
        const Header& h = headers[sl.header];
        if (h.sop_instance.empty()) continue;
        auto [it, fresh] = by_uid.insert({{h.sop_instance, sl.frame}, &sl});
        if (!fresh) {
          problems.push_back(fmt::format(
              "SOPInstanceUID {} appears at two positions, {:.3f} mm ('{}') and {:.3f} mm ('{}')",
              h.sop_instance, it->second->s, headers[it->second->header].path, sl.s, h.path));
        }
      }
    }
    const auto& first = headers[rec.slices.front().header].frames[rec.slices.front().frame];
    rec.origin = first.ipp;

    // Shear (gantry tilt): positions must move along the normal only.
    double worst_drift = 0, worst_dist = 0;
    for (const auto& sl : rec.slices) {
      const Vec3& p = headers[sl.header].frames[sl.frame].ipp;
      const Vec3 d{p[0] - first.ipp[0], p[1] - first.ipp[1], p[2] - first.ipp[2]};
      const double along = dot(d, rec.normal);
      const Vec3 perp{d[0] - along * rec.normal[0], d[1] - along * rec.normal[1],
                      d[2] - along * rec.normal[2]};
      const double drift = std::sqrt(dot(perp, perp));
      if (drift > tilt_allowance_mm(along) && drift > worst_drift) {
        worst_drift = drift;
        worst_dist = along;
      }
    }
    if (worst_drift > 0) {
      problems.push_back(fmt::format(
          "sheared slice stack (gantry tilt {:.2f} deg?): slice positions drift {:.2f} mm in-plane "
          "over {:.2f} mm along the normal",
          std::atan2(worst_drift, std::abs(worst_dist)) * 180.0 / M_PI, worst_drift, worst_dist));
    }

    // Orientation: the pipeline permutes axis-aligned grids into its canonical axial order
    // (core/orientation.hpp); an oblique one would need interpolation, and `analyze` refuses
    // it. The reader itself (convert, inspect) reads it on its own grid.
    Geometry g;
    for (int r = 0; r < 3; ++r) {
      g.direction[static_cast<std::size_t>(3 * r + 0)] = rec.row[static_cast<std::size_t>(r)];
      g.direction[static_cast<std::size_t>(3 * r + 1)] = rec.col[static_cast<std::size_t>(r)];
      g.direction[static_cast<std::size_t>(3 * r + 2)] = rec.normal[static_cast<std::size_t>(r)];
    }
    const Orientation o = orientation_of(g);
    info.orientation = o.describe();
    if (!o.axis_aligned) {
      info.warnings.push_back(fmt::format(
          "{}: `lungvol analyze` refuses it (it analyzes series whose rows, columns and slice "
          "normal lie along the patient axes, within {:.3f} degrees, and does not resample)",
          info.orientation, std::asin(kTiltTolerance) * 180.0 / M_PI));
    }
    info.axial = o.axis_aligned && o.name == "axial";

    // Spacing from positions only.
    const std::size_t n = rec.slices.size();
    if (n >= 2) {
      std::vector<double> steps(n - 1);
      for (std::size_t k = 0; k + 1 < n; ++k) steps[k] = rec.slices[k + 1].s - rec.slices[k].s;
      std::vector<double> sorted = steps;
      std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
      const double median = sorted[sorted.size() / 2];
      const double tol = std::max(kSpacingAbsTol, kSpacingRelTol * median);
      const auto [lo, hi] = std::minmax_element(steps.begin(), steps.end());
      if (*hi - median > tol || median - *lo > tol) {
        const std::size_t at = static_cast<std::size_t>(hi - steps.begin());
        rec.nonuniform_problem = fmt::format(
            "non-uniform slice spacing: steps {:.3f} to {:.3f} mm (median {:.3f}); largest gap "
            "{:.3f} mm between positions {:.2f} and {:.2f} (missing slice? --resample-nonuniform "
            "resamples to uniform spacing)",
            *lo, *hi, median, *hi, rec.slices[at].s, rec.slices[at + 1].s);
        rec.step = median;
      } else {
        rec.step = (rec.slices.back().s - rec.slices.front().s) / static_cast<double>(n - 1);
      }
      if (rec.step <= 0) rec.step = 1.0;  // only duplicates: already a problem
    } else {
      rec.step = h0.slice_thickness > 0 ? h0.slice_thickness : 1.0;
      info.warnings.push_back(fmt::format(
          "single slice: slice spacing {:g} mm taken from {}", rec.step,
          h0.slice_thickness > 0 ? "SliceThickness" : "nothing (no SliceThickness; 1 mm assumed)"));
    }
  }
  check_rescale(rec, headers, problems, info.warnings);
  rec.nonuniform_only = problems.empty() && !rec.nonuniform_problem.empty();
  if (!rec.nonuniform_problem.empty()) problems.push_back(rec.nonuniform_problem);

  info.series_instance_uid = h0.series_uid;
  info.study_instance_uid = h0.study_uid;
  info.study_date = h0.study_date;
  info.patient_id = h0.patient_id;
  info.description = h0.description;
  info.modality = h0.modality.empty() ? "CT?" : h0.modality;
  info.kernel = h0.kernel;
  info.image_type = h0.image_type;
  info.manufacturer = h0.manufacturer;
  info.rows = h0.rows;
  info.columns = h0.columns;
  info.n_slices = rec.slices.size();
  info.spacing_mm = {h0.pixel_spacing[1], h0.pixel_spacing[0], rec.step};
  info.slice_thickness_mm = h0.slice_thickness;
  info.dicom = true;
  info.original = starts_with(upper(h0.image_type), "ORIGINAL");
  std::vector<std::string> syntaxes;
  info.files.clear();
  for (const auto& sl : rec.slices) {
    const Header& h = headers[sl.header];
    if (info.files.empty() || info.files.back() != h.path) info.files.push_back(h.path);
    if (std::find(syntaxes.begin(), syntaxes.end(), h.transfer_syntax) == syntaxes.end()) {
      syntaxes.push_back(h.transfer_syntax);
    }
  }
  std::sort(syntaxes.begin(), syntaxes.end());
  for (const auto& s : syntaxes) info.transfer_syntax += (info.transfer_syntax.empty() ? "" : " + ") + s;
  info.n_files = info.files.size();
  if (h0.modality.empty()) {
    info.warnings.push_back("no Modality: read as CT because the image pixel module is CT-like");
  }
  for (auto& p : problems) info.problems.push_back(std::move(p));
}

}  // namespace

bool is_lung_kernel(const std::string& kernel_in) {
  const std::string k = upper(kernel_in);
  if (k.empty()) return false;
  if (k.find("LUNG") != std::string::npos) return true;
  // Philips lung kernels: L, YA, YB (also as "L/..." or "YB;...").
  for (const char* p : {"L", "YA", "YB", "LA"}) {
    const std::string ps(p);
    if (k == ps || starts_with(k, ps + "/") || starts_with(k, ps + ";") || starts_with(k, ps + " ")) {
      return true;
    }
  }
  // Siemens: Bl57/Bl64 (lung), and sharp B/Br/I/Hr kernels with number >= 60 (B60f, B70f, I70f).
  if (starts_with(k, "BL") && k.size() > 2 && std::isdigit(static_cast<unsigned char>(k[2]))) return true;
  std::size_t i = 0;
  if (starts_with(k, "BR") || starts_with(k, "HR")) {
    i = 2;
  } else if (starts_with(k, "B") || starts_with(k, "I")) {
    i = 1;
  } else if (starts_with(k, "FC")) {  // Toshiba/Canon FC5x are lung kernels
    return k.size() >= 4 && k[2] == '5' && std::isdigit(static_cast<unsigned char>(k[3]));
  } else {
    return false;
  }
  if (k.size() >= i + 2 && std::isdigit(static_cast<unsigned char>(k[i])) &&
      std::isdigit(static_cast<unsigned char>(k[i + 1]))) {
    return std::stoi(k.substr(i, 2)) >= 60;
  }
  return false;
}

FullDiscovery discover_full(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ExitCode::kInput, "input not found: '" + path + "'");
  FullDiscovery d;
  const std::vector<std::string> files = collect_files(path);
  d.headers.resize(files.size());
  std::vector<std::string> reasons(files.size());
  std::vector<char> is_dicom(files.size(), 0);
  const auto n = static_cast<std::ptrdiff_t>(files.size());
#pragma omp parallel for schedule(dynamic, 4)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    try {
      is_dicom[i] = read_header(files[i], d.headers[i], reasons[i]) ? 1 : 0;
    } catch (const std::exception& e) {
      reasons[i] = std::string("unreadable: ") + e.what();
    }
  }

  // Candidates grouped by SeriesInstanceUID, then split by geometry.
  std::map<std::string, std::vector<std::pair<std::size_t, std::size_t>>> by_uid;  // (header, frame)
  std::vector<std::size_t> multi_frame;
  for (std::size_t i = 0; i < files.size(); ++i) {
    Header& h = d.headers[i];
    if (!is_dicom[i]) {
      d.skipped.push_back({files[i], reasons[i]});
      continue;
    }
    std::string why = skip_reason(h);
    if (why.empty() && !h.parse_error.empty() && h.series_uid.empty()) why = h.parse_error;
    if (!why.empty()) {
      if (!h.parse_error.empty() && why.find(h.parse_error) == std::string::npos) {
        why += "; " + h.parse_error;
      }
      d.skipped.push_back({files[i], why});
      h.file.reset();
      continue;
    }
    if (h.n_frames > 1) {
      multi_frame.push_back(i);
    } else {
      by_uid[h.series_uid].push_back({i, 0});
    }
  }

  for (auto& [uid, members] : by_uid) {
    std::vector<std::pair<GeoKey, SeriesRecord>> parts;
    for (const auto& [hi, fi] : members) {
      const GeoKey key = key_of(d.headers[hi], fi);
      auto it = std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.first.same(key); });
      if (it == parts.end()) {
        parts.push_back({key, SeriesRecord{}});
        it = parts.end() - 1;
      }
      it->second.slices.push_back({hi, fi, 0});
    }
    std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) {
      return a.second.slices.size() > b.second.slices.size();
    });
    std::string all;
    for (const auto& q : parts) {
      all += (all.empty() ? "" : ", ") + q.first.describe() + " (" +
             std::to_string(q.second.slices.size()) + " files)";
    }
    for (std::size_t p = 0; p < parts.size(); ++p) {
      SeriesRecord& rec = parts[p].second;
      assemble(rec, d.headers);
      if (parts.size() > 1) {
        rec.info.warnings.push_back("SeriesInstanceUID holds " + std::to_string(parts.size()) +
                                    " geometries (" + all + "); this is part " +
                                    std::to_string(p + 1));
        if (p > 0) rec.info.series_instance_uid += "#" + std::to_string(p + 1);
        for (std::size_t q = 0; q < parts.size(); ++q) {
          if (q != p && parts[q].first.same_orientation(parts[p].first)) {
            rec.info.problems.insert(rec.info.problems.begin(),
                                     "mixed slice geometry in one orientation: " +
                                         parts[p].first.describe() + " and " +
                                         parts[q].first.describe());
            rec.nonuniform_only = false;
            break;
          }
        }
      }
      d.series.push_back(std::move(rec));
    }
  }
  for (std::size_t i : multi_frame) {
    SeriesRecord rec;
    for (std::size_t f = 0; f < d.headers[i].frames.size(); ++f) rec.slices.push_back({i, f, 0});
    assemble(rec, d.headers);
    d.series.push_back(std::move(rec));
  }
  return d;
}

}  // namespace detail

Discovery discover_dicom(const std::string& path) {
  detail::FullDiscovery full = detail::discover_full(path);
  Discovery out;
  out.skipped = std::move(full.skipped);
  for (auto& rec : full.series) out.series.push_back(std::move(rec.info));
  return out;
}

namespace {

std::string describe(const SeriesInfo& s) {
  return fmt::format("{} ('{}', {} slices, {:g} mm, kernel '{}')", s.series_instance_uid,
                     s.description, s.n_slices, s.spacing_mm[2], s.kernel);
}

std::string skipped_summary(const Discovery& d) {
  std::map<std::string, int> counts;
  for (const auto& s : d.skipped) counts[s.reason]++;
  std::string out;
  for (const auto& [reason, count] : counts) {
    out += (out.empty() ? "" : "; ") + std::to_string(count) + " x " + reason;
  }
  return out.empty() ? "no files" : out;
}

}  // namespace

const SeriesInfo& choose_series(const Discovery& d, const std::string& uid, std::string* reason) {
  std::string why;
  if (d.series.empty()) {
    throw Error(ExitCode::kDicom, "no CT volume series found (skipped: " + skipped_summary(d) + ")");
  }
  if (!uid.empty()) {
    for (const auto& s : d.series) {
      if (s.series_instance_uid == uid) {
        if (reason) *reason = "selected explicitly by series UID " + uid;
        return s;
      }
    }
    std::string list;
    for (const auto& s : d.series) list += "\n  " + describe(s);
    throw Error(ExitCode::kDicom, "series UID '" + uid + "' not found; available:" + list);
  }
  std::vector<const SeriesInfo*> c;
  std::string refused;
  for (const auto& s : d.series) {
    if (s.usable()) {
      c.push_back(&s);
    } else {
      refused += "\n  " + describe(s) + ": " + s.problems.front();
    }
  }
  if (c.empty()) {
    throw Error(ExitCode::kDicom, "no CT series can be assembled safely:" + refused);
  }
  // The rule, as a cascade of filters (each keeps the preferred ones when any exist).
  auto keep = [&](auto pred, const std::string& label) {
    std::vector<const SeriesInfo*> k;
    std::copy_if(c.begin(), c.end(), std::back_inserter(k), pred);
    if (!k.empty() && k.size() < c.size()) {
      why += (why.empty() ? "" : ", ") + label;
      c = std::move(k);
    }
  };
  const std::size_t total = c.size();
  keep([](const SeriesInfo* s) { return s->axial; }, "axial");
  keep([](const SeriesInfo* s) { return s->original; }, "ORIGINAL");
  std::size_t most = 0;
  for (auto* s : c) most = std::max(most, s->n_slices);
  keep([&](const SeriesInfo* s) { return s->n_slices * 10 >= most * 9; }, "most slices (within 10%)");
  double thinnest = 1e9;
  for (auto* s : c) thinnest = std::min(thinnest, s->spacing_mm[2]);
  keep([&](const SeriesInfo* s) { return s->spacing_mm[2] <= thinnest * 1.05 + 1e-6; },
       "thinnest slice spacing");
  keep([](const SeriesInfo* s) { return detail::is_lung_kernel(s->kernel); }, "lung kernel");
  std::stable_sort(c.begin(), c.end(), [](const SeriesInfo* a, const SeriesInfo* b) {
    if (a->n_slices != b->n_slices) return a->n_slices > b->n_slices;
    return a->series_instance_uid < b->series_instance_uid;
  });
  if (total == 1) {
    why = "the only usable CT series";
  } else {
    why = "chosen among " + std::to_string(total) + " usable CT series by: " +
          (why.empty() ? "most slices, then series UID" : why);
  }
  if (!refused.empty()) why += "; refused:" + refused;
  if (reason) *reason = why;
  return *c.front();
}

}  // namespace lungvol::io
