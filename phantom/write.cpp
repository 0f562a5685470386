#include <cctype>
#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "io/image_io.hpp"
#include "phantom/phantom.hpp"

namespace fs = std::filesystem;

namespace lungvol::phantom {
namespace {

// Slices of an earlier phantom in the same folder would join (or confuse) the new series.
void remove_previous_slices(const fs::path& dicom_dir, const std::string& prefix) {
  std::error_code ec;
  if (!fs::is_directory(dicom_dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dicom_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    bool digits = true;
    for (std::size_t n = prefix.size(); n < name.size(); ++n) {
      digits = digits && std::isdigit(static_cast<unsigned char>(name[n]));
    }
    if (!digits || !e.is_regular_file()) continue;
    if (!fs::remove(e.path(), ec) || ec) {
      throw Error(ExitCode::kOutput,
                  "cannot remove the old slice '" + e.path().string() + "': " + ec.message());
    }
  }
}

}  // namespace

void write_phantom(const Phantom& phantom, const std::string& dir, const io::CtSeriesMeta& meta) {
  ensure_directory(dir);
  const fs::path root(dir);
  remove_previous_slices(root / "dicom", meta.file_prefix);
  io::write_ct_series(phantom.ct, (root / "dicom").string(), meta);
  io::write_label_image(phantom.lungs, (root / "truth_lungs.nii.gz").string());
  io::write_label_image(phantom.lesions, (root / "truth_lesions.nii.gz").string());
  write_text_atomic((root / "truth.json").string(), phantom.truth.dump(2) + "\n");
}

}  // namespace lungvol::phantom
