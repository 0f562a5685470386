// Assembles the chosen series into one HU volume: allocated once, each file decoded straight
// into its slice, in parallel.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/orientation.hpp"
#include "io/image_io.hpp"
#include "io/series_internal.hpp"

namespace fs = std::filesystem;

namespace lungvol::io {
namespace {

LoadedCt load_image_file(const std::string& path) {
  LoadedCt out;
  out.image = read_ct_image(path);
  out.source_path = path;
  out.sha256 = sha256_file(path);
  out.series.modality = "CT?";
  out.series.n_files = 1;
  out.series.n_slices = out.image.geom.size[2];
  out.series.columns = static_cast<int>(out.image.geom.size[0]);
  out.series.rows = static_cast<int>(out.image.geom.size[1]);
  out.series.spacing_mm = out.image.geom.spacing;
  out.series.files = {path};
  const Orientation o = orientation_of(out.image.geom);
  out.series.axial = o.axis_aligned && o.name == "axial";
  out.series.orientation = o.describe();
  out.series.dicom = false;
  out.selection_reason = "image file";
  out.warnings.push_back("image file: voxel values taken as HU");
  return out;
}

// Linear interpolation along the normal from the decoded (uneven) slices onto a uniform grid.
CtImage resample_uniform(const CtImage& src, const std::vector<double>& s, double step,
                         std::vector<std::string>& warnings) {
  Geometry g = src.geom;
  const std::size_t nz = static_cast<std::size_t>(std::floor((s.back() - s.front()) / step + 0.5)) + 1;
  g.size[2] = nz;
  g.spacing[2] = step;
  CtImage out(g);
  const std::size_t slice = g.slice_voxels();
  const auto nzs = static_cast<std::ptrdiff_t>(nz);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t ks = 0; ks < nzs; ++ks) {
    const double z = s.front() + static_cast<double>(ks) * step;
    std::size_t j = static_cast<std::size_t>(std::upper_bound(s.begin(), s.end(), z) - s.begin());
    j = std::clamp<std::size_t>(j, 1, s.size() - 1);
    const double w = std::clamp((z - s[j - 1]) / (s[j] - s[j - 1]), 0.0, 1.0);
    const std::int16_t* a = src.data.data() + (j - 1) * slice;
    const std::int16_t* b = src.data.data() + j * slice;
    std::int16_t* o = out.data.data() + static_cast<std::size_t>(ks) * slice;
    for (std::size_t v = 0; v < slice; ++v) {
      o[v] = static_cast<std::int16_t>(std::lround((1.0 - w) * a[v] + w * b[v]));
    }
  }
  warnings.push_back(fmt::format(
      "non-uniform slices resampled (linear in z) to uniform {:.3f} mm: {} slices -> {}", step,
      s.size(), nz));
  return out;
}

}  // namespace

