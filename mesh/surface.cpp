#include "mesh/surface.hpp"

#include <vtkCellArray.h>
#include <vtkDiscreteFlyingEdges3D.h>
#include <vtkFieldData.h>
#include <vtkImageData.h>
#include <vtkNew.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkDecimatePro.h>
#include <vtkSTLWriter.h>
#include <vtkSmartPointer.h>
#include <vtkStringArray.h>
#include <vtkWindowedSincPolyDataFilter.h>
#include <vtkXMLPolyDataWriter.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "mesh/vtk_convert.hpp"

namespace lungvol::mesh {
namespace {

struct Box {
  std::array<std::size_t, 3> lo{0, 0, 0}, hi{0, 0, 0};  // inclusive voxel index bounds
  bool empty = true;
};

Box bounding_box(const LabelImage& labels, std::uint8_t value) {
  const auto& s = labels.geom.size;
  const auto nk = static_cast<std::ptrdiff_t>(s[2]);
  std::size_t lo0 = std::numeric_limits<std::size_t>::max(), lo1 = lo0, lo2 = lo0;
  std::size_t hi0 = 0, hi1 = 0, hi2 = 0;
#pragma omp parallel for schedule(static) reduction(min : lo0, lo1, lo2) \
    reduction(max : hi0, hi1, hi2)
  for (std::ptrdiff_t k = 0; k < nk; ++k) {
    const std::uint8_t* slice = labels.data.data() + static_cast<std::size_t>(k) * s[0] * s[1];
    for (std::size_t j = 0; j < s[1]; ++j) {
      const std::uint8_t* row = slice + j * s[0];
      for (std::size_t i = 0; i < s[0]; ++i) {
        if (row[i] != value) continue;
        lo0 = std::min(lo0, i), hi0 = std::max(hi0, i);
        lo1 = std::min(lo1, j), hi1 = std::max(hi1, j);
        lo2 = std::min(lo2, static_cast<std::size_t>(k));
        hi2 = std::max(hi2, static_cast<std::size_t>(k));
      }
    }
  }
  Box b;
  if (lo0 == std::numeric_limits<std::size_t>::max()) return b;
  b.lo = {lo0, lo1, lo2};
  b.hi = {hi0, hi1, hi2};
  b.empty = false;
  return b;
}

// A 0/1 copy of the label's bounding box with one background voxel on every side, so the
// surface closes where the label touches the image border. VTK coordinates are index times
// spacing (origin at voxel 0, no rotation): smoothing and decimation then work in mm, and
// the rigid map to LPS is applied afterwards.
vtkSmartPointer<vtkImageData> padded_mask(const LabelImage& labels, std::uint8_t value,
                                          const Box& b) {
  const Geometry& g = labels.geom;
  std::array<int, 3> dim{};
  for (int a = 0; a < 3; ++a) dim[a] = static_cast<int>(b.hi[a] - b.lo[a] + 3);
  auto img = vtkSmartPointer<vtkImageData>::New();
  img->SetDimensions(dim[0], dim[1], dim[2]);
  img->SetSpacing(g.spacing[0], g.spacing[1], g.spacing[2]);
  img->SetOrigin((double(b.lo[0]) - 1) * g.spacing[0], (double(b.lo[1]) - 1) * g.spacing[1],
                 (double(b.lo[2]) - 1) * g.spacing[2]);
  img->AllocateScalars(VTK_UNSIGNED_CHAR, 1);
  auto* out = static_cast<std::uint8_t*>(img->GetScalarPointer());
  const std::size_t dx = std::size_t(dim[0]), dxy = dx * std::size_t(dim[1]);
  std::fill(out, out + dxy * std::size_t(dim[2]), std::uint8_t{0});
  const auto nk = static_cast<std::ptrdiff_t>(b.hi[2] - b.lo[2] + 1);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < nk; ++kk) {
    const std::size_t k = b.lo[2] + static_cast<std::size_t>(kk);
    for (std::size_t j = b.lo[1]; j <= b.hi[1]; ++j) {
      const std::uint8_t* src = labels.data.data() + g.index(0, j, k);
      std::uint8_t* dst = out + (std::size_t(kk) + 1) * dxy + (j - b.lo[1] + 1) * dx + 1;
      for (std::size_t i = b.lo[0]; i <= b.hi[0]; ++i) dst[i - b.lo[0]] = src[i] == value;
    }
  }
  return img;
}

TriangleMesh to_lps(vtkPolyData* poly, const Geometry& g) {
  TriangleMesh m;
  vtkPoints* pts = poly->GetPoints();
  if (!pts) return m;
  const vtkIdType np = pts->GetNumberOfPoints();
  m.points.resize(static_cast<std::size_t>(np));
  const auto& d = g.direction;  // row-major; column c = LPS direction of index axis c
  for (vtkIdType n = 0; n < np; ++n) {
    double p[3];
    pts->GetPoint(n, p);
    auto& q = m.points[static_cast<std::size_t>(n)];
    for (int r = 0; r < 3; ++r) {
      q[r] = static_cast<float>(g.origin[r] + d[r * 3] * p[0] + d[r * 3 + 1] * p[1] +
                                d[r * 3 + 2] * p[2]);
    }
  }
  vtkCellArray* polys = poly->GetPolys();
  m.triangles.reserve(static_cast<std::size_t>(polys->GetNumberOfCells()));
  vtkIdType npts = 0;
  const vtkIdType* ids = nullptr;
  for (polys->InitTraversal(); polys->GetNextCell(npts, ids);) {
    if (npts != 3 || ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2]) continue;
    m.triangles.push_back({static_cast<std::uint32_t>(ids[0]), static_cast<std::uint32_t>(ids[1]),
                           static_cast<std::uint32_t>(ids[2])});
  }
  // Marching-cubes winding depends on the filter and a reflecting direction matrix flips it:
  // orient by the sign of the enclosed volume instead of reasoning about either.
  if (enclosed_volume_mm3(m) < 0) {
    for (auto& t : m.triangles) std::swap(t[1], t[2]);
  }
  return m;
}

}  // namespace

