#pragma once
// Off-screen 3D QC render of surface meshes. Debian 12's VTK 9.1 is built for X11/GLX only
// (no EGL, no OSMesa), so an off-screen window still needs an X server: a real DISPLAY or
// Xvfb (`xvfb-run -a lungvol ...`). Without one the render is skipped, never a crash.
#include <string>
#include <vector>

#include "mesh/surface.hpp"
#include "report/png.hpp"
#include "report/qc_images.hpp"

namespace lungvol::mesh {

struct RenderAvailability {
  bool available = false;
  std::string reason;  // why not, when not available
};
// Checks for an OpenGL-capable display (or a display-less VTK backend) without letting VTK
// abort on a missing X server. Probed once per process (a throw-away GL context); the X
// connection it opens stays open for the renders.
RenderAvailability render_availability();

struct RenderItem {
  const TriangleMesh* mesh = nullptr;
  report::Rgb colour{255, 255, 255};
  double opacity = 1.0;
};

struct RenderOptions {
  int width = 640;
  int height = 640;
  report::Rgb background{20, 20, 28};
};

// A fixed anterior view (camera in front of the patient, head up, patient's right on the
// picture's left as in the coronal QC image), parallel projection fitted to all meshes.
// Throws Error(kProcessing) when render_availability() is false.
report::Raster render_meshes(const std::vector<RenderItem>& items, const RenderOptions& options = {});

}  // namespace lungvol::mesh
