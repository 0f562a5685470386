#include "registration/transform_io.hpp"

#include <filesystem>
#include <mutex>

#include <itkAffineTransform.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkNiftiImageIO.h>
#include <itkTransformFactory.h>
#include <itkTransformFileReader.h>
#include <itkTransformFileWriter.h>
#include <itkTxtTransformIOFactory.h>
#include <itkVector.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "io/image_io.hpp"

namespace lungvol::registration {
namespace {

using AffineType = itk::AffineTransform<double, 3>;
using FieldImage = itk::Image<itk::Vector<float, 3>, 3>;
using ScalarImage = itk::Image<float, 3>;

template <class Img>
void set_geometry(Img* out, const Geometry& g) {
  typename Img::RegionType region;
  typename Img::SpacingType spacing;
  typename Img::PointType origin;
  typename Img::DirectionType direction;
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

template <class Img>
Geometry geometry_of(const Img* img) {
  Geometry g;
  for (unsigned a = 0; a < 3; ++a) {
    g.size[a] = img->GetLargestPossibleRegion().GetSize()[a];
    g.spacing[a] = img->GetSpacing()[a];
    g.origin[a] = img->GetOrigin()[a];
    for (unsigned c = 0; c < 3; ++c) g.direction[3 * a + c] = img->GetDirection()[a][c];
  }
  return g;
}

void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ExitCode::kInput, std::string(what) + " not found: '" + path + "'");
  }
}

}  // namespace

void register_transform_io() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::TxtTransformIOFactory::RegisterOneFactory();
    itk::TransformFactory<AffineType>::RegisterTransform();
  });
}

void write_affine(const Affine& a, const std::string& path) {
  register_transform_io();
  auto tx = AffineType::New();
  AffineType::MatrixType m;
  AffineType::OutputVectorType t;
  for (unsigned r = 0; r < 3; ++r) {
    for (unsigned c = 0; c < 3; ++c) m[r][c] = a.m[3 * r + c];
    t[r] = a.t[r];
  }
  tx->SetMatrix(m);  // centre (0, 0, 0): translation = offset
  tx->SetTranslation(t);
  write_file_atomic(path, [&](const std::string& tmp) {
    // ITK picks the transform IO by extension; the temporary name keeps it.
    auto writer = itk::TransformFileWriterTemplate<double>::New();
    writer->SetFileName(tmp);
    writer->SetInput(tx);
    try {
      writer->Update();
    } catch (const itk::ExceptionObject& e) {
      throw Error(ExitCode::kOutput, "cannot write '" + path + "': " + e.GetDescription());
    }
  });
}

Affine read_affine(const std::string& path) {
  register_transform_io();
  require_file(path, "affine transform");
  auto reader = itk::TransformFileReaderTemplate<double>::New();
  reader->SetFileName(path);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(ExitCode::kInput, "cannot read transform '" + path + "': " + e.GetDescription());
  }
  const auto* list = reader->GetTransformList();
  if (list->size() != 1) throw Error(ExitCode::kInput, "'" + path + "' holds no single transform");
  const auto* tx = dynamic_cast<const AffineType*>(list->front().GetPointer());
  if (!tx) throw Error(ExitCode::kInput, "'" + path + "' is not an AffineTransform_double_3_3");
  Affine a;
  for (unsigned r = 0; r < 3; ++r) {
    for (unsigned c = 0; c < 3; ++c) a.m[3 * r + c] = tx->GetMatrix()[r][c];
    a.t[r] = tx->GetOffset()[r];
  }
  return a;
}

void write_field(const DisplacementField& f, const std::string& path) {
  auto img = FieldImage::New();
  set_geometry(img.GetPointer(), f.geometry());
  img->Allocate();
  auto* dst = img->GetBufferPointer();
  const float* src = f.data();
  for (std::size_t q = 0; q < f.voxel_count(); ++q) {
    for (unsigned c = 0; c < 3; ++c) dst[q][c] = src[3 * q + c];
  }
  // A .nii.gz is written as .nii by ITK and gzipped at level 1 (io::gzip_file): ITK's own gzip of
  // the two float fields took a tenth of a registration's CPU time.
  const bool nii_gz = path.size() > 7 && path.compare(path.size() - 7, 7, ".nii.gz") == 0;
  write_file_atomic(path, [&](const std::string& tmp) {
    const std::string itk_path = nii_gz ? tmp.substr(0, tmp.size() - 3) : tmp;
    auto writer = itk::ImageFileWriter<FieldImage>::New();
    writer->SetImageIO(itk::NiftiImageIO::New());
    writer->SetFileName(itk_path);
    writer->SetInput(img);
    writer->SetUseCompression(!nii_gz);
    try {
      writer->Update();
      if (nii_gz) io::gzip_file(itk_path, tmp, path);
    } catch (const itk::ExceptionObject& e) {
      std::error_code ec;
      if (nii_gz) std::filesystem::remove(itk_path, ec);
      throw Error(ExitCode::kOutput, "cannot write '" + path + "': " + e.GetDescription());
    } catch (...) {
      std::error_code ec;
      if (nii_gz) std::filesystem::remove(itk_path, ec);
      throw;
    }
    if (nii_gz) std::filesystem::remove(itk_path);
  });
}

DisplacementField read_field(const std::string& path) {
  require_file(path, "displacement field");
  auto reader = itk::ImageFileReader<FieldImage>::New();
  reader->SetImageIO(itk::NiftiImageIO::New());
  reader->SetFileName(path);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(ExitCode::kInput, "cannot read displacement field '" + path + "': " + e.GetDescription());
  }
  const FieldImage* img = reader->GetOutput();
  DisplacementField f(geometry_of(img));
  const auto* src = img->GetBufferPointer();
  float* dst = f.data();
  for (std::size_t q = 0; q < f.voxel_count(); ++q) {
    for (unsigned c = 0; c < 3; ++c) dst[3 * q + c] = src[q][c];
  }
  return f;
}

void write_float_image(const FloatImage& im, const std::string& path) {
  auto img = ScalarImage::New();
  set_geometry(img.GetPointer(), im.geom);
  img->GetPixelContainer()->SetImportPointer(const_cast<float*>(im.data.data()), im.data.size(),
                                             false);
  write_file_atomic(path, [&](const std::string& tmp) {
    auto writer = itk::ImageFileWriter<ScalarImage>::New();
    writer->SetImageIO(itk::NiftiImageIO::New());
    writer->SetFileName(tmp);
    writer->SetInput(img);
    writer->SetUseCompression(true);
    try {
      writer->Update();
    } catch (const itk::ExceptionObject& e) {
      throw Error(ExitCode::kOutput, "cannot write '" + path + "': " + e.GetDescription());
    }
  });
}

}  // namespace lungvol::registration
