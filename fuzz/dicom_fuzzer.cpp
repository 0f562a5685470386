// libFuzzer harness over DICOM reading: header parsing, discovery (skip rules, grouping,
// geometric ordering, gap/shear checks) and pixel decoding, i.e. everything io::load_ct does
// with bytes from disk. The input is split on the marker "LVSPLIT!" into up to 8 files of one
// folder, so that mutated multi-slice series reach series assembly. io reads only paths,
// hence the temporary folder.
//
// Any lungvol::Error or std::exception is a correct refusal; a crash, sanitizer report,
// timeout or out-of-memory is a bug (scripts/fuzz.sh, docs/reliability.md).
#include <omp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/log.hpp"
#include "io/series.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSplit = "LVSPLIT!";
constexpr std::size_t kMaxFiles = 8;

const std::string& work_dir() {
  static const std::string dir = [] {
    const fs::path p = fs::temp_directory_path() / ("lungvol_fuzz_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p.string();
  }();
  return dir;
}

void write_bytes(const std::string& path, const std::uint8_t* data, std::size_t size) {
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  omp_set_num_threads(1);  // deterministic, and the fuzzer is single-threaded anyway
  lungvol::log::set_level(lungvol::log::level_from_string("off"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& dir = work_dir();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove(e.path(), ec);

  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::size_t begin = 0, n = 0;
  while (n < kMaxFiles) {
    std::size_t end = all.find(kSplit, begin);
    const bool last = end == std::string_view::npos || n + 1 == kMaxFiles;
    if (last) end = size;
    write_bytes(dir + "/slice" + std::to_string(n) + ".dcm", data + begin, end - begin);
    ++n;
    if (last) break;
    begin = end + kSplit.size();
  }

  try {
    const lungvol::io::LoadedCt ct = lungvol::io::load_ct(dir);
    // Touch the result so a bogus geometry cannot hide behind dead-code elimination.
    volatile std::size_t voxels = ct.image.data.size();
    (void)voxels;
  } catch (const lungvol::Error&) {
  } catch (const std::exception&) {
  }
  return 0;
}
