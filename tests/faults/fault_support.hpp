#pragma once
// Helpers of the fault suite: every case runs the real `lungvol` binary on a tiny phantom (or a
// damaged copy of one) and looks at the exit status, the message and the files left behind.
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::faults {

struct Result {
  int code = -1;
  std::string output;  // stdout + stderr
};

// Runs `lungvol <args>` (args are passed to /bin/sh as written), `prefix` goes before the
// binary (e.g. "ulimit -f 8;" or a privilege-dropping wrapper).
Result lungvol(const std::string& args, const std::string& prefix = "");

// A fresh copy of one small phantom series (64 x 64 x 24 voxels, 2.7 x 2.7 x 6.5 mm, seed 1;
// coarse voxels keep a realistic chest size in few voxels):
// returns the folder that holds the slice files IM0001..IM0024 (generated once per process).
std::string phantom_series(const std::string& tag);
constexpr int kPhantomSlices = 24;
constexpr double kPhantomSliceSpacingMm = 6.5;

std::vector<std::string> slice_files(const std::string& dicom_dir);  // sorted by name
std::string dicom_string(const std::string& file, unsigned group, unsigned element);
void set_dicom_string(const std::string& file, unsigned group, unsigned element,
                      const std::string& value, bool meta_header = false);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);
void truncate_file(const std::string& path, std::size_t size);
// Every regular file under `dir`, relative path -> size.
std::vector<std::pair<std::string, std::size_t>> list_files(const std::string& dir);
bool contains(const std::string& haystack, const std::string& needle);

// `ct` as one Enhanced CT Image Storage file (multi-frame, functional groups: shared pixel
// measures, orientation and rescale, per-frame positions), signed 16-bit. NumberOfFrames is
// written as `declared_frames` (the pixel data always holds every slice of `ct`).
void write_enhanced_ct(const CtImage& ct, const std::string& path, int declared_frames);

// A command prefix that runs the command without root's permission override (as user
// nobody), or "" when that is not possible here. Needed because CI runs as root, for whom
// chmod 000 blocks nothing.
std::string unprivileged_prefix();

}  // namespace lungvol::faults