vtkSmartPointer<vtkPolyData> to_vtk_polydata(const TriangleMesh& m, const std::string& name) {
  vtkNew<vtkPoints> pts;
  pts->SetDataTypeToFloat();
  pts->SetNumberOfPoints(static_cast<vtkIdType>(m.points.size()));
  for (std::size_t n = 0; n < m.points.size(); ++n) {
    pts->SetPoint(static_cast<vtkIdType>(n), m.points[n].data());
  }
  vtkNew<vtkCellArray> cells;
  cells->AllocateExact(static_cast<vtkIdType>(m.triangles.size()),
                       static_cast<vtkIdType>(m.triangles.size() * 3));
  for (const auto& t : m.triangles) {
    const vtkIdType ids[3] = {t[0], t[1], t[2]};
    cells->InsertNextCell(3, ids);
  }
  auto poly = vtkSmartPointer<vtkPolyData>::New();
  poly->SetPoints(pts);
  poly->SetPolys(cells);
  const auto field = [&](const char* key, const std::string& value) {
    vtkNew<vtkStringArray> a;
    a->SetName(key);
    a->InsertNextValue(value);
    poly->GetFieldData()->AddArray(a);
  };
  field("structure", name);
  field("coordinate_system", "LPS");
  field("units", "mm");
  return poly;
}

TriangleMesh extract_surface(const LabelImage& labels, std::uint8_t value,
                             const SurfaceOptions& options) {
  const Geometry& g = labels.geom;
  if (labels.data.size() != g.voxel_count()) {
    throw Error(ExitCode::kProcessing, "extract_surface: label image buffer does not match its size");
  }
  Stopwatch sw;
  const Box box = bounding_box(labels, value);
  if (box.empty) return {};
  vtkSmartPointer<vtkImageData> img = padded_mask(labels, value, box);
  const double t_mask = sw.lap();

  vtkNew<vtkDiscreteFlyingEdges3D> surface;
  surface->SetInputData(img);
  surface->SetValue(0, 1.0);
  surface->ComputeNormalsOff();
  surface->ComputeGradientsOff();
  surface->ComputeScalarsOff();
  vtkPolyDataAlgorithm* last = surface;

  vtkNew<vtkWindowedSincPolyDataFilter> smooth;
  if (options.smoothing_iterations > 0) {
    smooth->SetInputConnection(last->GetOutputPort());
    smooth->SetNumberOfIterations(options.smoothing_iterations);
    smooth->SetPassBand(options.smoothing_pass_band);
    smooth->NormalizeCoordinatesOn();  // pass band is meant for unit-cube coordinates
    smooth->BoundarySmoothingOff();
    smooth->FeatureEdgeSmoothingOff();
    smooth->NonManifoldSmoothingOn();
    last = smooth;
  }
  vtkNew<vtkDecimatePro> decimate;
  if (options.decimation > 0) {
    decimate->SetInputConnection(last->GetOutputPort());
    decimate->SetTargetReduction(std::min(options.decimation, 0.95));
    decimate->PreserveTopologyOn();
    decimate->SplittingOff();
    decimate->BoundaryVertexDeletionOff();
    last = decimate;
  }
  // Stage by stage, so the debug log shows where the time goes.
  surface->Update();
  const double t_surface = sw.lap();
  const vtkIdType raw_triangles = surface->GetOutput()->GetNumberOfPolys();
  if (options.smoothing_iterations > 0) smooth->Update();
  const double t_smooth = sw.lap();
  last->Update();
  const double t_decimate = sw.lap();
  vtkPolyData* poly = last->GetOutput();
  if (!poly) throw Error(ExitCode::kProcessing, "extract_surface: VTK produced no polygon data");
  TriangleMesh m = to_lps(poly, g);
  log::debug("mesh of label {}: {} -> {} triangles; mask {:.2f} s, surface {:.2f} s, smooth "
             "{:.2f} s, decimate {:.2f} s, convert {:.2f} s",
             int(value), raw_triangles, m.triangles.size(), t_mask, t_surface, t_smooth,
             t_decimate, sw.lap());
  return m;
}