LoadedCt load_ct(const std::string& path, const ReadOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ExitCode::kInput, "input not found: '" + path + "'");
  if (fs::is_regular_file(path, ec) && is_image_file(path)) return load_image_file(path);

  detail::FullDiscovery full = detail::discover_full(path);
  Discovery pub;
  pub.skipped = full.skipped;
  for (auto& rec : full.series) {
    pub.series.push_back(rec.info);
    // Opting in to resampling turns an uneven-spacing refusal into a warning.
    if (options.resample_nonuniform && rec.nonuniform_only) {
      auto& probs = pub.series.back().problems;
      probs.erase(std::remove(probs.begin(), probs.end(), rec.nonuniform_problem), probs.end());
    }
  }
  std::string reason;
  const SeriesInfo& chosen = [&]() -> const SeriesInfo& {
    try {
      return choose_series(pub, options.series_uid, &reason);
    } catch (const Error& e) {
      throw Error(e.code(), "'" + path + "': " + e.what());
    }
  }();
  detail::SeriesRecord& rec = full.series[static_cast<std::size_t>(&chosen - pub.series.data())];
  const bool resample = options.resample_nonuniform && rec.nonuniform_only;
  if (!chosen.usable()) {
    std::string msg = "series " + chosen.series_instance_uid + " ('" + chosen.description +
                      "') in '" + path + "' cannot be assembled safely: ";
    // Every problem up to a handful; a file claiming 3000 frames at one position would
    // otherwise make a message of 3000 lines.
    constexpr std::size_t kShown = 6;
    for (std::size_t i = 0; i < chosen.problems.size() && i < kShown; ++i) {
      msg += (i ? "; " : "") + chosen.problems[i];
    }
    if (chosen.problems.size() > kShown) {
      msg += fmt::format("; and {} more problem(s) (see lungvol inspect)", chosen.problems.size() - kShown);
    }
    if (rec.nonuniform_only) msg += " (--resample-nonuniform resamples it to uniform spacing)";
    throw Error(ExitCode::kDicom, msg);
  }
  // A file that could not be read may be one of this series' slices (a lost end slice leaves
  // the spacing uniform and would go unnoticed): refuse rather than measure a shorter lung.
  std::vector<std::string> unreadable;
  bool cannot_open = false;
  for (const auto& sk : pub.skipped) {
    if (!detail::is_unreadable_reason(sk.reason)) continue;
    unreadable.push_back(sk.path + " (" + sk.reason + ")");
    cannot_open = cannot_open || sk.reason.rfind(detail::kUnreadablePrefix, 0) == 0;
  }
  if (!unreadable.empty()) {
    std::string msg = "'" + path + "': " + std::to_string(unreadable.size()) +
                      " file(s) could not be read and may belong to series " +
                      chosen.series_instance_uid + ": " + unreadable.front();
    if (unreadable.size() > 1) msg += " and " + std::to_string(unreadable.size() - 1) + " more";
    msg += "; remove or repair them";
    throw Error(cannot_open ? ExitCode::kInput : ExitCode::kDicom, msg);
  }
  log::info("series {} ('{}', {} slices): {}", chosen.series_instance_uid, chosen.description,
            chosen.n_slices, reason);

  LoadedCt out;
  out.series = chosen;
  out.source_path = path;
  out.selection_reason = reason;
  out.warnings = chosen.warnings;
  if (resample) out.warnings.push_back(rec.nonuniform_problem);

  Geometry g;
  g.size = {static_cast<std::size_t>(chosen.columns), static_cast<std::size_t>(chosen.rows),
            rec.slices.size()};
  g.spacing = {chosen.spacing_mm[0], chosen.spacing_mm[1], rec.step};
  g.origin = rec.origin;
  for (int r = 0; r < 3; ++r) {
    g.direction[3 * r + 0] = rec.row[r];
    g.direction[3 * r + 1] = rec.col[r];
    g.direction[3 * r + 2] = rec.normal[r];
  }
  // Claimed sizes were checked against each file's pixel data during discovery; what is left
  // is a series that is really this large.
  CtImage image = [&] {
    try {
      return CtImage(g, CtImage::Uninitialised{});
    } catch (const std::bad_alloc&) {
      throw Error(ExitCode::kProcessing,
                  fmt::format("series {} in '{}': {} x {} x {} voxels ({:.1f} GiB) do not fit in "
                              "memory",
                              chosen.series_instance_uid, path, g.size[0], g.size[1], g.size[2],
                              double(g.voxel_count()) * 2.0 / double(1u << 30)));
    }
  }();
  const std::size_t slice = g.slice_voxels();

  // One decode job per file; a multi-frame file fills all its slices at once. Repeated
  // instances (same SOPInstanceUID at the same position) are decoded into buffers of their own
  // and compared with the slice they repeat.
  std::vector<std::size_t> job_header;
  std::vector<std::vector<std::int16_t*>> job_dst;
  std::map<std::size_t, std::size_t> job_of;
  auto job_for = [&](std::size_t header) {
    auto [it, fresh] = job_of.insert({header, job_header.size()});
    if (fresh) {
      job_header.push_back(header);
      job_dst.emplace_back(full.headers[header].frames.size(), nullptr);
    }
    return it->second;
  };
  for (std::size_t k = 0; k < rec.slices.size(); ++k) {
    const auto& sl = rec.slices[k];
    job_dst[job_for(sl.header)].at(sl.frame) = image.data.data() + k * slice;
  }
  std::vector<std::vector<std::int16_t>> copies(rec.duplicates.size(),
                                                std::vector<std::int16_t>(slice));
  for (std::size_t d = 0; d < rec.duplicates.size(); ++d) {
    const auto& copy = rec.duplicates[d].copy;
    job_dst[job_for(copy.header)].at(copy.frame) = copies[d].data();
  }
  std::vector<std::vector<std::int16_t>> scratch(job_dst.size());  // frames used nowhere
  for (std::size_t j = 0; j < job_dst.size(); ++j) {
    for (auto*& p : job_dst[j]) {
      if (!p) {
        scratch[j].resize(slice);
        p = scratch[j].data();
      }
    }
  }
  std::vector<detail::DecodeStats> stats(job_header.size());
  std::vector<std::string> errors(job_header.size());
  const auto njobs = static_cast<std::ptrdiff_t>(job_header.size());
