// Damaged or unexpected inputs: each case must end with the documented exit status and a
// message that names the file or series and the problem, and must write no results.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/faults/fault_support.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::faults {
namespace {

constexpr int kInput = 3, kDicom = 4;

std::string analyze(const std::string& input, const std::string& out) {
  return "analyze '" + input + "' -o '" + out + "' --no-qc --no-label-maps --no-dicom";
}

// No results may appear for a refused input (a partial metrics.json would be worse than none).
void expect_no_results(const std::string& out) {
  EXPECT_TRUE(list_files(out).empty()) << "files written for a refused input in " << out;
}

TEST(InputFaults, IntactPhantomIsAnalyzed) {
  // The reference for the cases below: the undamaged copy is read with all its slices.
  const std::string dir = phantom_series("intact");
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(read_file(out + "/metrics.json"), "\"n_slices\": " + std::to_string(kPhantomSlices)))
      << read_file(out + "/metrics.json");
}

TEST(InputFaults, TruncatedSliceIsRefusedNamingTheFile) {
  const std::string dir = phantom_series("truncated");
  const auto files = slice_files(dir);
  const std::string victim = files[files.size() / 2];
  // Cut inside the pixel data: the header (and the series UID) are intact.
  truncate_file(victim, fs::file_size(victim) - 3000);
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, victim)) << r.output;
  EXPECT_TRUE(contains(r.output, "truncated") || contains(r.output, "corrupt")) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, SliceTruncatedInsideItsHeaderIsRefused) {
  const std::string dir = phantom_series("truncated_header");
  const auto files = slice_files(dir);
  const std::string victim = files[files.size() / 2];
  truncate_file(victim, 300);  // preamble, "DICM" and part of the meta header only
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  // The file cannot be attributed to a series; the series then shows a gap where it was.
  EXPECT_TRUE(contains(r.output, "missing slice") || contains(r.output, victim)) << r.output;
  expect_no_results(out);
}

// Cut inside the 128-byte preamble: nothing says it was DICOM, but `inspect` says it is too
// short to be one and names it, so the user finds the bad copy.
TEST(InputFaults, SliceTruncatedInsideItsPreambleIsNamedAsTruncated) {
  const std::string dir = phantom_series("truncated_preamble");
  const auto files = slice_files(dir);
  const std::string victim = files[files.size() / 2];
  truncate_file(victim, 100);
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "missing slice")) << r.output;
  expect_no_results(out);
  const Result inspect = lungvol("inspect '" + dir + "'");
  EXPECT_TRUE(contains(inspect.output, fs::path(victim).filename().string())) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "100 bytes")) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "truncated copy?")) << inspect.output;
}

TEST(InputFaults, ZeroByteFileBesideTheSeriesIsSkipped) {
  const std::string dir = phantom_series("zero_extra");
  write_file(dir + "/EMPTY", "");
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(read_file(out + "/metrics.json"), "\"n_slices\": " + std::to_string(kPhantomSlices)));
}

TEST(InputFaults, ZeroByteSliceIsRefused) {
  const std::string dir = phantom_series("zero_slice");
  const auto files = slice_files(dir);
  truncate_file(files[files.size() / 2], 0);
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "missing slice")) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, ZeroByteFileAloneIsNotACtSeries) {
  const std::string dir = test::temp_dir("fault_zero_alone");
  write_file(dir + "/IM0001", "");
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "no CT volume series found")) << r.output;
  EXPECT_TRUE(contains(r.output, "not DICOM")) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, NonDicomFilesInTheFolderAreSkipped) {
  const std::string dir = phantom_series("non_dicom");
  write_file(dir + "/README.txt", "exported by the PACS\n");
  write_file(dir + "/junk.nii.gz", std::string(5000, '\x7f'));
  write_file(dir + "/DICOMDIR.bak", std::string(200, '\0'));  // 200 zero bytes: no "DICM"
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(read_file(out + "/metrics.json"), "\"n_slices\": " + std::to_string(kPhantomSlices)));
  // `inspect` tells the user what was skipped and why.
  const Result inspect = lungvol("inspect '" + dir + "'");
  EXPECT_EQ(inspect.code, 0) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "README.txt")) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "not DICOM")) << inspect.output;
}

