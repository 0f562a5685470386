// Subpleural lesion bands (issue #15) on POPI and on the phantom: prints per-band and
// per-thickness tables (docs/validation.md, "Thin ground-glass: vessel suppression by shape")
// and, with --qc DIR, one QC image per family.
//
//   lungvol_ggo_bands [--scan popi|phantom|both] [--protocol P] [--qc DIR] [--families g,s,c]
//
// Built with the tests (tests/unit/pipeline/CMakeLists.txt): build/tests/unit/pipeline/lungvol_ggo_bands
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/protocol.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "phantom/phantom.hpp"
#include "report/png.hpp"
#include "report/qc_images.hpp"
#include "segmentation/lesions.hpp"
#include "segmentation/lungs.hpp"
#include "tests/unit/pipeline/band_families.hpp"

using namespace lungvol;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Scan {
  std::string name;
  CtImage ct;
  LabelImage lungs;
};

Scan load_popi(const std::string& shared) {
  Scan s;
  s.name = "popi";
  s.ct = io::load_ct(shared + "/data/popi-4dct-phase00-itkelastix/dicom").image;
  s.lungs = seg::segment_lungs(s.ct, load_protocol(kDefaultProtocol).lung).lungs;
  return s;
}

Scan load_phantom(bool lesions) {
  Scan s;
  s.name = lesions ? "phantom" : "phantom-no-lesions";
  phantom::PhantomOptions o;
  o.size = {346, 346, 160};
  o.spacing = {1.0, 1.0, 2.0};
  o.with_lesions = lesions;
  const phantom::Phantom ph = phantom::make_phantom(o);
  s.ct = ph.ct;
  s.lungs = ph.lungs;
  return s;
}

void write_qc(const std::string& dir, const std::string& name, const CtImage& ct,
              const LabelImage& lungs, const LabelImage& lesions,
              const std::vector<test::BandResult>& bands) {
  if (dir.empty() || bands.empty()) return;
  std::filesystem::create_directories(dir);
  // The axial slice through the first band's anchor, native resolution.
  report::QcOptions o;
  o.max_side = 0;
  const auto k = std::size_t(bands.front().anchor[2]);
  const report::Raster r = report::render_qc_plane(ct, lungs, lesions, report::QcPlane::kAxial, k, o);
  const std::string path = dir + "/" + name + ".png";
  report::write_png(path, r);
  std::printf("wrote %s (axial slice %zu)\n", path.c_str(), k);
}

}  // namespace

int main(int argc, char** argv) {
  std::string scan = "both", protocol_name = kDefaultProtocol, qc, families = "g,s,c";
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    auto next = [&]() { return a + 1 < argc ? std::string(argv[++a]) : std::string(); };
    if (arg == "--scan") scan = next();
    else if (arg == "--protocol") protocol_name = next();
    else if (arg == "--qc") qc = next();
    else if (arg == "--families") families = next();
    else {
      std::fprintf(stderr, "usage: lungvol_ggo_bands [--scan popi|phantom|both] [--protocol P] [--qc DIR] [--families g,s,c]\n");
      return 2;
    }
  }
  if (!std::getenv("LUNGVOL_PROTOCOL_DIR")) setenv("LUNGVOL_PROTOCOL_DIR", LUNGVOL_SOURCE_DIR "/protocols", 1);
  const std::string shared = std::getenv("LUNGVOL_SHARED_DIR") ? std::getenv("LUNGVOL_SHARED_DIR") : LUNGVOL_SHARED_DIR;
  const Protocol protocol = load_protocol(protocol_name);
  log::set_level(log::Level::kDebug);  // the lesion stage's timings (tube strength, vessel zone)
  std::printf("protocol %s %s\n", protocol.name.c_str(), protocol.version.c_str());

  std::vector<Scan> scans;
  if (scan == "phantom" || scan == "both") {
    scans.push_back(load_phantom(false));
  }
  if (scan == "popi" || scan == "both") scans.push_back(load_popi(shared));
  for (const Scan& s : scans) {
    auto t0 = std::chrono::steady_clock::now();
    const seg::LesionSegmentation base = seg::segment_lesions(s.ct, s.lungs, protocol.lesion);
    const double t_base = seconds_since(t0);
    std::printf("\n== %s: residual lesion %.3f %% of the lung (lesion stage %.2f s)\n", s.name.c_str(),
                test::lesion_percent(base, s.lungs), t_base);
    if (!qc.empty()) {
      std::filesystem::create_directories(qc);
      report::QcOptions o;
      o.max_side = 0;
      std::vector<std::size_t> ks;
      for (const double f : {0.3, 0.5, 0.7}) ks.push_back(std::size_t(f * double(s.ct.geom.size[2])));
      for (const std::size_t k : ks) {
        report::write_png(qc + "/" + s.name + "_base_" + std::to_string(k) + ".png",
                          report::render_qc_plane(s.ct, s.lungs, base.lesions, report::QcPlane::kAxial, k, o));
      }
      report::write_png(qc + "/" + s.name + "_base_coronal.png",
                        report::render_qc_plane(s.ct, s.lungs, base.lesions, report::QcPlane::kCoronal,
                                                s.ct.geom.size[1] / 2, o));
    }
    const struct {
      char key;
      test::BandKind kind;
      std::vector<double> t;
      const char* file;
    } fams[] = {
        {'g', test::BandKind::kGroundGlass, {3, 4, 5, 6, 8, 10, 14}, "ggo_bands"},
        {'s', test::BandKind::kSolid, {3, 4, 5, 6, 8}, "solid_bands"},
        {'c', test::BandKind::kCrazyPaving, {6, 8, 10, 12}, "crazy_paving"},
    };
    for (const auto& f : fams) {
      if (families.find(f.key) == std::string::npos) continue;
      test::FamilySpec spec;
      spec.kind = f.kind;
      spec.thicknesses_mm = f.t;
      CtImage last;
      seg::LesionSegmentation last_seg;
      std::vector<test::BandResult> last_bands;
      t0 = std::chrono::steady_clock::now();
      const auto results = test::run_family(s.ct, s.lungs, base, protocol, spec, &last, &last_seg, &last_bands);
      std::printf("%s", test::format_results(s.name + ": " + test::band_kind_name(f.kind), results).c_str());
      std::printf("  (%.1f s)\n", seconds_since(t0));
      write_qc(qc, s.name + "_" + f.file, last, s.lungs, last_seg.lesions, last_bands);
    }
  }
  return 0;
}