#pragma omp parallel for schedule(dynamic)
  for (std::ptrdiff_t j = 0; j < njobs; ++j) {
    try {
      detail::decode_frames(full.headers[job_header[j]], job_dst[j], stats[j]);
    } catch (const std::exception& e) {
      errors[j] = e.what();
    }
  }
  for (const auto& e : errors) {
    if (!e.empty()) throw Error(ExitCode::kDicom, e);
  }
  for (std::size_t d = 0; d < rec.duplicates.size(); ++d) {
    const auto& dup = rec.duplicates[d];
    const std::int16_t* kept = image.data.data() + dup.kept * slice;
    const std::size_t differ = static_cast<std::size_t>(std::inner_product(
        kept, kept + slice, copies[d].data(), std::size_t{0}, std::plus<>(),
        [](std::int16_t a, std::int16_t b) { return std::size_t(a != b); }));
    const std::string& kept_path = full.headers[rec.slices[dup.kept].header].path;
    const std::string& copy_path = full.headers[dup.copy.header].path;
    if (differ > 0) {
      throw Error(ExitCode::kDicom,
                  fmt::format("'{}' and '{}' hold the same SOPInstanceUID {} at position {:.3f} mm "
                              "but different pixel data ({} of {} voxels differ): which one is "
                              "genuine cannot be told; remove the wrong file",
                              kept_path, copy_path, full.headers[dup.copy.header].sop_instance,
                              dup.copy.s, differ, slice));
    }
    const std::string prefix = "'" + copy_path + "' repeats SOPInstanceUID";
    out.warnings.erase(std::remove_if(out.warnings.begin(), out.warnings.end(),
                                      [&](const std::string& w) { return w.rfind(prefix, 0) == 0; }),
                       out.warnings.end());
    out.warnings.push_back("'" + copy_path + "' is an identical copy of '" + kept_path +
                           "' (same SOPInstanceUID, position and pixel data); not used");
  }
  std::size_t clamped = 0, padded = 0;
  std::set<std::string> notes;
  for (const auto& s : stats) {
    clamped += s.clamped;
    padded += s.padded;
    if (!s.warning.empty()) notes.insert(s.warning);
  }
  for (const auto& n : notes) out.warnings.push_back(n);
  if (clamped > 0) {
    out.warnings.push_back(fmt::format("{} voxels outside [{}, {}] HU clamped", clamped,
                                       detail::kMinHu, detail::kMaxHu));
  }
  if (padded > 0) {
    out.warnings.push_back(fmt::format("{} padding voxels (PixelPaddingValue) set to {} HU", padded,
                                       detail::kPaddingHu));
  }
  if (resample) {
    std::vector<double> s(rec.slices.size());
    for (std::size_t k = 0; k < s.size(); ++k) s[k] = rec.slices[k].s;
    image = resample_uniform(image, s, rec.step, out.warnings);
    out.series.n_slices = image.geom.size[2];
  }
  out.image = std::move(image);
  out.sha256 = sha256_files(chosen.files);
  for (const auto& w : out.warnings) log::warn("{}", w);
  return out;
}

}  // namespace lungvol::io