TEST(InputFaults, MrOnlyFolderIsRefusedAsNoCt) {
  const std::string dir = phantom_series("mr");
  for (const auto& f : slice_files(dir)) {
    set_dicom_string(f, 0x0008, 0x0060, "MR");                                  // Modality
    set_dicom_string(f, 0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.4");           // MR Image Storage
    set_dicom_string(f, 0x0002, 0x0002, "1.2.840.10008.5.1.4.1.1.4", true);
  }
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "no CT volume series found")) << r.output;
  EXPECT_TRUE(contains(r.output, "MR")) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, CtSopClassWithMrModalityIsRefused) {
  const std::string dir = phantom_series("mr_modality");
  for (const auto& f : slice_files(dir)) set_dicom_string(f, 0x0008, 0x0060, "MR");
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, "modality MR")) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, MissingSliceNamesTheSeriesAndTheGap) {
  const std::string dir = phantom_series("gap");
  const auto files = slice_files(dir);
  const std::string uid = dicom_string(files[0], 0x0020, 0x000e);
  ASSERT_FALSE(uid.empty());
  fs::remove(files[10]);
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_EQ(r.code, kDicom) << r.output;
  EXPECT_TRUE(contains(r.output, uid)) << r.output;
  EXPECT_TRUE(contains(r.output, "missing slice")) << r.output;
  // Slices are 6.5 mm apart: one missing slice leaves a 13 mm step.
  EXPECT_TRUE(contains(r.output, "largest gap 13.000 mm")) << r.output;
  expect_no_results(out);
  // The documented way out reads it, resampled to 6.5 mm, with the full slice count.
  const Result resampled = lungvol(analyze(dir, out) + " --resample-nonuniform");
  EXPECT_EQ(resampled.code, 0) << resampled.output;
  EXPECT_TRUE(contains(read_file(out + "/metrics.json"),
                       "\"n_slices\": " + std::to_string(kPhantomSlices)));
}

TEST(InputFaults, MissingInputIsExit3NamingThePath) {
  const std::string missing = test::temp_dir("fault_missing") + "/no_such_scan";
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(missing, out));
  EXPECT_EQ(r.code, kInput) << r.output;
  EXPECT_TRUE(contains(r.output, missing)) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, DirectoryWhereAnImageFileIsExpected) {
  // A path named like a NIfTI file that is a (empty) directory: nothing to read.
  const std::string dir = test::temp_dir("fault_dir_as_file") + "/scan.nii.gz";
  fs::create_directories(dir);
  const std::string out = test::temp_dir("fault_out");
  const Result r = lungvol(analyze(dir, out));
  EXPECT_TRUE(r.code == kInput || r.code == kDicom) << r.code << ": " << r.output;
  EXPECT_TRUE(contains(r.output, dir)) << r.output;
  expect_no_results(out);
}

TEST(InputFaults, UnreadableSliceIsRefused) {
  const std::string prefix = unprivileged_prefix();
  if (prefix.empty()) {
    GTEST_SKIP() << "running as root without a way to drop privileges (setpriv): root reads "
                    "chmod-000 files, so an unreadable file cannot be simulated here";
  }
  const std::string dir = phantom_series("unreadable");
  const auto files = slice_files(dir);
  const std::string victim = files[files.size() / 2];
  fs::permissions(victim, fs::perms::none);
  const std::string out = test::temp_dir("fault_out");
  fs::permissions(out, fs::perms::all);  // writable for the unprivileged user
  const Result r = lungvol(analyze(dir, out), prefix);
  EXPECT_TRUE(r.code == kInput || r.code == kDicom) << r.code << ": " << r.output;
  EXPECT_TRUE(contains(r.output, victim) || contains(r.output, "missing slice")) << r.output;
  expect_no_results(out);
}

// An unreadable file used to be reported by discovery as "not DICOM" and skipped; when it was
// the first or last slice the rest was an evenly spaced stack and the scan was analyzed with
// one slice less (exit 0). Now an unreadable file beside a series refuses it, naming the file.
TEST(InputFaults, UnreadableEndSliceIsNotSilentlyDropped) {
  const std::string prefix = unprivileged_prefix();
  if (prefix.empty()) {
    GTEST_SKIP() << "running as root without a way to drop privileges (setpriv): root reads "
                    "chmod-000 files, so an unreadable file cannot be simulated here";
  }
  // The first slice: without it the rest is still an evenly spaced stack, so only an explicit
  // check for unreadable files can stop a silently shortened volume.
  const std::string dir = phantom_series("unreadable_end");
  const std::string victim = slice_files(dir).front();
  fs::permissions(victim, fs::perms::none);
  const std::string out = test::temp_dir("fault_out");
  fs::permissions(out, fs::perms::all);
  const Result r = lungvol(analyze(dir, out), prefix);
  EXPECT_EQ(r.code, kInput) << r.output;
  EXPECT_TRUE(contains(r.output, victim)) << r.output;
  expect_no_results(out);
}

}  // namespace
}  // namespace lungvol::faults
