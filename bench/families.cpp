// The dense pathology stress suite as a table (issue #15; docs/validation.md, "Dense pathology
// stress suite"): N seeds per lesion family on POPI, CIP ct-64 and POPI at 1 mm slices, plus
// the phantom severity series, through the pipeline as built. Prints the per-family table in
// Markdown and writes, into the output folder, lesions.csv (one row per lesion), summary.csv
// (one row per family), severity.csv and one QC picture per family (qc_<family>.png: the axial
// slice through the family's worst lesion, the lung contour, the truth inside the mask orange
// and outside it red).
//
//   cmake -B build -DLUNGVOL_BUILD_BENCH=ON && cmake --build build --target lungvol_families
//   build/bench/lungvol_families --seeds 4 -o out/families
//   build/bench/lungvol_families --families lobar,hilar_mass --cases popi --seeds 2
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/labels.hpp"
#include "core/protocol.hpp"
#include "core/timer.hpp"
#include "io/image_io.hpp"
#include "tests/support/stress_suite.hpp"

using namespace lungvol;
using namespace lungvol::test;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int usage(const char* argv0, const std::string& problem) {
  if (!problem.empty()) std::fprintf(stderr, "%s: %s\n", argv0, problem.c_str());
  std::fprintf(stderr,
               "usage: %s [--seeds N] [--families F,...] [--cases C,...] [--no-severity]\n"
               "          [--protocol P] [--threads N] [--no-cache] [--qc-all] [--dump] [-o DIR]\n"
               "--qc-all: also one picture per lesion, qc_<family>_<case>_<seed>_<index>.png\n"
               "--dump: also <family>_<case>_<seed>_{ct,lungs,truth}.nii.gz (truth = index + 1)\n"
               "families: round_juxtapleural band_consolidation band_ground_glass lobar\n"
               "          paramediastinal hilar_mass (default: all)\n"
               "cases: popi cip popi_1mm (default: all); data from $LUNGVOL_SHARED_DIR/data or\n"
               "       the shared folder beside the source tree\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 2;
  std::vector<std::string> families, cases = stress::case_names();
  for (Family f : all_families()) families.push_back(family_name(f));
  bool severity = true, use_cache = true, qc_all = false, dump = false;
  std::string outdir = "families_out", protocol_name = kDefaultProtocol;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--seeds") {
        seeds = std::stoi(value());
      } else if (a == "--families") {
        families = split(value());
      } else if (a == "--cases") {
        cases = split(value());
      } else if (a == "--no-severity") {
        severity = false;
      } else if (a == "--qc-all") {
        qc_all = true;
      } else if (a == "--dump") {
        dump = true;
      } else if (a == "--no-cache") {
        use_cache = false;
      } else if (a == "--protocol") {
        protocol_name = value();
      } else if (a == "--threads") {
#ifdef _OPENMP
        omp_set_num_threads(std::stoi(value()));
#else
        value();
#endif
      } else if (a == "-o" || a == "--output") {
        outdir = value();
      } else if (a == "-h" || a == "--help") {
        return usage(argv[0], "");
      } else {
        return usage(argv[0], "unknown option " + a);
      }
    } catch (const std::exception& e) {
      return usage(argv[0], e.what());
    }
  }
  if (seeds < 1) return usage(argv[0], "--seeds must be at least 1");
  for (const auto& f : families) {
    if (!parse_family(f)) return usage(argv[0], "unknown family " + f);
  }
  for (const auto& c : cases) {
    bool known = false;
    for (const auto& k : stress::case_names()) known |= k == c;
    if (!known) return usage(argv[0], "unknown case " + c);
  }
  try {
    std::filesystem::create_directories(outdir);
    if (!std::getenv("LUNGVOL_PROTOCOL_DIR")) {
      setenv("LUNGVOL_PROTOCOL_DIR", LUNGVOL_SOURCE_DIR "/protocols", 1);
    }
    const Protocol protocol = load_protocol(protocol_name);
    const stress::Targets targets;
    Stopwatch total;
    std::vector<stress::ScanCase> scans;
    for (const auto& c : cases) {
      scans.push_back(stress::load_case(c, protocol, use_cache));
      const auto& s = scans.back();
      std::fprintf(stderr, "%s: clean lungs %.1f mL (%s %.1f s), noise %.1f HU\n",
                   s.description.c_str(), s.lung_ml, s.from_cache ? "cached" : "segmented",
                   s.clean_seconds, s.anatomy.noise_hu);
    }
    std::vector<stress::CaseRun> all_runs;
    std::vector<stress::FamilySummary> summaries;
    for (const auto& fname : families) {
      const Family family = *parse_family(fname);
      std::vector<stress::CaseRun> runs;
      stress::CaseRun worst_run;  // with images: holds the family's worst lesion
      double worst = 2;
      std::size_t worst_index = 0;
      for (const auto& scan : scans) {
        for (int s = 1; s <= seeds; ++s) {
          stress::CaseRun run = stress::run_family(scan, family, std::uint64_t(s),
                                                   stress::default_count(family), protocol,
                                                   targets, /*keep_images=*/true);
          std::fprintf(stderr, "%s %s seed %d: %zu lesions, %.1f s\n", fname.c_str(),
                       scan.name.c_str(), s, run.lesions.size(),
                       run.insert_seconds + run.segment_seconds);
          for (const auto& n : run.notes) std::fprintf(stderr, "  note: %s\n", n.c_str());
          if (qc_all) {
            for (const FamilyLesion& l : run.lesions_with_voxels) {
              const std::string png = outdir + "/qc_" + fname + "_" + scan.name + "_" +
                                      std::to_string(s) + "_" + std::to_string(l.index) + ".png";
              stress::write_truth_qc_png(png, *run.ct_after, *run.lungs_after, l.truth,
                                         l.qc_slice);
            }
          }
          if (dump) {
            // For looking at a failure in a viewer: the scan with its lesions, the lung map
            // found and the truth (value = lesion index + 1).
            const std::string stem = outdir + "/" + fname + "_" + scan.name + "_" + std::to_string(s);
            io::write_ct_image(*run.ct_after, stem + "_ct.nii.gz");
            io::write_label_image(*run.lungs_after, stem + "_lungs.nii.gz");
            LabelImage truth(run.ct_after->geom, 0);
            for (const FamilyLesion& l : run.lesions_with_voxels) {
              for (const std::size_t n : l.truth) truth[n] = std::uint8_t(l.index + 1);
            }
            io::write_label_image(truth, stem + "_truth.nii.gz");
          }
          bool new_worst = false;
          for (std::size_t i = 0; i < run.lesions.size(); ++i) {
            if (run.lesions[i].inside < worst) {
              worst = run.lesions[i].inside;
              worst_index = i;
              new_worst = true;
            }
          }
          if (new_worst) worst_run = run;  // with its images, for the QC picture
          run.ct_after.reset();
          run.lungs_after.reset();
          run.lesions_with_voxels.clear();
          runs.push_back(std::move(run));
        }
      }
      const stress::FamilySummary sum = stress::summarise(fname, runs);
      summaries.push_back(sum);
      if (worst_run.ct_after && worst_index < worst_run.lesions_with_voxels.size()) {
        const FamilyLesion& l = worst_run.lesions_with_voxels[worst_index];
        const std::string png = outdir + "/qc_" + fname + ".png";
        stress::write_truth_qc_png(png, *worst_run.ct_after, *worst_run.lungs_after, l.truth,
                                   l.qc_slice);
        std::fprintf(stderr, "%s: worst lesion %s %s (%.1f %% inside), slice %zu -> %s\n",
                     fname.c_str(), worst_run.case_name.c_str(), l.describe().c_str(),
                     100 * worst, l.qc_slice, png.c_str());
      }
      all_runs.insert(all_runs.end(), runs.begin(), runs.end());
    }
    stress::write_lesion_csv(outdir + "/lesions.csv", all_runs);
    stress::write_summary_csv(outdir + "/summary.csv", summaries);
    std::printf("## Dense pathology stress suite: %d seed(s) per family on %zu case(s)\n\n", seeds,
                cases.size());
    std::printf("%s\n", stress::markdown_summary(summaries, targets).c_str());
    std::printf("Worst lesion per family:\n\n");
    for (const auto& s : summaries) {
      std::printf("- %s: %.1f %% inside: %s\n", s.family.c_str(), 100 * s.worst_inside,
                  s.worst_lesion.c_str());
    }
    std::printf("\n");
    if (severity) {
      std::vector<stress::SeverityPoint> points;
      for (double scale : stress::severity_scales()) {
        points.push_back(stress::run_severity(scale, protocol));
      }
      stress::write_severity_csv(outdir + "/severity.csv", points);
      std::printf("### Phantom severity series (lungvol phantom --lesion-scale)\n\n%s\n",
                  stress::markdown_severity(points, targets).c_str());
    }
    std::printf("Outputs in %s (lesions.csv, summary.csv%s, qc_<family>.png); %.0f s.\n",
                outdir.c_str(), severity ? ", severity.csv" : "", total.seconds());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
