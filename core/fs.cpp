#include "core/fs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
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

namespace {

constexpr const char* kTempTag = ".lungvol-tmp-";

// ".<name>.lungvol-tmp-<pid>-<n>": the pid of a temporary folder, 0 when not one of ours.
long temp_owner(const std::string& entry, const std::string& name) {
  const std::string prefix = "." + name + kTempTag;
  if (entry.compare(0, prefix.size(), prefix) != 0) return 0;
  const std::string rest = entry.substr(prefix.size());
  const auto dash = rest.find('-');
  const std::string pid = rest.substr(0, dash);
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stol(pid);
}

}  // namespace

StagedDirectory::StagedDirectory(const std::string& final_dir,
                                 const std::function<bool(const std::string&)>& replaceable) {
  static std::atomic<unsigned> counter{0};
  fs::path final_path = fs::absolute(final_dir).lexically_normal();
  if (!final_path.has_filename()) final_path = final_path.parent_path();  // trailing '/'
  std::error_code link_ec;
  if (fs::is_symlink(final_path, link_ec)) {
    // A link to the output folder: the folder it points to is replaced, the link stays.
    const fs::path target = fs::canonical(final_path, link_ec);
    if (!link_ec) final_path = target;
  }
  final_ = final_path.string();
  const std::string name = final_path.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw Error(ExitCode::kOutput, "cannot use '" + final_dir + "' as an output folder");
  }
  std::error_code ec;
  const auto st = fs::status(final_path, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) {
      throw Error(ExitCode::kOutput,
                  "output folder '" + final_dir + "' exists and is not a folder");
    }
    if (::access(final_.c_str(), W_OK) != 0) {
      throw Error(ExitCode::kOutput, "output directory '" + final_dir + "' is not writable");
    }
    std::vector<std::string> foreign;
    for (const auto& e : fs::directory_iterator(final_path, ec)) {
      const std::string entry = e.path().filename().string();
      if (!replaceable(entry)) foreign.push_back(entry);
    }
    if (ec) {
      throw Error(ExitCode::kOutput, "cannot list output folder '" + final_dir + "': " + ec.message());
    }
    if (!foreign.empty()) {
      std::sort(foreign.begin(), foreign.end());
      std::string list;
      for (std::size_t i = 0; i < foreign.size() && i < 5; ++i) {
        list += (i ? ", " : "") + ("'" + foreign[i] + "'");
      }
      if (foreign.size() > 5) list += ", ... (" + std::to_string(foreign.size()) + " in all)";
      throw Error(ExitCode::kOutput,
                  "output folder '" + final_dir + "' is not empty and holds entries lungvol did "
                  "not write (" + list + "); lungvol replaces an existing output folder only "
                  "when it is empty or holds an earlier lungvol output. Choose a new or empty "
                  "folder");
    }
    existed_ = true;
  }
  // The parents, remembering which ones this object creates (removed again on failure).
  std::vector<fs::path> missing;
  for (fs::path p = final_path.parent_path(); !p.empty() && !fs::exists(p, ec);
       p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.root_path()) break;
  }
  const fs::path parent = final_path.parent_path();
  // Temporary folders left by processes that were killed (kill -9, power loss).
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const long pid = temp_owner(e.path().filename().string(), name);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code rm;
      fs::remove_all(e.path(), rm);
    }
  }
  ec.clear();
  for (int attempt = 0;; ++attempt) {
    fs::create_directories(parent, ec);
    if (ec || !fs::is_directory(parent)) {
      throw Error(ExitCode::kOutput, "cannot create output directory '" + final_dir + "'" +
                                         (ec ? ": " + ec.message() : std::string{}));
    }
    temp_ = (parent / ("." + name + kTempTag + std::to_string(::getpid()) + "-" +
                       std::to_string(counter++)))
                .string();
    if (::mkdir(temp_.c_str(), 0755) == 0) break;
    const int err = errno;
    // A parallel job may have removed an empty parent between the two calls: try again.
    if (err == ENOENT && attempt < 5) continue;
    temp_.clear();
    throw Error(ExitCode::kOutput, "cannot create output directory '" + final_dir + "': " +
                                       std::strerror(err));
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) created_parents_.push_back(it->string());
}

StagedDirectory::~StagedDirectory() { discard(); }

void StagedDirectory::discard() {
  if (done_) return;
  done_ = true;
  std::error_code ec;
  if (!temp_.empty()) fs::remove_all(temp_, ec);
  // Parents this object created, deepest first; rmdir leaves a folder someone else now uses.
  for (auto it = created_parents_.rbegin(); it != created_parents_.rend(); ++it) {
    if (::rmdir(it->c_str()) != 0) break;
  }
}

void StagedDirectory::commit() {
  if (done_) throw Error(ExitCode::kOutput, "output folder '" + final_ + "' already committed");
  std::error_code ec;
  if (::rename(temp_.c_str(), final_.c_str()) == 0) {
    done_ = true;  // there was no folder (or an empty one, which rename(2) replaces)
    return;
  }
  // The folder exists and is not empty: exchange the two atomically, then remove the old one.
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP) {
      throw Error(ExitCode::kOutput, "cannot replace output folder '" + final_ + "': " +
                                         std::strerror(err));
    }
    // No exchange on this file system (e.g. NFS): move the old folder aside, then rename.
    const std::string old = temp_ + ".old";
    if (::rename(final_.c_str(), old.c_str()) != 0 || ::rename(temp_.c_str(), final_.c_str()) != 0) {
      const int err2 = errno;
      throw Error(ExitCode::kOutput, "cannot replace output folder '" + final_ + "': " +
                                         std::strerror(err2));
    }
    fs::remove_all(old, ec);
    done_ = true;
    return;
  }
  fs::remove_all(temp_, ec);  // now the earlier run's files
  done_ = true;
}

std::string StagedDirectory::with_final_path(const std::string& message) const {
  if (temp_.empty()) return message;
  std::string out = message;
  for (std::size_t at = out.find(temp_); at != std::string::npos;
       at = out.find(temp_, at + final_.size())) {
    out.replace(at, temp_.size(), final_);
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ExitCode::kInput, "cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace lungvol
