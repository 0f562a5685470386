#include "tests/faults/fault_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>

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
  // Values over 4 KiB (the pixel data) are loaded lazily from the file, which saveFile is about
  // to truncate: load them now, or the slice is saved without its pixels.
  f.loadAllDataIntoMemory();
  DcmItem* item = meta_header ? static_cast<DcmItem*>(f.getMetaInfo()) : f.getDataset();
  if (item->putAndInsertString(key, value.c_str()).bad() ||
      f.saveFile(file.c_str(), EXS_LittleEndianExplicit).bad()) {
    throw std::runtime_error("test setup: cannot modify " + file);
  }
}

void write_enhanced_ct(const CtImage& ct, const std::string& path, int declared_frames) {
  const Geometry& g = ct.geom;
  DcmFileFormat ff;
  DcmDataset& d = *ff.getDataset();
  char uid[100];
  auto put = [&](const DcmTagKey& tag, const std::string& v) {
    if (d.putAndInsertString(tag, v.c_str()).bad()) throw std::runtime_error("test setup: enhanced CT");
  };
  auto ds = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", std::abs(v) < 1e-12 ? 0.0 : v);
    return std::string(buf);
  };
  put(DCM_SOPClassUID, UID_EnhancedCTImageStorage);
  put(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  put(DCM_StudyInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
  put(DCM_SeriesInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
  put(DCM_FrameOfReferenceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  put(DCM_Modality, "CT");
  put(DCM_PatientID, "ENHANCED");
  put(DCM_PatientName, "Enhanced^Phantom");
  put(DCM_StudyDate, "20200415");
  put(DCM_StudyTime, "101500");
  put(DCM_ContentDate, "20200415");
  put(DCM_ContentTime, "101500");
  put(DCM_AcquisitionDateTime, "20200415101500");
  put(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL\\NONE");
  put(DCM_Manufacturer, "lungvol-test");
  put(DCM_InstanceNumber, "1");
  put(DCM_SeriesNumber, "1");
  put(DCM_NumberOfFrames, std::to_string(declared_frames));
  put(DCM_PhotometricInterpretation, "MONOCHROME2");
  d.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(g.size[1]));
  d.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(g.size[0]));
  d.putAndInsertUint16(DCM_BitsAllocated, 16);
  d.putAndInsertUint16(DCM_BitsStored, 16);
  d.putAndInsertUint16(DCM_HighBit, 15);
  d.putAndInsertUint16(DCM_PixelRepresentation, 1);
  DcmItem* shared = nullptr;
  d.findOrCreateSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
  DcmItem* item = nullptr;
  shared->findOrCreateSequenceItem(DCM_PixelMeasuresSequence, item, 0);
  item->putAndInsertString(DCM_PixelSpacing, (ds(g.spacing[1]) + "\\" + ds(g.spacing[0])).c_str());
  item->putAndInsertString(DCM_SliceThickness, ds(g.spacing[2]).c_str());
  shared->findOrCreateSequenceItem(DCM_PlaneOrientationSequence, item, 0);
  const auto& dir = g.direction;
  item->putAndInsertString(DCM_ImageOrientationPatient,
                           (ds(dir[0]) + "\\" + ds(dir[3]) + "\\" + ds(dir[6]) + "\\" + ds(dir[1]) +
                            "\\" + ds(dir[4]) + "\\" + ds(dir[7]))
                               .c_str());
  shared->findOrCreateSequenceItem(DCM_PixelValueTransformationSequence, item, 0);
  item->putAndInsertString(DCM_RescaleIntercept, "0");
  item->putAndInsertString(DCM_RescaleSlope, "1");
  item->putAndInsertString(DCM_RescaleType, "HU");
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    DcmItem* frame = nullptr;
    d.findOrCreateSequenceItem(DCM_PerFrameFunctionalGroupsSequence, frame, -2);
    const auto p = g.to_physical(0, 0, double(k));
    frame->findOrCreateSequenceItem(DCM_PlanePositionSequence, item, 0);
    item->putAndInsertString(DCM_ImagePositionPatient,
                             (ds(p[0]) + "\\" + ds(p[1]) + "\\" + ds(p[2])).c_str());
    frame->findOrCreateSequenceItem(DCM_FrameContentSequence, item, 0);
    item->putAndInsertUint32(DCM_InStackPositionNumber, static_cast<Uint32>(k + 1));
  }
  std::vector<Uint16> px(ct.data.size());
  for (std::size_t n = 0; n < px.size(); ++n) px[n] = static_cast<Uint16>(ct.data[n]);
  d.putAndInsertUint16Array(DCM_PixelData, px.data(), static_cast<unsigned long>(px.size()));
  if (ff.saveFile(path.c_str(), EXS_LittleEndianExplicit).bad()) {
    throw std::runtime_error("test setup: cannot write " + path);
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