double surface_area_mm2(const TriangleMesh& mesh) {
  double area = 0;
  for (const auto& t : mesh.triangles) {
    const auto& a = mesh.points[t[0]];
    const auto& b = mesh.points[t[1]];
    const auto& c = mesh.points[t[2]];
    const double u[3] = {double(b[0]) - a[0], double(b[1]) - a[1], double(b[2]) - a[2]};
    const double v[3] = {double(c[0]) - a[0], double(c[1]) - a[1], double(c[2]) - a[2]};
    const double x = u[1] * v[2] - u[2] * v[1], y = u[2] * v[0] - u[0] * v[2],
                 z = u[0] * v[1] - u[1] * v[0];
    area += 0.5 * std::sqrt(x * x + y * y + z * z);
  }
  return area;
}

double enclosed_volume_mm3(const TriangleMesh& mesh) {
  if (mesh.points.empty()) return 0;
  // Relative to the first point, so far-from-origin LPS coordinates lose no precision.
  const auto& o = mesh.points.front();
  double six_v = 0;
  for (const auto& t : mesh.triangles) {
    double p[3][3];
    for (int v = 0; v < 3; ++v) {
      for (int r = 0; r < 3; ++r) p[v][r] = double(mesh.points[t[v]][r]) - o[r];
    }
    six_v += p[0][0] * (p[1][1] * p[2][2] - p[1][2] * p[2][1]) -
             p[0][1] * (p[1][0] * p[2][2] - p[1][2] * p[2][0]) +
             p[0][2] * (p[1][0] * p[2][1] - p[1][1] * p[2][0]);
  }
  return six_v / 6.0;
}

std::array<double, 6> mesh_bounds(const TriangleMesh& mesh) {
  if (mesh.points.empty()) return {0, 0, 0, 0, 0, 0};
  std::array<double, 6> b{};
  for (int r = 0; r < 3; ++r) {
    b[2 * r] = std::numeric_limits<double>::max();
    b[2 * r + 1] = std::numeric_limits<double>::lowest();
  }
  for (const auto& p : mesh.points) {
    for (int r = 0; r < 3; ++r) {
      b[2 * r] = std::min(b[2 * r], double(p[r]));
      b[2 * r + 1] = std::max(b[2 * r + 1], double(p[r]));
    }
  }
  return b;
}

void write_vtp(const TriangleMesh& mesh, const std::string& path, const std::string& name) {
  vtkSmartPointer<vtkPolyData> poly = to_vtk_polydata(mesh, name);
  write_file_atomic(path, [&](const std::string& tmp) {
    vtkNew<vtkXMLPolyDataWriter> w;
    w->SetFileName(tmp.c_str());
    w->SetInputData(poly);
    w->SetDataModeToAppended();
    w->EncodeAppendedDataOff();
    w->SetCompressorTypeToZLib();
    if (w->Write() != 1 || w->GetErrorCode() != 0) {
      throw Error(ExitCode::kOutput, "cannot write mesh " + path);
    }
  });
}

void write_stl(const TriangleMesh& mesh, const std::string& path, const std::string& name) {
  vtkSmartPointer<vtkPolyData> poly = to_vtk_polydata(mesh, name);
  write_file_atomic(path, [&](const std::string& tmp) {
    vtkNew<vtkSTLWriter> w;
    w->SetFileName(tmp.c_str());
    w->SetInputData(poly);
    w->SetFileTypeToBinary();
    // 3D Slicer reads this header to tell LPS from RAS coordinates.
    w->SetHeader(("lungvol " + name + " SPACE=LPS units=mm").c_str());
    if (w->Write() != 1 || w->GetErrorCode() != 0) {
      throw Error(ExitCode::kOutput, "cannot write mesh " + path);
    }
  });
}

}  // namespace lungvol::mesh
