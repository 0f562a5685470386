#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "io/image_io.hpp"
#include "phantom/phantom.hpp"

namespace lungvol::phantom {

void write_phantom(const Phantom& phantom, const std::string& dir, const io::CtSeriesMeta& meta) {
  ensure_directory(dir);
  const std::filesystem::path root(dir);
  io::write_ct_series(phantom.ct, (root / "dicom").string(), meta);
  io::write_label_image(phantom.lungs, (root / "truth_lungs.nii.gz").string());
  io::write_label_image(phantom.lesions, (root / "truth_lesions.nii.gz").string());
  write_text_atomic((root / "truth.json").string(), phantom.truth.dump(2) + "\n");
}

}  // namespace lungvol::phantom
