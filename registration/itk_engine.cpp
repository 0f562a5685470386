// The ITK part of the registration (the only file that instantiates ITK's registration
// templates: one pixel type, float, one dimension, 3): the affine step with the v4 framework and
// the multi-resolution diffeomorphic demons.
#include <algorithm>
#include <cmath>
#include <vector>

#include <itkAffineTransform.h>
#include <itkDiffeomorphicDemonsRegistrationFilter.h>
#include <itkImage.h>
#include <itkImageRegistrationMethodv4.h>
#include <itkMeanSquaresImageToImageMetricv4.h>
#include <itkMultiResolutionPDEDeformableRegistration.h>
#include <itkRegistrationParameterScalesFromPhysicalShift.h>
#include <itkGaussianOperator.h>
#include <itkGradientDescentOptimizerv4.h>
#include <itkVector.h>

#include "core/error.hpp"
#include "core/log.hpp"
#include "registration/register.hpp"

namespace lungvol::registration {
namespace {

using ItkImage = itk::Image<float, 3>;
using ItkVector = itk::Vector<float, 3>;
using ItkField = itk::Image<ItkVector, 3>;

template <class ItkImg>
void set_geometry(ItkImg* out, const Geometry& g) {
  typename ItkImg::RegionType region;
  typename ItkImg::SpacingType spacing;
  typename ItkImg::PointType origin;
  typename ItkImg::DirectionType direction;
  for (unsigned a = 0; a < 3; ++a) {
    region.SetSize(a, g.size[a]);
    spacing[a] = g.spacing[a];
    origin[a] = g.origin[a];
    for (unsigned c = 0; c < 3; ++c) direction[a][c] = g.direction[3 * a + c];
  }
  out->SetRegions(region);
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
}

// Wraps our buffer (no copy; ITK does not free it).
ItkImage::Pointer wrap(const FloatImage& img) {
  auto out = ItkImage::New();
  set_geometry(out.GetPointer(), img.geom);
  out->GetPixelContainer()->SetImportPointer(const_cast<float*>(img.data.data()), img.data.size(),
                                             false);
  return out;
}

// Separable Gaussian smoothing of a vector field in place, with the kernel and the border rule
// (zero-flux Neumann: the nearest voxel beyond the border) of ITK's PDEDeformableRegistration-
// Filter, whose VectorNeighborhoodOperatorImageFilter spent a sixth of a registration's CPU time
// in generic neighbourhood iteration; the same sums over plain rows, one axis at a time. On ITK's
// threads, not OpenMP's: OpenMP's workers would spin between these calls while ITK's run the rest
// of each iteration, burning CPU time for nothing.
void smooth_field(ItkField* field, const itk::FixedArray<double, 3>& sigma_vox, double max_error,
                  unsigned max_width, itk::MultiThreaderBase* threader) {
  const auto size = field->GetBufferedRegion().GetSize();
  const std::size_t n[3] = {size[0], size[1], size[2]};
  float* data = field->GetBufferPointer()->GetDataPointer();
  for (unsigned axis = 0; axis < 3; ++axis) {
    itk::GaussianOperator<float, 3> op;
    op.SetDirection(axis);
    op.SetVariance(sigma_vox[axis] * sigma_vox[axis]);
    op.SetMaximumError(max_error);
    op.SetMaximumKernelWidth(max_width);
    op.CreateDirectional();
    const long r = static_cast<long>(op.GetRadius(axis));
    std::vector<float> kernel(std::size_t(2 * r + 1));
    // The operator's coefficients along `axis` sit at the centre of the other axes.
    const std::size_t stride_op = op.GetStride(axis), centre = op.Size() / 2;
    for (long t = -r; t <= r; ++t)
      kernel[std::size_t(t + r)] = op[std::size_t(long(centre) + t * long(stride_op))];
    const long len = static_cast<long>(n[axis]);
    if (len < 2 || r == 0) continue;
    const std::size_t stride = axis == 0 ? 1 : axis == 1 ? n[0] : n[0] * n[1];
    const std::size_t lines = n[0] * n[1] * n[2] / n[axis];
    threader->ParallelizeArray(
        0, lines,
        [&](itk::SizeValueType L) {
          thread_local std::vector<float> line;
          line.resize(3 * std::size_t(len));
          const std::size_t start = axis == 0   ? L * n[0]
                                    : axis == 1 ? (L / n[0]) * n[0] * n[1] + L % n[0]
                                                : L;
          for (long t = 0; t < len; ++t) {
            const float* v = data + 3 * (start + std::size_t(t) * stride);
            line[std::size_t(3 * t)] = v[0];
            line[std::size_t(3 * t + 1)] = v[1];
            line[std::size_t(3 * t + 2)] = v[2];
          }
          for (long t = 0; t < len; ++t) {
            float s0 = 0, s1 = 0, s2 = 0;
            for (long o = -r; o <= r; ++o) {
              const long q = std::clamp<long>(t + o, 0, len - 1);
              const float w = kernel[std::size_t(o + r)];
              s0 += w * line[std::size_t(3 * q)];
              s1 += w * line[std::size_t(3 * q + 1)];
              s2 += w * line[std::size_t(3 * q + 2)];
            }
            float* v = data + 3 * (start + std::size_t(t) * stride);
            v[0] = s0;
            v[1] = s1;
            v[2] = s2;
          }
        },
        nullptr);
  }
}

// ITK's diffeomorphic demons with the field and update smoothing above (same kernels, same
// results up to float rounding).
class Demons : public itk::DiffeomorphicDemonsRegistrationFilter<ItkImage, ItkImage, ItkField> {
 public:
  using Self = Demons;
  using Superclass = itk::DiffeomorphicDemonsRegistrationFilter<ItkImage, ItkImage, ItkField>;
  using Pointer = itk::SmartPointer<Self>;
  // clang-format off
  itkNewMacro(Self)  // (the macro ends with a function body: no semicolon under -Wpedantic)
  // clang-format on

