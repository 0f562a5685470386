#include "io/itk_factories.hpp"

#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <string>

#include <itkGDCMImageIOFactory.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIO.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>
#include <itkPNGImageIOFactory.h>

#include "core/log.hpp"

namespace lungvol::io {
namespace {

// ITK 5.2 builds process-wide singletons lazily and without a lock: itk::SingletonIndex is a
// plain std::map that ThreadPool, DataObject, the object factories ... insert into on first
// use. analyze writes its two label maps from two threads at once, and batch runs several
// analyses side by side; helgrind showed two threads inserting into the map at once, and a
// batch core dump crashed there. A tiny NIfTI written and read back through a real pipeline
// (Update() on a writer and a reader) creates all of them here, under the once-flag. The file
// goes to the temporary folder, so a killed run never leaves it in an output folder.
void create_itk_singletons() {
  using Small = itk::Image<unsigned char, 3>;
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) return;
  const std::string path =
      (dir / ("lungvol-itk-warmup-" + std::to_string(::getpid()) + ".nii")).string();
  try {
    auto image = Small::New();
    Small::SizeType size;
    size.Fill(2);
    image->SetRegions(Small::RegionType(size));
    image->Allocate(true);
    auto writer = itk::ImageFileWriter<Small>::New();
    writer->SetImageIO(itk::NiftiImageIO::New());
    writer->SetFileName(path);
    writer->SetInput(image);
    writer->Update();
    auto reader = itk::ImageFileReader<Small>::New();
    reader->SetFileName(path);
    reader->Update();
  } catch (const std::exception& e) {
    // Not fatal: the singletons then come into being at the first real read or write.
    log::debug("ITK warm-up in {} failed ({}); continuing", dir.string(), e.what());
  }
  std::filesystem::remove(path, ec);
}

}  // namespace

void register_itk_factories() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    itk::GDCMImageIOFactory::RegisterOneFactory();
    itk::PNGImageIOFactory::RegisterOneFactory();
    create_itk_singletons();
  });
}

}  // namespace lungvol::io
