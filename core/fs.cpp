#include "core/fs.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace lungvol {
namespace {
std::string temp_name_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const fs::path p(path);
  // Keep the extension last so writers that pick a format by extension still work.
  std::string stem = p.filename().string();
  std::string ext;
  for (const char* e : {".nii.gz", ".tar.gz"}) {
    const std::string es(e);
    if (stem.size() > es.size() && stem.compare(stem.size() - es.size(), es.size(), es) == 0) {
      ext = es;
      break;
    }
  }
  if (ext.empty()) ext = p.extension().string();
  stem = stem.substr(0, stem.size() - ext.size());
  const std::string tmp = "." + stem + ".tmp" + std::to_string(::getpid()) + "_" +
                          std::to_string(counter++) + ext;
  return (p.parent_path() / tmp).string();
}

void commit(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(ExitCode::kOutput, "cannot write '" + path + "': " + ec.message());
  }
}
}  // namespace

void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string&)>& write) {
  const std::string tmp = temp_name_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  commit(tmp, path);
}

void write_stream_atomic(const std::string& path,
                         const std::function<void(std::ostream&)>& write) {
  write_file_atomic(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ExitCode::kOutput, "cannot create '" + tmp + "'");
    write(out);
    out.flush();
    if (!out) throw Error(ExitCode::kOutput, "write failed for '" + path + "' (disk full?)");
  });
}

void write_text_atomic(const std::string& path, const std::string& content) {
  write_stream_atomic(path, [&](std::ostream& out) { out << content; });
}

void ensure_directory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(ExitCode::kOutput, "cannot create output directory '" + dir + "'" +
                                       (ec ? ": " + ec.message() : std::string{}));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw Error(ExitCode::kOutput, "output directory '" + dir + "' is not writable");
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ExitCode::kInput, "cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace lungvol
