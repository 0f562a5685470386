// Micro-benchmarks of the hot kernels of `lungvol analyze`, on realistic sizes: the POPI 4D-CT
// phase (141 x 512 x 512, real data) when ../shared is present, otherwise a 512 x 512 x 141
// phantom. Masks are the ones the pipeline itself produces on that scan, so connected-component
// counts and distance-transform work are representative.
//
//   build-bench/bench/lungvol_bench_kernels [--benchmark_filter=Dilate] [--benchmark_min_time=0.2]
//
// Kernels that run OpenMP loops take the thread count as their argument (/1, /2) so the
// per-kernel parallel speed-up can be read directly from one run.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "core/image.hpp"
#include "core/labels.hpp"
#include "core/protocol.hpp"
#include "densitometry/calibration.hpp"
#include "io/image_io.hpp"
#include "io/dicom_internal.hpp"
#include "io/series.hpp"
#include "phantom/phantom.hpp"
#include "report/qc_images.hpp"
#include "segmentation/components.hpp"
#include "segmentation/lesions.hpp"
#include "segmentation/lungs.hpp"
#include "segmentation/morphology.hpp"
#include "volumetry/regions.hpp"

namespace fs = std::filesystem;
using namespace lungvol;

namespace {

const std::string kPopi = std::string(LUNGVOL_SHARED_DIR) + "/data/popi-4dct-phase00-itkelastix/dicom";

// Everything the kernels work on, built once (the lung segmentation alone takes seconds).
struct Inputs {
  std::string source;  // "POPI" or "phantom"
  CtImage ct;
  LabelImage lungs;
  MaskImage lung_mask;   // either lung
  MaskImage air;         // HU < air_max_hu over the whole scan (many components)
  MaskImage suppressed;  // from the lesion step
  Protocol protocol;
};

const Inputs& inputs() {
  static const std::unique_ptr<Inputs> in = [] {
    auto p = std::make_unique<Inputs>();
    if (!std::getenv("LUNGVOL_PROTOCOL_DIR")) {
      setenv("LUNGVOL_PROTOCOL_DIR", LUNGVOL_SOURCE_DIR "/protocols", 0);
    }
    p->protocol = load_protocol(kDefaultProtocol);
    if (fs::is_directory(kPopi)) {
      p->source = "POPI";
      p->ct = io::load_ct(kPopi).image;
    } else {
      p->source = "phantom";
      phantom::PhantomOptions o;
      o.size = {512, 512, 141};
      o.spacing = {0.7, 0.7, 2.0};
      p->ct = phantom::make_phantom(o).ct;
    }
    p->lungs = seg::segment_lungs(p->ct, p->protocol.lung).lungs;
    p->lung_mask = MaskImage(p->ct.geom, 0);
    p->air = MaskImage(p->ct.geom, 0);
    for (std::size_t n = 0; n < p->ct.size(); ++n) {
      p->lung_mask[n] = p->lungs[n] == labels::kRightLung || p->lungs[n] == labels::kLeftLung;
      p->air[n] = p->ct[n] < p->protocol.lung.air_max_hu;
    }
    p->suppressed = seg::segment_lesions(p->ct, p->lungs, p->protocol.lesion).suppressed;
    return p;
  }();
  return *in;
}

void set_voxels(benchmark::State& state, std::size_t voxels, const Inputs& in) {
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(voxels));
  state.SetLabel(in.source);
}

// Sets the OpenMP team size from the benchmark's argument (0 = leave the default).
void use_threads(const benchmark::State& state) {
  if (state.range(0) > 0) omp_set_num_threads(int(state.range(0)));
}

