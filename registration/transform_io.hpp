#pragma once
// Transform files, readable by ITK, ANTs and 3D Slicer as they are (docs/outputs.md,
// "Registration"):
//   affine.tfm          ITK text transform (AffineTransform_double_3_3), baseline -> follow-up
//                       points (LPS mm);
//   deformation.nii.gz  displacement field d on the baseline registration grid (vector NIfTI,
//                       float, LPS mm components, ITK convention);
//   the full map is y = affine(x + d(x)): an ITK CompositeTransform [affine, deformation], or
//   `antsApplyTransforms -t affine.tfm -t deformation.nii.gz`;
//   inverse.nii.gz      follow-up -> baseline as one total displacement field (x = y + v(y)) on
//                       a follow-up grid.
// Writers are atomic (temporary name, then rename).
#include <string>

#include "registration/field.hpp"

namespace lungvol::registration {

void write_affine(const Affine& a, const std::string& path);
Affine read_affine(const std::string& path);  // Error(kInput) when missing or not affine
void write_field(const DisplacementField& f, const std::string& path);
DisplacementField read_field(const std::string& path);  // Error(kInput)
// Float images (the Jacobian determinant map), for inspection.
void write_float_image(const FloatImage& img, const std::string& path);

// ITK's transform and image IO factories used here, registered once (call before running
// registrations from several threads).
void register_transform_io();

}  // namespace lungvol::registration
