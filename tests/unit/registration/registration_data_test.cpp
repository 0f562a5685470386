// Registration accuracy on real anatomy with known truth (docs/validation.md, "Registration"):
// POPI and CIP re-rendered at another inspiration level by a known breathing-like motion (lung
// bases 18 mm lower, chest wider, a smooth non-separable component, another table position,
// density following the air content, noise), registered back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/labels.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "pipeline/analyze.hpp"
#include "registration/field.hpp"
#include "registration/register.hpp"
#include "registration/synthetic.hpp"
#include "tests/support/lesion_insertion.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::registration {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

struct Segmented {
  CtImage ct;
  LabelImage lungs, lesions;
};

Segmented segment(const CtImage& ct) {
  pipeline::Analysis a;
  a.protocol = load_protocol(kDefaultProtocol);
  a.input.image = ct;
  pipeline::segment_and_measure(a);
  return {ct, std::move(a.lungs.lungs), std::move(a.lesions.lesions)};
}

struct Accuracy {
  double mean = 0, p95 = 0, max = 0, initial_mean = 0, initial_max = 0, dice = 0;
  double volume_ratio = 0;
  std::size_t points = 0;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

// TRE at `n` random lung voxels of the baseline, and the Dice of the follow-up's (true) lung
// mask warped back to the baseline against the baseline's.
Accuracy evaluate(const RegistrationResult& r, const BreathingMotion& motion,
                  const LabelImage& base_lungs, const LabelImage& follow_true_lungs, std::size_t n) {
  Accuracy a;
  std::vector<std::size_t> lung;
  for (std::size_t q = 0; q < base_lungs.size(); ++q) {
    if (is_lung(base_lungs[q])) lung.push_back(q);
  }
  std::mt19937_64 rng(42);
  std::vector<double> err, init;
  const auto& g = base_lungs.geom;
  for (std::size_t s = 0; s < n; ++s) {
    const std::size_t q = lung[std::uniform_int_distribution<std::size_t>(0, lung.size() - 1)(rng)];
    const std::size_t i = q % g.size[0], j = (q / g.size[0]) % g.size[1], k = q / g.slice_voxels();
    const auto p = g.to_physical(double(i), double(j), double(k));
    const Vec3 x{p[0], p[1], p[2]};
    const Vec3 truth = motion.to_new(x);
    const Vec3 est = r.forward.apply(x);
    err.push_back(std::hypot(est[0] - truth[0], est[1] - truth[1], est[2] - truth[2]));
    init.push_back(std::hypot(x[0] - truth[0], x[1] - truth[1], x[2] - truth[2]));
  }
  a.points = n;
  for (double e : err) a.mean += e / double(n);
  for (double e : init) a.initial_mean += e / double(n);
  a.p95 = percentile(err, 0.95);
  a.max = *std::max_element(err.begin(), err.end());
  a.initial_max = *std::max_element(init.begin(), init.end());
  const LabelImage back = warp_labels(follow_true_lungs, r.forward, g, full_box(g));
  double inter = 0, na = 0, nb = 0, nf = 0;
  for (std::size_t q = 0; q < back.size(); ++q) {
    const bool x = is_lung(base_lungs[q]), y = is_lung(back[q]);
    inter += x && y;
    na += x;
    nb += y;
  }
  for (std::size_t q = 0; q < follow_true_lungs.size(); ++q) nf += is_lung(follow_true_lungs[q]);
  a.dice = 2 * inter / (na + nb);
  a.volume_ratio = nf / na;
  return a;
}

void print(const char* what, const Accuracy& a, const RegistrationResult& r) {
  std::printf("%s: %zu points, motion mean %.2f max %.2f mm; TRE mean %.2f p95 %.2f max %.2f mm; "
              "Dice %.4f; true volume ratio %.3f; MAD %.0f -> %.0f -> %.0f HU; %.1f s (prepare %.1f, "
              "affine %.1f, demons %.1f, inverse %.1f; CPU %.1f s); inverse residual max %.2f p99 %.2f mm, %.3f%% > 1 mm\n",
              what, a.points, a.initial_mean, a.initial_max, a.mean, a.p95, a.max, a.dice,
              a.volume_ratio, r.mad_initial_hu, r.mad_affine_hu, r.mad_final_hu, r.timing.total_s,
              r.timing.prepare_s, r.timing.affine_s, r.timing.deformable_s, r.timing.inverse_s,
              r.timing.cpu_s, r.inverse_quality.max_mm, r.inverse_quality.p99_mm,
              r.inverse_quality.over_1mm_pct);
}

class PopiRegistration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
    base_ = new Segmented(segment(io::load_ct(test::shared_data("popi-4dct-phase00-itkelastix/dicom")).image));
    motion_ = new BreathingMotion(base_->lungs, BreathingParams{});
    follow_ = new RenderedScan(render_breathing(base_->ct, base_->lungs, base_->lesions, *motion_));
    follow_seg_ = new Segmented(segment(follow_->ct));
  }
  static void TearDownTestSuite() {
    delete base_;
    delete motion_;
    delete follow_;
    delete follow_seg_;
  }
  static Segmented* base_;
  static BreathingMotion* motion_;
  static RenderedScan* follow_;
  static Segmented* follow_seg_;
};
Segmented* PopiRegistration::base_ = nullptr;
BreathingMotion* PopiRegistration::motion_ = nullptr;
RenderedScan* PopiRegistration::follow_ = nullptr;
Segmented* PopiRegistration::follow_seg_ = nullptr;

TEST_F(PopiRegistration, BreathingMotionIsRecovered) {
  const VisitImages b{&base_->ct, &base_->lungs, &base_->lesions};
  const VisitImages f{&follow_seg_->ct, &follow_seg_->lungs, &follow_seg_->lesions};
  RegistrationParams p;
  if (const char* e = std::getenv("LV_GRID")) p.grid_mm = std::atof(e);
  if (const char* e = std::getenv("LV_ITS")) {
    p.iterations.clear();
    std::string s(e);
    for (std::size_t pos = 0; pos < s.size();) {
      const auto c = s.find(',', pos);
      p.iterations.push_back(std::atoi(s.substr(pos, c - pos).c_str()));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
  }
  if (const char* e = std::getenv("LV_SIGMA")) p.field_sigma_vox = std::atof(e);
  if (const char* e = std::getenv("LV_USIGMA")) p.update_sigma_vox = std::atof(e);
  if (const char* e = std::getenv("LV_MARGIN")) p.margin_mm = std::atof(e);
  if (const char* e = std::getenv("LV_FOE")) p.first_order_exp = std::atoi(e) != 0;
  const RegistrationResult r = register_to_baseline(b, f, p);
  const Accuracy a = evaluate(r, *motion_, base_->lungs, follow_->lungs, 300);
  print("POPI", a, r);
  EXPECT_LE(a.mean, 1.5);
  EXPECT_LE(a.p95, 3.0);
  EXPECT_GE(a.dice, 0.97);
}

}  // namespace
}  // namespace lungvol::registration