void ThreadArgs(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_Threshold(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  MaskImage out(in.ct.geom, 0);
  const auto lim = std::int16_t(in.protocol.lung.air_max_hu);
  for (auto _ : state) {
    const std::ptrdiff_t n = std::ptrdiff_t(in.ct.size());
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t v = 0; v < n; ++v) out[v] = in.ct[v] < lim;
    benchmark::DoNotOptimize(out.data.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_Threshold)->Apply(ThreadArgs);

void BM_RegionHistograms(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    auto h = vol::build_region_histograms(in.ct, in.lungs, in.suppressed);
    benchmark::DoNotOptimize(h.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_RegionHistograms)->Apply(ThreadArgs);

void BM_SquaredDistance(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    auto d = seg::squared_distance_to(in.lung_mask);
    benchmark::DoNotOptimize(d.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_SquaredDistance)->Apply(ThreadArgs);

// Radius as in the lesion step (vessel_radius_mm = 1.5) and the lung closing (20 mm).
using MorphologyOp = MaskImage (*)(const MaskImage&, double);

void BM_Morphology(benchmark::State& state, MorphologyOp op, double radius_mm) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    auto m = op(in.lung_mask, radius_mm);
    benchmark::DoNotOptimize(m.data.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK_CAPTURE(BM_Morphology, dilate_1p5mm, &seg::dilate, 1.5)->Apply(ThreadArgs);
BENCHMARK_CAPTURE(BM_Morphology, erode_1p5mm, &seg::erode, 1.5)->Apply(ThreadArgs);
BENCHMARK_CAPTURE(BM_Morphology, open_1p5mm, &seg::open, 1.5)->Apply(ThreadArgs);
// The lesion opening of the protocols (vessel_radius_mm = 4): windowed minima, no transform.
BENCHMARK_CAPTURE(BM_Morphology, open_4mm, &seg::open, 4.0)->Apply(ThreadArgs);
BENCHMARK_CAPTURE(BM_Morphology, close_20mm, &seg::close, 20.0)->Apply(ThreadArgs);

void BM_LabelComponents(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  std::size_t count = 0;
  for (auto _ : state) {
    auto c = seg::label_components(in.air);
    count = c.count();
    const std::uint32_t middle = c.labels[c.labels.size() / 2];
    benchmark::DoNotOptimize(middle);
  }
  state.counters["components"] = double(count);
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_LabelComponents)->Apply(ThreadArgs);

void BM_RemoveSmallComponents(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    state.PauseTiming();
    MaskImage m = in.air;
    state.ResumeTiming();
    seg::remove_small_components(m, 1000);
    benchmark::DoNotOptimize(m.data.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_RemoveSmallComponents)->Apply(ThreadArgs);

void BM_FillHoles2d(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    state.PauseTiming();
    MaskImage m = in.lung_mask;
    state.ResumeTiming();
    seg::fill_holes_2d(m);
    benchmark::DoNotOptimize(m.data.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_FillHoles2d)->Apply(ThreadArgs);

// Whole stages, for the share of each kernel in them.
void BM_SegmentLungs(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    auto s = seg::segment_lungs(in.ct, in.protocol.lung);
    benchmark::DoNotOptimize(s.lungs.data.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_SegmentLungs)->Apply(ThreadArgs)->Iterations(2);

// Includes the 3x3x3 box mean (not exposed on its own).
void BM_SegmentLesions(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    auto s = seg::segment_lesions(in.ct, in.lungs, in.protocol.lesion);
    benchmark::DoNotOptimize(s.lesions.data.data());
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_SegmentLesions)->Apply(ThreadArgs);

// Runs inside the "lesions" stage of metrics.json (before segment_lesions).
void BM_CheckCalibration(benchmark::State& state) {
  const Inputs& in = inputs();
  use_threads(state);
  for (auto _ : state) {
    auto c = dens::check_calibration(in.ct, in.lungs);
    benchmark::DoNotOptimize(&c);
  }
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_CheckCalibration)->Apply(ThreadArgs);

// Pieces of the "write" stage: one label map as .nii.gz (ITK, zlib) and the QC PNGs.
void BM_WriteLabelNiiGz(benchmark::State& state) {
  const Inputs& in = inputs();
  const std::string path = (fs::temp_directory_path() / "lungvol_bench_lungs.nii.gz").string();
  for (auto _ : state) io::write_label_image(in.lungs, path);
  fs::remove(path);
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_WriteLabelNiiGz)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_WriteQcImages(benchmark::State& state) {
  const Inputs& in = inputs();
  const fs::path dir = fs::temp_directory_path() / "lungvol_bench_qc";
  const LabelImage no_lesions(in.ct.geom, 0);
  for (auto _ : state) report::write_qc_images(in.ct, in.lungs, no_lesions, dir.string());
  fs::remove_all(dir);
  set_voxels(state, in.ct.size(), in);
}
BENCHMARK(BM_WriteQcImages)->Unit(benchmark::kMillisecond)->UseRealTime();

// One POPI slice: header parse + pixel decode to HU (the per-file work of the read stage).
void BM_DicomDecodeSlice(benchmark::State& state) {
  if (!fs::is_directory(kPopi)) {
    state.SkipWithError("POPI data not found");
    return;
  }
  const std::string file = kPopi + "/00-slice070.dcm";
  io::detail::register_dcmtk_codecs();
  std::vector<std::int16_t> pixels;
  for (auto _ : state) {
    io::detail::Header h;
    std::string reason;
    if (!io::detail::read_header(file, h, reason)) {
      state.SkipWithError(("not DICOM: " + reason).c_str());
      return;
    }
    pixels.resize(std::size_t(h.rows) * std::size_t(h.columns));
    io::detail::DecodeStats stats;
    io::detail::decode_frames(h, {pixels.data()}, stats);
    benchmark::DoNotOptimize(pixels.data());
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(pixels.size()));
}
BENCHMARK(BM_DicomDecodeSlice)->Unit(benchmark::kMicrosecond);

// The whole read stage on POPI (discovery, headers, decode, hash of the files).
void BM_LoadCtPopi(benchmark::State& state) {
  if (!fs::is_directory(kPopi)) {
    state.SkipWithError("POPI data not found");
    return;
  }
  use_threads(state);
  std::size_t voxels = 0;
  for (auto _ : state) {
    auto ct = io::load_ct(kPopi);
    voxels = ct.image.size();
    benchmark::DoNotOptimize(ct.image.data.data());
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(voxels));
}
BENCHMARK(BM_LoadCtPopi)->Apply(ThreadArgs);

void BM_Sha256_64MB(benchmark::State& state) {
  std::vector<std::uint8_t> bytes(64u << 20);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::uint8_t(i * 2654435761u >> 13);
  for (auto _ : state) {
    Sha256 h;
    h.update(bytes.data(), bytes.size());
    auto d = h.hex_digest();
    benchmark::DoNotOptimize(d.data());
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(bytes.size()));
}
BENCHMARK(BM_Sha256_64MB)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
