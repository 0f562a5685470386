#pragma once
// Internal to mesh/*.cpp (the one header here that includes VTK): our mesh as vtkPolyData.
#include <vtkPolyData.h>
#include <vtkSmartPointer.h>

#include <string>

#include "mesh/surface.hpp"

namespace lungvol::mesh {

// Points (float, LPS mm), triangles, and field data: structure = name, coordinate_system =
// LPS, units = mm.
vtkSmartPointer<vtkPolyData> to_vtk_polydata(const TriangleMesh& mesh, const std::string& name);

}  // namespace lungvol::mesh
