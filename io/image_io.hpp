#pragma once
// NIfTI / NRRD / MHA through ITK. Writers are atomic (temporary name, then rename).
#include <string>

#include "core/image.hpp"

namespace lungvol::io {

bool is_image_file(const std::string& path);  // by extension: .nii .nii.gz .nrrd .nhdr .mha .mhd
CtImage read_ct_image(const std::string& path);  // values taken as HU (rounded, clamped to int16)
LabelImage read_label_image(const std::string& path);  // any integer type, values 0..255
void write_ct_image(const CtImage& image, const std::string& path);
void write_label_image(const LabelImage& image, const std::string& path);
// Gzips the file `src` into `dst` at level 1 (ITK 5.2's NIfTI writer gzips at its slow default
// whatever it is asked); `path` names the output in errors. Error(kOutput) on failure.
void gzip_file(const std::string& src, const std::string& dst, const std::string& path);
// ITK's global thread default, set together with OpenMP by --threads.
void set_itk_threads(int threads);

}  // namespace lungvol::io