 protected:
  void SmoothDisplacementField() override {
    if (!smooth_whole(this->GetOutput(), this->GetStandardDeviations())) {
      Superclass::SmoothDisplacementField();
    }
  }
  void SmoothUpdateField() override {
    if (!smooth_whole(this->GetUpdateBuffer(), this->GetUpdateFieldStandardDeviations())) {
      Superclass::SmoothUpdateField();
    }
  }

 private:
  // smooth_field works on a whole buffer; a field split into regions is left to ITK.
  bool smooth_whole(ItkField* f, const itk::FixedArray<double, 3>& sigma) {
    if (f->GetBufferedRegion() != f->GetLargestPossibleRegion()) return false;
    smooth_field(f, sigma, this->GetMaximumError(), this->GetMaximumKernelWidth(),
                 this->GetMultiThreader());
    return true;
  }
};

}  // namespace

Affine itk_affine(const FloatImage& fixed, const FloatImage& moving, const Affine& initial,
                  const RegistrationParams& p) {
  using AffineType = itk::AffineTransform<double, 3>;
  using Metric = itk::MeanSquaresImageToImageMetricv4<ItkImage, ItkImage>;
  using Optimizer = itk::GradientDescentOptimizerv4Template<double>;
  using Method = itk::ImageRegistrationMethodv4<ItkImage, ItkImage, AffineType>;
  using Scales = itk::RegistrationParameterScalesFromPhysicalShift<Metric>;

  auto f = wrap(fixed);
  auto m = wrap(moving);
  // The affine acts about the centre of the fixed grid (better-conditioned parameters).
  auto tx = AffineType::New();
  AffineType::InputPointType centre;
  for (unsigned a = 0; a < 3; ++a) {
    centre[a] = fixed.geom.origin[a] + 0.5 * fixed.geom.spacing[a] * double(fixed.geom.size[a] - 1);
  }
  tx->SetCenter(centre);
  AffineType::MatrixType mat;
  for (unsigned r = 0; r < 3; ++r) {
    for (unsigned c = 0; c < 3; ++c) mat[r][c] = initial.m[3 * r + c];
  }
  tx->SetMatrix(mat);
  // y = M (x - c) + c + T  <=>  y = M x + t  with  T = t - c + M c.
  AffineType::OutputVectorType trans;
  for (unsigned r = 0; r < 3; ++r) {
    double mc = 0;
    for (unsigned c = 0; c < 3; ++c) mc += initial.m[3 * r + c] * centre[c];
    trans[r] = initial.t[r] - centre[r] + mc;
  }
  tx->SetTranslation(trans);

  auto metric = Metric::New();
  auto optimizer = Optimizer::New();
  auto scales = Scales::New();
  scales->SetMetric(metric);
  optimizer->SetScalesEstimator(scales);
  // Every step moves no voxel by more than max_step mm (the learning rate is estimated at each
  // iteration from the scales, ITK v4's physical-shift rule): the optimisation cannot jump into
  // a degenerate or mirrored affine.
  optimizer->SetDoEstimateLearningRateAtEachIteration(true);
  optimizer->SetDoEstimateLearningRateOnce(false);
  optimizer->SetMaximumStepSizeInPhysicalUnits(0.5 * p.affine_grid_mm);
  optimizer->SetNumberOfIterations(static_cast<itk::SizeValueType>(p.affine_iterations));
  optimizer->SetMinimumConvergenceValue(1e-6);
  // A window of 5 iterations (was 10): the fine level stops after 5 iterations instead of 10, the
  // affine's CPU time on POPI 1.7 -> 1.4 s, with the same TRE (POPI 1.13/2.35 mm, CIP 1.66/3.56).
  optimizer->SetConvergenceWindowSize(5);
  optimizer->SetReturnBestParametersAndValue(true);

  auto method = Method::New();
  method->SetFixedImage(f);
  method->SetMovingImage(m);
  method->SetMetric(metric);
  method->SetOptimizer(optimizer);
  method->SetInitialTransform(tx);
  method->InPlaceOn();
  // Two levels: twice the affine grid, then the affine grid.
  const double shrink =
      std::max(1.0, std::ceil(p.affine_grid_mm / std::max(1e-6, fixed.geom.spacing[0]) - 1e-6));
  Method::ShrinkFactorsArrayType shrinks(2);
  shrinks[0] = static_cast<itk::SizeValueType>(2 * shrink);
  shrinks[1] = static_cast<itk::SizeValueType>(shrink);
  Method::SmoothingSigmasArrayType sigmas(2);
  sigmas[0] = shrink * fixed.geom.spacing[0];  // mm: half the level's voxel size
  sigmas[1] = 0.5 * shrink * fixed.geom.spacing[0];
  method->SetNumberOfLevels(2);
  method->SetShrinkFactorsPerLevel(shrinks);
  method->SetSmoothingSigmasPerLevel(sigmas);
  method->SetSmoothingSigmasAreSpecifiedInPhysicalUnits(true);
  method->SetMetricSamplingStrategy(Method::MetricSamplingStrategyType::NONE);
  try {
    method->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(ExitCode::kProcessing, std::string("affine registration failed: ") + e.GetDescription());
  }
  log::debug("registration: affine stopped after {} iterations at metric {:.1f} ({})",
             optimizer->GetCurrentIteration(), optimizer->GetValue(),
             optimizer->GetStopConditionDescription());
  Affine out;
  const auto& M = tx->GetMatrix();
  const auto& off = tx->GetOffset();  // y = M x + offset
  for (unsigned r = 0; r < 3; ++r) {
    for (unsigned c = 0; c < 3; ++c) out.m[3 * r + c] = M[r][c];
    out.t[r] = off[r];
  }
  // A chest between two visits changes volume by tens of percent at most and never mirrors: an
  // affine outside that range is a failed optimisation, and the lungs' centroids are kept.
  const double det = out.determinant();
  if (!(det > 0.6 && det < 1.6)) {
    log::warn("registration: the affine step diverged (determinant {:.3f}); continuing from the "
              "lungs' centroids",
              det);
    return initial;
  }
  return out;
}

DisplacementField itk_demons(const FloatImage& fixed, const FloatImage& moving,
                             const RegistrationParams& p) {
  using MultiRes = itk::MultiResolutionPDEDeformableRegistration<ItkImage, ItkImage, ItkField, float>;
  if (!fixed.geom.same_grid(moving.geom)) {
    throw Error(ExitCode::kProcessing, "demons: fixed and moving images must share a grid");
  }
  auto demons = Demons::New();
  demons->SetUseGradientType(Demons::GradientType::Symmetric);
  demons->SetMaximumUpdateStepLength(p.max_step_vox);
  demons->SetUseFirstOrderExp(p.first_order_exp);
  demons->SetSmoothDisplacementField(p.field_sigma_vox > 0);
  demons->SetStandardDeviations(std::max(p.field_sigma_vox, 1e-3));
  demons->SetSmoothUpdateField(p.update_sigma_vox > 0);
  demons->SetUpdateFieldStandardDeviations(std::max(p.update_sigma_vox, 1e-3));
  demons->SetIntensityDifferenceThreshold(0.5);  // HU
  demons->SetMaximumRMSError(0.0);               // run the iterations asked for

  auto multires = MultiRes::New();
  multires->SetRegistrationFilter(demons);
  multires->SetNumberOfLevels(static_cast<unsigned>(p.iterations.size()));
  std::vector<unsigned> its(p.iterations.begin(), p.iterations.end());
  multires->SetNumberOfIterations(its.data());
  auto f = wrap(fixed);
  auto m = wrap(moving);
  multires->SetFixedImage(f);
  multires->SetMovingImage(m);
  try {
    multires->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(ExitCode::kProcessing, std::string("deformable registration failed: ") + e.GetDescription());
  }
  ItkField* out = multires->GetOutput();
  DisplacementField d(fixed.geom);
  const auto region = out->GetLargestPossibleRegion();
  for (unsigned a = 0; a < 3; ++a) {
    if (region.GetSize()[a] != fixed.geom.size[a]) {
      throw Error(ExitCode::kProcessing, "demons: unexpected output size");
    }
  }
  const ItkVector* src = out->GetBufferPointer();
  float* dst = d.data();
  const std::size_t n = fixed.geom.voxel_count();
  for (std::size_t q = 0; q < n; ++q) {
    dst[3 * q] = src[q][0];
    dst[3 * q + 1] = src[q][1];
    dst[3 * q + 2] = src[q][2];
  }
  return d;
}

}  // namespace lungvol::registration
