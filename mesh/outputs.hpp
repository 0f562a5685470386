#pragma once
// The `analyze --meshes` outputs of one scan: OUTDIR/meshes/{right_lung,left_lung,
// ground_glass,solid}.{vtp,stl} and OUTDIR/qc_3d.png, plus their numbers for metrics.json.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/image.hpp"
#include "mesh/surface.hpp"

namespace lungvol::mesh {

struct SurfaceResult {
  std::string name;        // right_lung, left_lung, ground_glass, solid
  double area_mm2 = 0;     // of the smoothed, decimated surface
  double volume_ml = 0;    // enclosed by it
  std::size_t points = 0, triangles = 0;
  std::string vtp, stl;    // relative to the output folder; empty when the structure is absent
};

struct MeshOutputs {
  std::vector<SurfaceResult> surfaces;
  bool rendered = false;
  std::string render_file;      // relative to the output folder, when rendered
  std::string render_skipped;   // why not, when not rendered
  double mesh_s = 0, render_s = 0;
};

struct MeshOutputOptions {
  SurfaceOptions surface;
  bool render = true;
};

// Meshes of the right and left lung (lung labels) and of the ground-glass and solid lesion
// classes (lesion labels; `lesions` may be empty), written into outdir/meshes/, and the 3D QC
// render outdir/qc_3d.png when a display is available (otherwise skipped, reason recorded).
MeshOutputs write_mesh_outputs(const LabelImage& lungs, const LabelImage& lesions,
                               const std::string& outdir, const MeshOutputOptions& options = {});

// The "meshes" object of metrics.json (see docs/outputs.md).
nlohmann::json mesh_outputs_json(const MeshOutputs& m);

}  // namespace lungvol::mesh
