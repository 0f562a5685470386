#include "tests/support/stress_suite.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/hash.hpp"
#include "core/labels.hpp"
#include "core/timer.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "phantom/phantom.hpp"
#include "pipeline/analyze.hpp"
#include "report/png.hpp"
#include "report/qc_images.hpp"
#include "segmentation/morphology.hpp"

namespace fs = std::filesystem;

namespace lungvol::test::stress {
namespace {

constexpr const char* kPopi = "popi-4dct-phase00-itkelastix/dicom";
constexpr const char* kCip = "cip-chest-imaging-platform/ct-64.nrrd";
constexpr double kMeasureMarginMm = 3.0;

// <shared>/data/<rel>, as tests/support/test_paths.hpp finds it (without GoogleTest, so that the
// command-line tool links this library alone).
std::string shared_data(const std::string& rel) {
  const char* env = std::getenv("LUNGVOL_SHARED_DIR");
  return std::string(env ? env : LUNGVOL_SHARED_DIR) + "/data/" + rel;
}

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

// POPI resampled to 1 mm slices: slice k' lies at old index k' * 1 / 2 mm, linear
// interpolation between the two neighbouring slices (thin-slice geometry, real anatomy).
CtImage resample_slices(const CtImage& in, double new_spacing) {
  Geometry g = in.geom;
  const double old = g.spacing[2];
  const std::size_t nz = std::size_t(std::floor((double(g.size[2]) - 1) * old / new_spacing)) + 1;
  g.size[2] = nz;
  g.spacing[2] = new_spacing;
  CtImage out(g, CtImage::Uninitialised{});
  const std::size_t sxy = g.slice_voxels();
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t k = 0; k < std::ptrdiff_t(nz); ++k) {
    const double z = double(k) * new_spacing / old;
    const std::size_t k0 = std::min(in.geom.size[2] - 1, std::size_t(std::floor(z)));
    const std::size_t k1 = std::min(in.geom.size[2] - 1, k0 + 1);
    const double t = z - double(k0);
    const std::int16_t* a = in.data.data() + k0 * sxy;
    const std::int16_t* b = in.data.data() + k1 * sxy;
    std::int16_t* o = out.data.data() + std::size_t(k) * sxy;
    for (std::size_t q = 0; q < sxy; ++q) {
      o[q] = std::int16_t(std::lround((1 - t) * a[q] + t * b[q]));
    }
  }
  return out;
}

std::string exe_identity() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "unknown";
  buf[n] = 0;
  struct stat st {};
  if (::stat(buf, &st) != 0) return buf;
  return std::string(buf) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

std::string default_cache_dir() {
  if (const char* env = std::getenv("LUNGVOL_FAMILIES_CACHE")) return env;
  return output_dir() + "/cache";
}

void write_bytes_atomic(const std::string& path, const void* data, std::size_t n) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(static_cast<const char*>(data), std::streamsize(n));
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, path);
}
bool read_bytes(const std::string& path, void* data, std::size_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  f.read(static_cast<char*>(data), std::streamsize(n));
  return bool(f) && std::size_t(f.gcount()) == n;
}

// Removes the cached clean runs of `name` made by an executable that has since been rebuilt
// or removed (its recorded identity no longer matches the file): they can never be used again.
void prune_cache(const std::string& dir, const std::string& name) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".json" || file.rfind(name + "_", 0) != 0) continue;
    const std::string stem = entry.path().string().substr(0, entry.path().string().size() - 5);
    // "popi_<key>" must not match "popi_1mm_<key>": the key is 20 hex digits.
    if (file.size() != name.size() + 1 + 20 + 5) continue;
    std::string exe;
    try {
      std::ifstream f(entry.path());
      exe = nlohmann::json::parse(f).at("executable").get<std::string>();
    } catch (const std::exception&) {
      continue;
    }
    const std::string path = exe.substr(0, exe.find(':'));
    struct stat st {};
    const bool gone = ::stat(path.c_str(), &st) != 0;
    const std::string now = gone ? "" :
        path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
        std::to_string(st.st_mtim.tv_nsec);
    if (gone || now != exe) {
      for (const char* ext : {".json", ".lungs", ".lesions", ".lock"}) fs::remove(stem + ext, ec);
    }
  }
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::string output_dir() {
  std::string d;
  if (const char* env = std::getenv("LUNGVOL_FAMILIES_OUT")) {
    d = env;
  } else {
    d = LUNGVOL_STRESS_DIR;
  }
  fs::create_directories(d);
  return d;
}

