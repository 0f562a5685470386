#include "io/itk_factories.hpp"

#include <mutex>

#include <itkGDCMImageIOFactory.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkNiftiImageIO.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>
#include <itkPNGImageIOFactory.h>

namespace lungvol::io {

void register_itk_factories() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    itk::GDCMImageIOFactory::RegisterOneFactory();
    itk::PNGImageIOFactory::RegisterOneFactory();
    // ITK 5.2 fills process-wide singleton maps the first time a reader, writer or image IO is
    // made, without a lock; analyze writes its two label maps from two threads at once. Make
    // one of each here, under the once-flag (a crash found by helgrind and a batch core dump).
    (void)itk::ImageFileWriter<itk::Image<unsigned char, 3>>::New();
    (void)itk::ImageFileReader<itk::Image<float, 3>>::New();
    (void)itk::NiftiImageIO::New();
  });
}

}  // namespace lungvol::io
