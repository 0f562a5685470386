// Fuzz build only: Debian's ITK 5.2 headers refuse clang ("Unsupported compiler"), so the
// harness is built from io's DCMTK/GDCM sources alone and the ITK image-file readers are
// replaced by this stub. The fuzz inputs are named *.dcm, never image files.
#include "core/error.hpp"
#include "io/image_io.hpp"

namespace lungvol::io {

bool is_image_file(const std::string&) { return false; }

CtImage read_ct_image(const std::string& path) {
  throw Error(ExitCode::kInput, "fuzz build has no ITK image reader: '" + path + "'");
}

}  // namespace lungvol::io
