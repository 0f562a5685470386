#include "mesh/outputs.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "mesh/render.hpp"
#include "report/png.hpp"
#include "report/qc_images.hpp"

namespace lungvol::mesh {
namespace {

struct Structure {
  const char* name;
  bool lesion;  // read from the lesion labels, else the lung labels
  std::uint8_t value;
  report::Rgb colour;  // the 2D QC overlay colour of the same structure
  double opacity;
};

// Lungs see-through so the lesions inside show; lesions opaque.
constexpr Structure kStructures[] = {
    {"right_lung", false, labels::kRightLung, report::kRightLungColour, 0.2},
    {"left_lung", false, labels::kLeftLung, report::kLeftLungColour, 0.2},
    {"ground_glass", true, labels::kGroundGlass, report::kGroundGlassColour, 1.0},
    {"solid", true, labels::kSolid, report::kSolidColour, 1.0},
};

}  // namespace

MeshOutputs write_mesh_outputs(const LabelImage& lungs, const LabelImage& lesions,
                               const std::string& outdir, const MeshOutputOptions& options) {
  if (!lesions.empty() && !lungs.geom.same_grid(lesions.geom)) {
    throw Error(ExitCode::kProcessing, "meshes: lung and lesion label images differ in grid");
  }
  MeshOutputs out;
  Stopwatch sw;
  ensure_directory(outdir + "/meshes");
  std::vector<TriangleMesh> meshes;
  for (const auto& s : kStructures) {
    SurfaceResult r;
    r.name = s.name;
    const LabelImage& src = s.lesion ? lesions : lungs;
    TriangleMesh m = src.empty() ? TriangleMesh{} : extract_surface(src, s.value, options.surface);
    if (!m.empty()) {
      r.area_mm2 = surface_area_mm2(m);
      r.volume_ml = enclosed_volume_mm3(m) / 1000.0;
      r.points = m.points.size();
      r.triangles = m.triangles.size();
      r.vtp = std::string("meshes/") + s.name + ".vtp";
      r.stl = std::string("meshes/") + s.name + ".stl";
      Stopwatch write;
      write_vtp(m, outdir + "/" + r.vtp, s.name);
      write_stl(m, outdir + "/" + r.stl, s.name);
      log::debug("mesh {}: wrote .vtp and .stl in {:.2f} s", s.name, write.seconds());
    }
    out.surfaces.push_back(r);
    meshes.push_back(std::move(m));
  }
  out.mesh_s = sw.lap();

  if (!options.render) {
    out.render_skipped = "render not requested";
    return out;
  }
  const RenderAvailability av = render_availability();
  if (!av.available) {
    out.render_skipped = av.reason;
    log::warn("3D QC render skipped: {}", av.reason);
    return out;
  }
  std::vector<RenderItem> items;
  for (std::size_t n = 0; n < meshes.size(); ++n) {
    items.push_back({&meshes[n], kStructures[n].colour, kStructures[n].opacity});
  }
  try {
    report::write_png(outdir + "/qc_3d.png", render_meshes(items));
  } catch (const Error& e) {
    if (e.code() == ExitCode::kOutput) throw;  // disk full, no permission: a real failure
    // The display went away after the probe: the picture is optional, the meshes are not.
    out.render_skipped = e.what();
    log::warn("3D QC render skipped: {}", e.what());
    return out;
  }
  out.rendered = true;
  out.render_file = "qc_3d.png";
  out.render_s = sw.lap();
  return out;
}

nlohmann::json mesh_outputs_json(const MeshOutputs& m) {
  nlohmann::json surfaces = nlohmann::json::object();
  for (const auto& s : m.surfaces) {
    const auto file = [](const std::string& f) { return f.empty() ? nlohmann::json() : nlohmann::json(f); };
    surfaces[s.name] = {{"area_mm2", s.area_mm2}, {"volume_ml", s.volume_ml},
                        {"points", s.points},     {"triangles", s.triangles},
                        {"vtp", file(s.vtp)},     {"stl", file(s.stl)}};
  }
  return {{"coordinate_system", "LPS"},
          {"units", "mm"},
          {"surfaces", surfaces},
          {"render",
           {{"file", m.rendered ? nlohmann::json(m.render_file) : nlohmann::json()},
            {"skipped", m.rendered ? nlohmann::json() : nlohmann::json(m.render_skipped)}}},
          {"timing_s", {{"meshes", m.mesh_s}, {"render", m.render_s}}}};
}

}  // namespace lungvol::mesh