std::vector<std::string> case_names() { return {"popi", "cip", "popi_1mm"}; }

std::uint64_t case_seed(const std::string& name) {
  const auto names = case_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return i + 1;
  }
  return 1;
}

std::string case_data(const std::string& name) {
  if (name == "cip") return kCip;
  return kPopi;
}

// The pipeline analyses every scan on its canonical axial grid (pipeline::canonicalize_input);
// the suite inserts and measures on that same grid, so that its truth and the label maps the
// pipeline returns index the same voxels.
CtImage canonical(CtImage ct) {
  pipeline::Analysis a;
  a.input.image = std::move(ct);
  pipeline::canonicalize_input(a);
  return std::move(a.input.image);
}

// Throws when the pipeline's label map is not on the suite's grid (it would misplace the truth).
void expect_same_grid(const LabelImage& labels, const Geometry& g, const std::string& what) {
  if (!labels.geom.same_grid(g)) {
    throw std::runtime_error("stress suite: the lung map of " + what +
                             " is not on the grid of the CT the lesions were inserted into");
  }
}

CtImage load_scan(const std::string& name) {
  if (name == "cip") return canonical(io::read_ct_image(shared_data(kCip)));
  if (name == "popi" || name == "popi_1mm") {
    // Read once per process: both cases start from it.
    static const CtImage popi = canonical(io::load_ct(shared_data(kPopi)).image);
    CtImage ct = popi;
    if (name == "popi_1mm") ct = resample_slices(ct, 1.0);
    return ct;
  }
  throw std::runtime_error("unknown stress-suite case " + name);
}

