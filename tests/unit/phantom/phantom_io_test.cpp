// The phantom written as DICOM must read back, through the pipeline's own reader, as the
// very same voxels on the very same grid; the truth files must match the label maps.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "phantom/phantom.hpp"
#include "tests/support/test_paths.hpp"

namespace fs = std::filesystem;

namespace lungvol::phantom {
namespace {

PhantomOptions small_options() {
  PhantomOptions o;
  o.size = {96, 80, 40};
  o.spacing = {3.6, 4.3, 8.0};
  o.seed = 7;
  return o;
}

void expect_same_grid_exactly(const Geometry& a, const Geometry& b, double tol = 1e-6) {
  EXPECT_EQ(a.size, b.size);
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(a.spacing[k], b.spacing[k], tol);
    EXPECT_NEAR(a.origin[k], b.origin[k], tol);
  }
  for (int k = 0; k < 9; ++k) EXPECT_NEAR(a.direction[k], b.direction[k], 1e-9);
}

TEST(PhantomIo, DicomRoundTripIsExact) {
  const Phantom p = make_phantom(small_options());
  for (bool unsigned_pixels : {false, true}) {
    const std::string dir = test::temp_dir("phantom_rt");
    io::CtSeriesMeta meta;
    meta.patient_id = "SUBJ-007";
    meta.study_date = "20200415";
    meta.series_description = "round trip";
    meta.unsigned_pixels = unsigned_pixels;
    write_phantom(p, dir, meta);
    std::size_t n_files = 0;
    for (const auto& e : fs::directory_iterator(dir + "/dicom")) n_files += e.is_regular_file();
    EXPECT_EQ(n_files, 40u);  // one file per slice

    const io::LoadedCt back = io::load_ct(dir + "/dicom");
    expect_same_grid_exactly(back.image.geom, p.ct.geom);
    EXPECT_EQ(back.image.data, p.ct.data) << "unsigned " << unsigned_pixels;
    EXPECT_EQ(back.series.patient_id, "SUBJ-007");
    EXPECT_EQ(back.series.study_date, "20200415");
    EXPECT_EQ(back.series.description, "round trip");
    EXPECT_EQ(back.series.modality, "CT");
    EXPECT_EQ(back.series.n_slices, 40u);

    const LabelImage lungs = io::read_label_image(dir + "/truth_lungs.nii.gz");
    const LabelImage lesions = io::read_label_image(dir + "/truth_lesions.nii.gz");
    expect_same_grid_exactly(lungs.geom, p.ct.geom, 1e-5);  // NIfTI stores float32
    EXPECT_EQ(lungs.data, p.lungs.data);
    EXPECT_EQ(lesions.data, p.lesions.data);
    const auto truth = nlohmann::json::parse(read_text_file(dir + "/truth.json"));
    EXPECT_EQ(truth, p.truth);
  }
}

TEST(PhantomIo, RewritingAFolderReplacesTheOldSeries) {
  const std::string dir = test::temp_dir("phantom_rewrite");
  write_phantom(make_phantom(small_options()), dir, {});
  PhantomOptions o = small_options();
  o.size = {96, 80, 32};
  const Phantom p = make_phantom(o);
  write_phantom(p, dir, {});
  const io::LoadedCt back = io::load_ct(dir + "/dicom");
  EXPECT_EQ(back.image.geom.size[2], 32u);
  EXPECT_EQ(back.image.data, p.ct.data);
}

TEST(PhantomIo, CommandLineWritesAReadableSeries) {
  const std::string dir = test::temp_dir("phantom_cli");
  const std::string cmd = test::lungvol_binary() + " phantom -o '" + dir +
                          "/v1' --seed 3 --size 64,64,32 --spacing 5,5,10"
                          " --noise 10 --lesion-scale 0.8 --patient-id P003 --study-date 20200501"
                          " --series-description 'visit 1'";
  ASSERT_EQ(test::run_command(cmd, dir + "/log.txt"), 0) << read_text_file(dir + "/log.txt");
  const io::LoadedCt back = io::load_ct(dir + "/v1/dicom");
  EXPECT_EQ(back.image.geom.size, (std::array<std::size_t, 3>{64, 64, 32}));
  EXPECT_NEAR(back.image.geom.spacing[2], 10.0, 1e-6);
  EXPECT_EQ(back.series.patient_id, "P003");
  EXPECT_EQ(back.series.study_date, "20200501");
  EXPECT_EQ(back.series.description, "visit 1");
  const auto truth = nlohmann::json::parse(read_text_file(dir + "/v1/truth.json"));
  EXPECT_EQ(truth.at("generator").at("seed"), 3);
  EXPECT_DOUBLE_EQ(truth.at("generator").at("lesion_scale").get<double>(), 0.8);
  // The truth maps count what truth.json says.
  const LabelImage lungs = io::read_label_image(dir + "/v1/truth_lungs.nii.gz");
  std::size_t right = 0;
  for (auto v : lungs.data) right += v == labels::kRightLung;
  EXPECT_DOUBLE_EQ(truth.at("volumes").at("right_lung_ml").get<double>(), right * 0.25);

  // Usage errors exit with 2 and write nothing.
  for (const char* bad :
       {" --size 64,64", " --study-date 2020-05-01", " --lesions nonsense", " --spacing 1,0,1"}) {
    EXPECT_EQ(test::run_command(test::lungvol_binary() + " phantom -o '" + dir + "/bad'" + bad,
                                dir + "/bad.txt"),
              2)
        << bad;
  }
  EXPECT_FALSE(fs::exists(dir + "/bad/truth.json"));
}

}  // namespace
}  // namespace lungvol::phantom
