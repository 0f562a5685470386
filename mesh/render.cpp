#include "mesh/render.hpp"

#include <vtkActor.h>
#include <vtkAutoInit.h>
#include <vtkCamera.h>
#include <vtkImageData.h>
#include <vtkNew.h>
#include <vtkPolyDataMapper.h>
#include <vtkPolyDataNormals.h>
#include <vtkProperty.h>
#include <vtkRenderWindow.h>
#include <vtkRenderer.h>
#include <vtkRenderingOpenGLConfigure.h>
#include <vtkWindowToImageFilter.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.hpp"
#include "mesh/vtk_convert.hpp"

#if defined(VTK_USE_X) && !defined(VTK_OPENGL_HAS_EGL) && !defined(VTK_OPENGL_HAS_OSMESA) && \
    !defined(VTK_DEFAULT_RENDER_WINDOW_OFFSCREEN)
#define LUNGVOL_VTK_NEEDS_X 1
#include <X11/Xlib.h>
#endif

// The object factory maps vtkRenderWindow & co. to their OpenGL implementations.
VTK_MODULE_INIT(vtkRenderingOpenGL2)

namespace lungvol::mesh {
namespace {

// Batch jobs are threads of one process: Xlib (without XInitThreads) and GLX context
// creation are not safe to run side by side, so every X/GL call happens under this lock.
// A render takes well under a second; the meshing itself runs in parallel.
std::mutex& gl_mutex() {
  static std::mutex m;
  return m;
}

// VTK's X render window aborts the process when it cannot open the display itself, so it is
// always handed a connection we opened and checked. One connection for the whole process,
// never closed: an X server resets when its last client disconnects, and a render that
// reconnects during that reset (seen with Xvfb under load) is refused.
class XConnection {
 public:
  // Call with gl_mutex() held.
  static const XConnection& shared() {
    static const XConnection x;
    return x;
  }
  const std::string& error() const { return error_; }
  void attach(vtkRenderWindow* win) const {
#ifdef LUNGVOL_VTK_NEEDS_X
    win->SetDisplayId(display_);
#else
    (void)win;
#endif
  }

 private:
  XConnection() {
#ifdef LUNGVOL_VTK_NEEDS_X
    const char* name = std::getenv("DISPLAY");
    if (!name || !*name) {
      error_ = "no DISPLAY and this VTK has no off-screen backend (X11/GLX only); run under "
               "xvfb-run -a";
      return;
    }
    display_ = XOpenDisplay(nullptr);
    if (!display_) error_ = std::string("cannot open X display '") + name + "'";
#endif
  }
#ifdef LUNGVOL_VTK_NEEDS_X
  Display* display_ = nullptr;
#endif
  std::string error_;
};

RenderAvailability probe() {
  const XConnection& x = XConnection::shared();
  if (!x.error().empty()) return {false, x.error()};
  vtkNew<vtkRenderWindow> win;
  x.attach(win);
  win->SetOffScreenRendering(1);
  if (!win->SupportsOpenGL()) return {false, "no OpenGL 3.2 context on this display"};
  return {true, ""};
}

}  // namespace

RenderAvailability render_availability() {
  // One probe per process: creating a context is not free and the answer does not change.
  static std::once_flag once;
  static RenderAvailability cached;
  std::call_once(once, [] {
    const std::lock_guard<std::mutex> lock(gl_mutex());
    cached = probe();
  });
  return cached;
}

report::Raster render_meshes(const std::vector<RenderItem>& items, const RenderOptions& options) {
  const RenderAvailability av = render_availability();
  if (!av.available) throw Error(ExitCode::kProcessing, "3D render not available: " + av.reason);

  const std::lock_guard<std::mutex> lock(gl_mutex());
  const XConnection& x = XConnection::shared();
  vtkNew<vtkRenderer> renderer;
  const auto& bg = options.background;
  renderer->SetBackground(bg.r / 255.0, bg.g / 255.0, bg.b / 255.0);
  std::size_t drawn = 0;
  for (const auto& item : items) {
    if (!item.mesh || item.mesh->empty()) continue;
    vtkNew<vtkPolyDataNormals> normals;  // smooth shading of the decimated surface
    normals->SetInputData(to_vtk_polydata(*item.mesh, ""));
    normals->SplittingOff();
    normals->ConsistencyOff();  // our triangles are already consistently wound
    vtkNew<vtkPolyDataMapper> mapper;
    mapper->SetInputConnection(normals->GetOutputPort());
    mapper->ScalarVisibilityOff();
    vtkNew<vtkActor> actor;
    actor->SetMapper(mapper);
    actor->GetProperty()->SetColor(item.colour.r / 255.0, item.colour.g / 255.0,
                                   item.colour.b / 255.0);
    actor->GetProperty()->SetOpacity(item.opacity);
    if (item.opacity < 1) actor->GetProperty()->SetSpecular(0.0);
    renderer->AddActor(actor);
    ++drawn;
  }

  // Anterior view in LPS: the camera sits at -Y (in front of the patient) looking +Y with
  // +Z (head) up, so +X (patient's left) falls on the picture's right.
  vtkCamera* cam = renderer->GetActiveCamera();
  cam->ParallelProjectionOn();
  cam->SetFocalPoint(0, 0, 0);
  cam->SetPosition(0, -1, 0);
  cam->SetViewUp(0, 0, 1);
  if (drawn) {
    renderer->ResetCamera();  // keeps the direction; centres on the bounds
    // ResetCamera fits the bounding sphere, which leaves a wide margin: fit the projected
    // box instead (X across, Z up), with 5 % to spare.
    double b[6];
    renderer->ComputeVisiblePropBounds(b);
    const double aspect = double(options.width) / double(options.height);
    cam->SetParallelScale(1.05 * std::max(0.5 * (b[5] - b[4]), 0.5 * (b[1] - b[0]) / aspect));
  }
  renderer->ResetCameraClippingRange();

  vtkNew<vtkRenderWindow> win;
  x.attach(win);
  win->SetOffScreenRendering(1);
  win->SetSize(options.width, options.height);
  win->SetMultiSamples(0);
  win->AddRenderer(renderer);
  win->Render();

  vtkNew<vtkWindowToImageFilter> grab;
  grab->SetInput(win);
  grab->SetInputBufferTypeToRGB();
  grab->ReadFrontBufferOff();
  grab->Update();
  vtkImageData* img = grab->GetOutput();
  int dim[3];
  img->GetDimensions(dim);
  if (dim[0] <= 0 || dim[1] <= 0 || img->GetNumberOfScalarComponents() != 3) {
    throw Error(ExitCode::kProcessing, "3D render: VTK returned no RGB image");
  }
  report::Raster out{static_cast<std::size_t>(dim[0]), static_cast<std::size_t>(dim[1]), 3};
  const auto* src = static_cast<const std::uint8_t*>(img->GetScalarPointer());
  const std::size_t row = std::size_t(dim[0]) * 3;
  for (std::size_t y = 0; y < out.height; ++y) {  // OpenGL rows run bottom-up
    std::memcpy(out.at(0, y), src + (out.height - 1 - y) * row, row);
  }
  return out;
}

}  // namespace lungvol::mesh
