#include "tests/faults/fault_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcdatset.h>

#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("test setup: cannot write " + path);
}

void truncate_file(const std::string& path, std::size_t size) { fs::resize_file(path, size); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Result lungvol(const std::string& args, const std::string& prefix) {
  static int counter = 0;
  const std::string log = test::temp_dir("fault_log") + "/run" + std::to_string(counter++) + ".log";
  Result r;
  // --log-level warn keeps the message of interest visible and the log small.
  r.code = test::run_command(prefix + " '" + test::lungvol_binary() + "' --threads 1 " + args, log);
  r.output = read_file(log);
  return r;
}

std::string phantom_series(const std::string& tag) {
  static std::once_flag once;
  static std::string master;
  std::call_once(once, [] {
    master = test::temp_dir("fault_phantom");
    const int rc = test::run_command("'" + test::lungvol_binary() + "' phantom -o '" + master +
                                         "' --size 64,64," + std::to_string(kPhantomSlices) +
                                         " --spacing 2.7,2.7,6.5 --seed 1",
                                     master + ".log");
    if (rc != 0) throw std::runtime_error("test setup: lungvol phantom failed, see " + master + ".log");
  });
  const std::string dir = test::temp_dir("fault_" + tag) + "/dicom";
  fs::copy(master + "/dicom", dir, fs::copy_options::recursive);
  return dir;
}

std::vector<std::string> slice_files(const std::string& dicom_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dicom_dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string dicom_string(const std::string& file, unsigned group, unsigned element) {
  DcmFileFormat f;
  if (f.loadFile(file.c_str()).bad()) throw std::runtime_error("test setup: cannot parse " + file);
  OFString s;
  f.getDataset()->findAndGetOFStringArray(DcmTagKey(static_cast<Uint16>(group),
                                                    static_cast<Uint16>(element)),
                                          s);
  return s.c_str();
}

void set_dicom_string(const std::string& file, unsigned group, unsigned element,
                      const std::string& value, bool meta_header) {
  DcmFileFormat f;
  if (f.loadFile(file.c_str()).bad()) throw std::runtime_error("test setup: cannot parse " + file);
  const DcmTagKey key(static_cast<Uint16>(group), static_cast<Uint16>(element));
  DcmItem* item = meta_header ? static_cast<DcmItem*>(f.getMetaInfo()) : f.getDataset();
  if (item->putAndInsertString(key, value.c_str()).bad() ||
      f.saveFile(file.c_str(), EXS_LittleEndianExplicit).bad()) {
    throw std::runtime_error("test setup: cannot modify " + file);
  }
}

std::vector<std::pair<std::string, std::size_t>> list_files(const std::string& dir) {
  std::vector<std::pair<std::string, std::size_t>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out.emplace_back(fs::relative(e.path(), dir).string(), static_cast<std::size_t>(e.file_size()));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string unprivileged_prefix() {
  if (::geteuid() != 0) return " ";  // already an ordinary user: permissions apply
  // setpriv (util-linux) drops to nobody; check that it works and really blocks a read.
  const std::string dir = test::temp_dir("fault_priv");
  const std::string probe = dir + "/probe";
  write_file(probe, "x");
  fs::permissions(probe, fs::perms::none);
  fs::permissions(dir, fs::perms::all);
  const std::string prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups";
  // The unprivileged user must be able to run lungvol at all (the build folder may be closed).
  const int can_run =
      test::run_command(prefix + " '" + test::lungvol_binary() + "' --version", dir + "/log1");
  const int blocked = test::run_command(prefix + " cat '" + probe + "'", dir + "/log2");
  if (can_run == 0 && blocked != 0) return prefix;
  return "";
}

}  // namespace lungvol::faults
