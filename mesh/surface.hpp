#pragma once
// Surface meshes of label images (lungs, lesion classes) for viewers and 3D QC. VTK does the
// extraction, smoothing and decimation inside mesh/*.cpp; this header exposes only our types,
// so no other library sees a VTK header.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::mesh {

// A closed triangle surface in patient LPS coordinates (mm). Triangles are wound so that
// their normals point out of the structure (right-hand rule), whatever the image direction.
struct TriangleMesh {
  std::vector<std::array<float, 3>> points;
  std::vector<std::array<std::uint32_t, 3>> triangles;
  bool empty() const { return triangles.empty(); }
};

struct SurfaceOptions {
  // vtkWindowedSincPolyDataFilter: few iterations and a moderate pass band remove the voxel
  // staircase without shrinking the structure (0 iterations: no smoothing).
  int smoothing_iterations = 15;
  double smoothing_pass_band = 0.1;
  // Fraction of triangles to remove (vtkDecimatePro, topology preserved, so small lesion
  // surfaces may keep more; 0: none). Half keeps the shape to well under a voxel and halves
  // file size and render time; vtkQuadricDecimation was 1.7x slower on POPI lungs.
  double decimation = 0.5;
};

// The surface of the voxels of `labels` equal to `value`. The label may touch the image
// border: the surface is closed there (the image is padded with background). An absent
// label gives an empty mesh.
TriangleMesh extract_surface(const LabelImage& labels, std::uint8_t value,
                             const SurfaceOptions& options = {});

// Sum of triangle areas, mm².
double surface_area_mm2(const TriangleMesh& mesh);
// Volume enclosed by a closed, outward-wound surface (divergence theorem), mm³.
double enclosed_volume_mm3(const TriangleMesh& mesh);
// {xmin, xmax, ymin, ymax, zmin, zmax} in LPS mm; zeros for an empty mesh.
std::array<double, 6> mesh_bounds(const TriangleMesh& mesh);

// VTK XML PolyData (binary, zlib-compressed) with field data naming the structure, units and
// coordinate system; binary STL (LPS mm, the convention 3D Slicer assumes for STL). Both
// atomic (temporary name, then rename). Throw Error(kOutput) naming the file.
void write_vtp(const TriangleMesh& mesh, const std::string& path, const std::string& name);
void write_stl(const TriangleMesh& mesh, const std::string& path, const std::string& name);

}  // namespace lungvol::mesh