ScanCase load_case(const std::string& name, const Protocol& protocol, bool use_cache) {
  ScanCase c;
  c.name = name;
  c.ct = load_scan(name);
  const Geometry& g = c.ct.geom;
  char desc[256];
  std::snprintf(desc, sizeof desc, "%s: %zu x %zu x %zu at %.2f x %.2f x %.2f mm", name.c_str(),
                g.size[0], g.size[1], g.size[2], g.spacing[0], g.spacing[1], g.spacing[2]);
  c.description = desc;

  Sha256 h;
  h.update(exe_identity());
  h.update(protocol.sha256);
  h.update(name);
  h.update(c.ct.data.data(), c.ct.data.size() * sizeof(std::int16_t));
  const std::string key = h.hex_digest().substr(0, 20);
  const std::string dir = default_cache_dir();
  const std::string base = dir + "/" + name + "_" + key;
  bool loaded = false;
  // One process segments, the others wait for its result (ctest -j runs the family tests side
  // by side).
  int lock_fd = -1;
  if (use_cache) {
    fs::create_directories(dir);
    lock_fd = ::open((base + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
    if (lock_fd >= 0) ::flock(lock_fd, LOCK_EX);
  }
  if (use_cache) {
    std::ifstream meta(base + ".json");
    if (meta) {
      try {
        const nlohmann::json j = nlohmann::json::parse(meta);
        c.lungs = LabelImage(g, 0);
        c.lesions = LabelImage(g, 0);
        if (read_bytes(base + ".lungs", c.lungs.data.data(), c.lungs.size()) &&
            read_bytes(base + ".lesions", c.lesions.data.data(), c.lesions.size())) {
          c.lung_ml = j.at("lung_ml").get<double>();
          c.ggo_ml = j.at("ggo_ml").get<double>();
          c.solid_ml = j.at("solid_ml").get<double>();
          c.clean_seconds = j.at("seconds").get<double>();
          c.from_cache = true;
          loaded = true;
        }
      } catch (const std::exception&) {
        loaded = false;
      }
    }
  }
  if (!loaded) {
    pipeline::Analysis a;
    a.protocol = protocol;
    a.input.image = c.ct;
    Stopwatch sw;
    pipeline::segment_and_measure(a);
    c.clean_seconds = sw.seconds();
    expect_same_grid(a.lungs.lungs, g, name + " (clean)");
    c.lungs = std::move(a.lungs.lungs);
    c.lesions = std::move(a.lesions.lesions);
    const auto& v = a.region("lungs").volumes;
    c.lung_ml = v.volume_ml;
    c.ggo_ml = v.ggo_ml;
    c.solid_ml = v.solid_ml;
    if (use_cache) {
      fs::create_directories(dir);
      write_bytes_atomic(base + ".lungs", c.lungs.data.data(), c.lungs.size());
      write_bytes_atomic(base + ".lesions", c.lesions.data.data(), c.lesions.size());
      const nlohmann::json j = {{"case", name},         {"lung_ml", c.lung_ml},
                                {"ggo_ml", c.ggo_ml},   {"solid_ml", c.solid_ml},
                                {"seconds", c.clean_seconds}, {"executable", exe_identity()},
                                {"protocol_sha256", protocol.sha256}};
      const std::string text = j.dump(1);
      write_bytes_atomic(base + ".json", text.data(), text.size());
    }
  }
  if (lock_fd >= 0) {
    ::flock(lock_fd, LOCK_UN);
    ::close(lock_fd);
  }
  if (use_cache && !loaded) prune_cache(dir, name);
  c.anatomy = analyse_anatomy(c.ct, c.lungs);
  return c;
}

double class_tolerance_ml(double inserted_ml, const Targets& t) {
  return std::max(t.class_rel * inserted_ml, t.class_abs_ml);
}

int default_count(Family family) {
  switch (family) {
    case Family::kRoundJuxtapleural: return 6;  // the six positions, sizes 5-100 mL
    case Family::kBandConsolidation:
    case Family::kBandGroundGlass: return 4;  // posterior and lateral, both lungs
    case Family::kLobar: return 1;            // seeds alternate right and left
    case Family::kParamediastinal: return 4;  // paracardiac and paramediastinal, twice
    case Family::kHilarMass: return 2;        // both hila
  }
  return 1;
}

CaseRun run_family(const ScanCase& scan, Family family, std::uint64_t seed, int count,
                   const Protocol& protocol, const Targets& targets, bool keep_images) {
  CaseRun run;
  run.case_name = scan.name;
  run.family = family;
  run.seed = seed;
  FamilyOptions opt;
  opt.family = family;
  opt.seed = seed;
  opt.count = count;
  opt.ground_glass = protocol.lesion.ground_glass;
  opt.solid = protocol.lesion.solid;
  Stopwatch sw;
  FamilyCase fc = insert_family(scan.ct, scan.lungs, scan.anatomy, opt);
  run.insert_seconds = sw.lap();
  run.notes = fc.notes;

  pipeline::Analysis a;
  a.protocol = protocol;
  a.input.image = fc.ct;
  pipeline::segment_and_measure(a);
  run.segment_seconds = sw.lap();
  expect_same_grid(a.lungs.lungs, scan.ct.geom, scan.name + " with " + family_name(family));
  const auto& v = a.region("lungs").volumes;
  run.lung_ml_clean = scan.lung_ml;
  run.lung_ml_after = v.volume_ml;
  run.ggo_increase_ml = v.ggo_ml - scan.ggo_ml;
  run.solid_increase_ml = v.solid_ml - scan.solid_ml;
  for (const auto& w : a.warnings) {
    run.dense_flagged = run.dense_flagged || w.rfind("dense tissue", 0) == 0;
  }

  const Geometry& g = scan.ct.geom;
  const double vml = g.voxel_volume_ml();
  const LabelImage& after = a.lungs.lungs;
  const LabelImage& after_les = a.lesions.lesions;
  for (FamilyLesion& les : fc.lesions) {
    LesionResult r;
    r.case_name = scan.name;
    std::uint64_t in = 0;
    for (std::size_t n : les.truth) in += is_lung(after[n]);
    r.inside = les.truth.empty() ? 0.0 : double(in) / double(les.truth.size());
    // Measured: the lesion labels gained in the changed voxels grown by 3 mm (in a crop).
    std::array<std::size_t, 3> lo{g.size[0], g.size[1], g.size[2]}, hi{0, 0, 0};
    for (std::size_t n : les.changed) {
      const std::size_t idx[3] = {n % g.size[0], (n / g.size[0]) % g.size[1], n / g.slice_voxels()};
      for (int d = 0; d < 3; ++d) {
        lo[d] = std::min(lo[d], idx[d]);
        hi[d] = std::max(hi[d], idx[d]);
      }
    }
    Geometry cg = g;
    for (int d = 0; d < 3; ++d) {
      const std::size_t m = std::size_t(std::ceil(kMeasureMarginMm / g.spacing[d])) + 1;
      lo[d] = lo[d] >= m ? lo[d] - m : 0;
      hi[d] = std::min(g.size[d] - 1, hi[d] + m);
      cg.size[d] = hi[d] - lo[d] + 1;
    }
    MaskImage region(cg, 0);
    for (std::size_t n : les.changed) {
      const std::size_t i = n % g.size[0], j = (n / g.size[0]) % g.size[1], k = n / g.slice_voxels();
      region.at(i - lo[0], j - lo[1], k - lo[2]) = 1;
    }
    region = seg::dilate(region, kMeasureMarginMm);
    std::int64_t dggo = 0, dsolid = 0;
    for (std::size_t k = 0; k < cg.size[2]; ++k)
      for (std::size_t j = 0; j < cg.size[1]; ++j)
        for (std::size_t i = 0; i < cg.size[0]; ++i) {
          if (!region.at(i, j, k)) continue;
          const std::size_t n = g.index(i + lo[0], j + lo[1], k + lo[2]);
          dggo += (after_les[n] == labels::kGroundGlass) - (scan.lesions[n] == labels::kGroundGlass);
          dsolid += (after_les[n] == labels::kSolid) - (scan.lesions[n] == labels::kSolid);
        }
    r.measured_ggo_ml = double(dggo) * vml;
    r.measured_solid_ml = double(dsolid) * vml;
    r.inside_ok = r.inside >= targets.min_inside;
    r.ggo_ok = std::abs(r.measured_ggo_ml - les.ggo_ml) <= class_tolerance_ml(les.ggo_ml, targets);
    r.solid_ok =
        std::abs(r.measured_solid_ml - les.solid_ml) <= class_tolerance_ml(les.solid_ml, targets);
    run.inserted_ggo_ml += les.ggo_ml;
    run.inserted_solid_ml += les.solid_ml;
    r.lesion = les;
    r.lesion.truth.clear();
    r.lesion.truth.shrink_to_fit();
    r.lesion.changed.clear();
    r.lesion.changed.shrink_to_fit();
    run.lesions.push_back(std::move(r));
  }
  if (keep_images) {
    run.ct_after = std::move(fc.ct);
    run.lungs_after = std::move(a.lungs.lungs);
    run.lesions_with_voxels = std::move(fc.lesions);
  }
  return run;
}

FamilySummary summarise(const std::string& family, const std::vector<CaseRun>& runs) {
  FamilySummary s;
  s.family = family;
  std::vector<double> inside;
  for (const CaseRun& run : runs) {
    ++s.cases;
    s.seconds += run.insert_seconds + run.segment_seconds;
    if (run.lung_ml_clean > 0) {
      s.max_lung_change_pct = std::max(
          s.max_lung_change_pct,
          100.0 * std::abs(run.lung_ml_after - run.lung_ml_clean) / run.lung_ml_clean);
    }
    s.flagged_scans += run.dense_flagged;
    for (const LesionResult& r : run.lesions) {
      ++s.lesions;
      s.inside_ok += r.inside_ok;
      s.silent_misses += !r.inside_ok && !run.dense_flagged;
      s.ggo_ok += r.ggo_ok;
      s.solid_ok += r.solid_ok;
      s.all_ok += r.ok();
      inside.push_back(r.inside);
      if (r.inside < s.worst_inside || s.worst_lesion.empty()) {
        s.worst_inside = r.inside;
        s.worst_lesion = r.case_name + ": " + r.lesion.describe();
      }
      const double eg = r.measured_ggo_ml - r.lesion.ggo_ml;
      const double es = r.measured_solid_ml - r.lesion.solid_ml;
      if (std::abs(eg) > std::abs(s.worst_ggo_err_ml)) {
        s.worst_ggo_err_ml = eg;
        s.worst_ggo_rel = r.lesion.ggo_ml > 0 ? eg / r.lesion.ggo_ml : 0;
      }
      if (std::abs(es) > std::abs(s.worst_solid_err_ml)) {
        s.worst_solid_err_ml = es;
        s.worst_solid_rel = r.lesion.solid_ml > 0 ? es / r.lesion.solid_ml : 0;
      }
    }
  }
  s.median_inside = median(inside);
  if (inside.empty()) s.worst_inside = 0;
  return s;
}

std::vector<double> severity_scales() { return {0.5, 1.0, 1.5, 2.0, 2.5, 3.0}; }

bool SeverityPoint::ok(const Targets& t) const {
  return std::abs(rel(lesion_pct, truth_lesion_pct)) <= t.severity_rel &&
         std::abs(rel(ggo_pct, truth_ggo_pct)) <= t.severity_rel &&
         std::abs(rel(solid_pct, truth_solid_pct)) <= t.severity_rel;
}

SeverityPoint run_severity(double scale, const Protocol& protocol, std::uint64_t seed) {
  phantom::PhantomOptions o;
  o.seed = seed;
  o.lesion_scale = scale;
  const phantom::Phantom ph = phantom::make_phantom(o);
  SeverityPoint p;
  p.scale = scale;
  const auto& tv = ph.truth.at("volumes");
  p.truth_lesion_pct = tv.at("lesion_pct").get<double>();
  p.truth_ggo_pct = tv.at("ggo_pct").get<double>();
  p.truth_solid_pct = tv.at("solid_pct").get<double>();
  p.truth_lung_ml = tv.at("lung_ml").get<double>();
  pipeline::Analysis a;
  a.protocol = protocol;
  a.input.image = ph.ct;
  Stopwatch sw;
  pipeline::segment_and_measure(a);
  p.seconds = sw.seconds();
  expect_same_grid(a.lungs.lungs, ph.lesions.geom, "the phantom");
  const auto& v = a.region("lungs").volumes;
  p.lesion_pct = v.lesion_pct;
  p.ggo_pct = v.ggo_pct;
  p.solid_pct = v.solid_pct;
  p.lung_ml = v.volume_ml;
  std::uint64_t truth = 0, in = 0;
  for (std::size_t n = 0; n < ph.lesions.size(); ++n) {
    if (ph.lesions[n] == labels::kNoLesion) continue;
    ++truth;
    in += is_lung(a.lungs.lungs[n]);
  }
  p.lesion_inside = truth ? double(in) / double(truth) : 1.0;
  return p;
}

void write_lesion_csv(const std::string& path, const std::vector<CaseRun>& runs) {
  std::ostringstream o;
  o << "family,case,seed,index,position,lung,class,base_hu,shape_ml,thickness_mm,truth_ml,"
       "inside_pct,inserted_ggo_ml,measured_ggo_ml,inserted_solid_ml,measured_solid_ml,"
       "other_ml,wall_ml,bronchogram_ml,inside_ok,ggo_ok,solid_ok,pass,lung_ml_clean,"
       "lung_ml_after,qc_slice\n";
  for (const CaseRun& run : runs) {
    for (const LesionResult& r : run.lesions) {
      const FamilyLesion& l = r.lesion;
      char b[1024];
      std::snprintf(
          b, sizeof b,
          "%s,%s,%llu,%d,%s,%s,%s,%.1f,%.3f,%.2f,%.3f,%.3f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,"
          "%d,%d,%d,%d,%.2f,%.2f,%zu\n",
          family_name(l.family), r.case_name.c_str(), static_cast<unsigned long long>(l.seed),
          l.index, position_name(l.position), l.lung == labels::kRightLung ? "right" : "left",
          l.inserted == InsertedClass::kConsolidation ? "consolidation" : "ground_glass",
          l.base_hu, l.shape_ml, l.thickness_mm, l.truth_ml, 100.0 * r.inside, l.ggo_ml,
          r.measured_ggo_ml, l.solid_ml, r.measured_solid_ml, l.other_ml, l.wall_ml,
          l.bronchogram_ml, int(r.inside_ok), int(r.ggo_ok), int(r.solid_ok), int(r.ok()),
          run.lung_ml_clean, run.lung_ml_after, l.qc_slice);
      o << b;
    }
  }
  const std::string text = o.str();
  write_bytes_atomic(path, text.data(), text.size());
}

void write_summary_csv(const std::string& path, const std::vector<FamilySummary>& summaries) {
  std::ostringstream o;
  o << "family,cases,lesions,inside_ok,ggo_ok,solid_ok,all_ok,worst_inside_pct,"
       "median_inside_pct,worst_ggo_err_ml,worst_ggo_err_pct,worst_solid_err_ml,"
       "worst_solid_err_pct,max_lung_change_pct,seconds,flagged_scans,silent_misses,worst_lesion\n";
  for (const FamilySummary& s : summaries) {
    char b[512];
    std::snprintf(b, sizeof b, "%s,%zu,%zu,%zu,%zu,%zu,%zu,%.2f,%.2f,%.3f,%.2f,%.3f,%.2f,%.3f,%.1f,%zu,%zu,",
                  s.family.c_str(), s.cases, s.lesions, s.inside_ok, s.ggo_ok, s.solid_ok,
                  s.all_ok, 100 * s.worst_inside, 100 * s.median_inside, s.worst_ggo_err_ml,
                  100 * s.worst_ggo_rel, s.worst_solid_err_ml, 100 * s.worst_solid_rel,
                  s.max_lung_change_pct, s.seconds, s.flagged_scans, s.silent_misses);
    std::string w = s.worst_lesion;
    std::replace(w.begin(), w.end(), '"', '\'');
    o << b << '"' << w << "\"\n";
  }
  const std::string text = o.str();
  write_bytes_atomic(path, text.data(), text.size());
}

void write_severity_csv(const std::string& path, const std::vector<SeverityPoint>& points) {
  std::ostringstream o;
  o << "lesion_scale,truth_lesion_pct,lesion_pct,truth_ggo_pct,ggo_pct,truth_solid_pct,"
       "solid_pct,truth_lung_ml,lung_ml,lesion_inside_pct,seconds\n";
  for (const SeverityPoint& p : points) {
    char b[512];
    std::snprintf(b, sizeof b, "%.2f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.2f,%.2f,%.3f,%.2f\n",
                  p.scale, p.truth_lesion_pct, p.lesion_pct, p.truth_ggo_pct, p.ggo_pct,
                  p.truth_solid_pct, p.solid_pct, p.truth_lung_ml, p.lung_ml,
                  100 * p.lesion_inside, p.seconds);
    o << b;
  }
  const std::string text = o.str();
  write_bytes_atomic(path, text.data(), text.size());
}

std::string markdown_summary(const std::vector<FamilySummary>& summaries, const Targets& t) {
  std::ostringstream o;
  o << "| family | lesions (cases) | inside >= " << fmt("%.0f", 100 * t.min_inside)
    << " % | worst inside | median inside | ground-glass within tol. | worst ground-glass error"
       " | solid within tol. | worst solid error | all targets | largest lung volume change"
       " | scans flagged | silent misses |\n";
  o << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const FamilySummary& s : summaries) {
    o << "| " << s.family << " | " << s.lesions << " (" << s.cases << ") | " << s.inside_ok
      << " / " << s.lesions << " | " << fmt("%.1f %%", 100 * s.worst_inside) << " | "
      << fmt("%.1f %%", 100 * s.median_inside) << " | " << s.ggo_ok << " / " << s.lesions
      << " | " << fmt("%+.2f mL", s.worst_ggo_err_ml) << fmt(" (%+.0f %%)", 100 * s.worst_ggo_rel)
      << " | " << s.solid_ok << " / " << s.lesions << " | "
      << fmt("%+.2f mL", s.worst_solid_err_ml) << fmt(" (%+.0f %%)", 100 * s.worst_solid_rel)
      << " | " << s.all_ok << " / " << s.lesions << " | "
      << fmt("%.2f %%", s.max_lung_change_pct) << " | " << s.flagged_scans << " / " << s.cases
      << " | " << s.silent_misses << " |\n";
  }
  return o.str();
}

std::string markdown_severity(const std::vector<SeverityPoint>& points, const Targets& t) {
  std::ostringstream o;
  o << "| lesion scale | lesion % (truth) | ground-glass % (truth) | solid % (truth) | "
       "lesion inside the lung mask | lung volume | within "
    << fmt("%.0f", 100 * t.severity_rel) << " % |\n";
  o << "|---:|---:|---:|---:|---:|---:|---|\n";
  for (const SeverityPoint& p : points) {
    o << "| " << fmt("%.1f", p.scale) << " | " << fmt("%.2f", p.lesion_pct)
      << fmt(" (%.2f, ", p.truth_lesion_pct) << fmt("%+.1f %%)", 100 * p.rel(p.lesion_pct, p.truth_lesion_pct))
      << " | " << fmt("%.2f", p.ggo_pct) << fmt(" (%.2f, ", p.truth_ggo_pct)
      << fmt("%+.1f %%)", 100 * p.rel(p.ggo_pct, p.truth_ggo_pct)) << " | "
      << fmt("%.2f", p.solid_pct) << fmt(" (%.2f, ", p.truth_solid_pct)
      << fmt("%+.1f %%)", 100 * p.rel(p.solid_pct, p.truth_solid_pct)) << " | "
      << fmt("%.1f %%", 100 * p.lesion_inside) << " | "
      << fmt("%+.1f %%", 100 * p.rel(p.lung_ml, p.truth_lung_ml)) << " | "
      << (p.ok(t) ? "yes" : "**no**") << " |\n";
  }
  return o.str();
}

void write_truth_qc_png(const std::string& path, const CtImage& ct, const LabelImage& lungs,
                        const std::vector<std::size_t>& truth, std::size_t k) {
  const Geometry& g = ct.geom;
  const report::PlaneAxes ax = report::plane_axes(g, report::QcPlane::kAxial);
  // Only the usual axial layout (k normal) is drawn; other layouts fall back to i across.
  const std::size_t nx = g.size[0], ny = g.size[1];
  k = std::min(k, g.size[2] - 1);
  std::vector<std::uint8_t> mark(nx * ny, 0);  // 1 truth inside, 2 truth outside
  for (std::size_t n : truth) {
    if (n / g.slice_voxels() != k) continue;
    mark[n % g.slice_voxels()] = is_lung(lungs[n]) ? 1 : 2;
  }
  // Pixels are square in mm: scale each axis by its spacing, so that the longer side is at
  // least 512 pixels.
  const double wmm = double(nx) * g.spacing[0], hmm = double(ny) * g.spacing[1];
  const double px_mm = std::min(std::max(wmm, hmm) / 512.0, std::min(g.spacing[0], g.spacing[1]));
  const std::size_t W = std::size_t(std::lround(wmm / px_mm)), H = std::size_t(std::lround(hmm / px_mm));
  report::Raster img(W, H, 3);
  const bool flip_x = ax.normal == 2 && ax.flip_across, flip_y = ax.normal == 2 && ax.flip_down;
  auto voxel_of = [&](std::size_t x, std::size_t y) {
    std::size_t i = std::min(nx - 1, std::size_t((double(x) + 0.5) * px_mm / g.spacing[0]));
    std::size_t j = std::min(ny - 1, std::size_t((double(y) + 0.5) * px_mm / g.spacing[1]));
    if (flip_x) i = nx - 1 - i;
    if (flip_y) j = ny - 1 - j;
    return std::pair<std::size_t, std::size_t>{i, j};
  };
  for (std::size_t y = 0; y < H; ++y) {
    for (std::size_t x = 0; x < W; ++x) {
      const auto [i, j] = voxel_of(x, y);
      const double hu = ct.at(i, j, k);
      const double grey = std::clamp((hu - (-600.0 - 750.0)) / 1500.0, 0.0, 1.0) * 255.0;
      std::uint8_t* p = img.at(x, y);
      double r = grey, gg = grey, b = grey;
      const std::uint8_t m = mark[i + nx * j];
      if (m) {
        const double a = 0.55;
        const report::Rgb c = m == 1 ? report::Rgb{255, 150, 0} : report::Rgb{255, 0, 0};
        r = (1 - a) * r + a * c.r;
        gg = (1 - a) * gg + a * c.g;
        b = (1 - a) * b + a * c.b;
      }
      // Lung contour: the label differs from the pixel to the right or below.
      const std::uint8_t l = lungs.at(i, j, k);
      const auto [i2, j2] = voxel_of(std::min(W - 1, x + 1), y);
      const auto [i3, j3] = voxel_of(x, std::min(H - 1, y + 1));
      const std::uint8_t l2 = lungs.at(i2, j2, k), l3 = lungs.at(i3, j3, k);
      const bool edge = (is_lung(l) || is_lung(l2) || is_lung(l3)) && (l != l2 || l != l3);
      if (edge) {
        const std::uint8_t side = is_lung(l) ? l : (is_lung(l2) ? l2 : l3);
        const report::Rgb c =
            side == labels::kRightLung ? report::kRightLungColour : report::kLeftLungColour;
        r = c.r, gg = c.g, b = c.b;
      }
      p[0] = std::uint8_t(std::lround(r));
      p[1] = std::uint8_t(std::lround(gg));
      p[2] = std::uint8_t(std::lround(b));
    }
  }
  report::write_png(path, img);
}

}  // namespace lungvol::test::stress
