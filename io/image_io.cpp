#include "io/image_io.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include <zlib.h>
#include <limits>

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkMetaImageIO.h>
#include <itkMultiThreaderBase.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "io/itk_factories.hpp"

namespace lungvol::io {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(), [](char a, char b) {
    return a == std::tolower(static_cast<unsigned char>(b));
  });
}

template <class ItkImage>
Geometry geometry_of(const ItkImage& img) {
  Geometry g;
  const auto region = img.GetLargestPossibleRegion();
  for (unsigned a = 0; a < 3; ++a) {
    g.size[a] = region.GetSize()[a];
    g.spacing[a] = img.GetSpacing()[a];
    g.origin[a] = img.GetOrigin()[a];
    for (unsigned c = 0; c < 3; ++c) g.direction[3 * a + c] = img.GetDirection()[a][c];
  }
  return g;
}

// Wraps our buffer without copying it; ITK never frees it (the Image outlives the writer).
template <class T>
typename itk::Image<T, 3>::Pointer wrap(const Image<T>& image) {
  using ItkImage = itk::Image<T, 3>;
  auto out = ItkImage::New();
  typename ItkImage::RegionType region;
  typename ItkImage::SpacingType spacing;
  typename ItkImage::PointType origin;
  typename ItkImage::DirectionType direction;
  for (unsigned a = 0; a < 3; ++a) {
    region.SetSize(a, image.geom.size[a]);
    spacing[a] = image.geom.spacing[a];
    origin[a] = image.geom.origin[a];
    for (unsigned c = 0; c < 3; ++c) direction[a][c] = image.geom.direction[3 * a + c];
  }
  out->SetRegions(region);
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->GetPixelContainer()->SetImportPointer(const_cast<T*>(image.data.data()),
                                             image.data.size(), false);
  return out;
}

template <class T>
typename itk::Image<T, 3>::Pointer read_itk(const std::string& path) {
  register_itk_factories();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw Error(ExitCode::kInput, "image file not found: '" + path + "'");
  }
  auto reader = itk::ImageFileReader<itk::Image<T, 3>>::New();
  reader->SetFileName(path);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(ExitCode::kInput,
                "cannot read image '" + path + "': " + std::string(e.GetDescription()));
  }
  return reader->GetOutput();
}

}  // namespace

// ITK 5.2's NIfTI writer ignores the compression level and gzips slowly; .nii.gz is written
// as .nii by ITK and gzipped here at level 1 (3x faster, files a few % larger).
void gzip_file(const std::string& src, const std::string& dst, const std::string& path) {
  std::ifstream in(src, std::ios::binary);
  gzFile out = gzopen(dst.c_str(), "wb1");
  if (!in || !out) {
    if (out) gzclose(out);
    throw Error(ExitCode::kOutput, "cannot write image '" + path + "'");
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  while (ok && in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<unsigned>(in.gcount());
    if (got > 0 && gzwrite(out, buf.data(), got) != static_cast<int>(got)) ok = false;
  }
  if (gzclose(out) != Z_OK || !ok) {
    throw Error(ExitCode::kOutput, "cannot write image '" + path + "' (disk full?)");
  }
}

namespace {

template <class T>
void write_itk(const Image<T>& image, const std::string& path) {
  register_itk_factories();
  if (image.data.size() != image.geom.voxel_count() || image.data.empty()) {
    throw Error(ExitCode::kOutput, "cannot write '" + path + "': image buffer does not match its size");
  }
  auto itk_image = wrap(image);
  const bool nii_gz = ends_with(path, ".nii.gz");
  write_file_atomic(path, [&](const std::string& tmp) {
    const std::string itk_path = nii_gz ? tmp.substr(0, tmp.size() - 3) : tmp;
    auto writer = itk::ImageFileWriter<itk::Image<T, 3>>::New();
    // Name the ImageIO ourselves: asking the factories lets another IO probe (and delete) the
    // temporary file first.
    if (ends_with(path, ".nii") || nii_gz) {
      writer->SetImageIO(itk::NiftiImageIO::New());
    } else if (ends_with(path, ".nrrd") || ends_with(path, ".nhdr")) {
      writer->SetImageIO(itk::NrrdImageIO::New());
    } else {
      writer->SetImageIO(itk::MetaImageIO::New());
    }
    writer->SetFileName(itk_path);
    writer->SetInput(itk_image);
    writer->SetUseCompression(!nii_gz);
    try {
      writer->Update();
      if (nii_gz) gzip_file(itk_path, tmp, path);
    } catch (const itk::ExceptionObject& e) {
      if (nii_gz) std::filesystem::remove(itk_path);
      throw Error(ExitCode::kOutput,
                  "cannot write image '" + path + "': " + std::string(e.GetDescription()));
    } catch (...) {
      std::error_code ec;
      if (nii_gz) std::filesystem::remove(itk_path, ec);
      throw;
    }
    if (nii_gz) std::filesystem::remove(itk_path);
  });
}

}  // namespace

bool is_image_file(const std::string& path) {
  for (const char* ext : {".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"}) {
    if (ends_with(path, ext)) return true;
  }
  return false;
}

CtImage read_ct_image(const std::string& path) {
  // float holds every int16 exactly and lets ITK apply NIfTI scl_slope/scl_inter.
  auto src = read_itk<float>(path);
  CtImage out(geometry_of(*src));
  const float* p = src->GetBufferPointer();
  const auto n = static_cast<std::ptrdiff_t>(out.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t v = 0; v < n; ++v) {
    const float x = std::isfinite(p[v]) ? std::nearbyint(p[v]) : -1024.0f;
    out.data[v] = static_cast<std::int16_t>(std::clamp(x, -32768.0f, 32767.0f));
  }
  return out;
}

LabelImage read_label_image(const std::string& path) {
  auto src = read_itk<double>(path);
  LabelImage out(geometry_of(*src));
  const double* p = src->GetBufferPointer();
  const auto n = static_cast<std::ptrdiff_t>(out.size());
  bool bad = false;
#pragma omp parallel for schedule(static) reduction(|| : bad)
  for (std::ptrdiff_t v = 0; v < n; ++v) {
    const double x = p[v];
    if (!(x >= 0 && x <= 255 && x == std::floor(x))) {
      bad = true;
      continue;
    }
    out.data[v] = static_cast<std::uint8_t>(x);
  }
  if (bad) {
    throw Error(ExitCode::kInput,
                "label image '" + path + "' holds values that are not integers in 0..255");
  }
  return out;
}

void write_ct_image(const CtImage& image, const std::string& path) { write_itk(image, path); }

void write_label_image(const LabelImage& image, const std::string& path) {
  write_itk(image, path);
}

void set_itk_threads(int threads) {
  if (threads > 0) itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(threads);
}

}  // namespace lungvol::io
