#pragma once
// Synthetic chest CT with known truth: the reference object of lungvol's accuracy tests,
// benchmarks and demo trial. Anatomy is analytic (ellipsoids, elliptic cylinders, tubes)
// evaluated at voxel centres, so the truth label maps and their voxel counts are exact.
#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "io/dicom_write.hpp"

namespace lungvol::phantom {

inline constexpr const char* kGeneratorVersion = "2";

// Tissue values before noise (HU).
namespace hu {
inline constexpr double kAir = -1000;
inline constexpr double kTable = 200;
inline constexpr double kFat = -100;
inline constexpr double kSoftTissue = 40;
inline constexpr double kBlood = 45;
inline constexpr double kRib = 700;
inline constexpr double kCartilage = 150;
inline constexpr double kCorticalBone = 700;
inline constexpr double kCancellousBone = 400;
inline constexpr double kSternum = 500;
inline constexpr double kDisc = 90;
inline constexpr double kSpinalCanal = 25;
inline constexpr double kLung = -850;
inline constexpr double kVessel = 40;
inline constexpr double kAirwayWall = 40;
inline constexpr double kGroundGlass = -550;
inline constexpr double kSolid = 0;
// Lesion voxels (noise included) are kept inside these ranges so their class is never in
// doubt: well inside ground-glass [-700, -300) and solid [-300, +100) (and the ARDS
// non-aerated band [-100, +100)).
inline constexpr double kGroundGlassMin = -690, kGroundGlassMax = -310;
inline constexpr double kSolidMin = -90, kSolidMax = 90;
}  // namespace hu

enum class LesionType { kGroundGlass, kSolid };
enum class LungSide { kRight, kLeft };

// A lesion in lung-box coordinates: the box spans one lung's cavity half.
//   u: -1 medial (mediastinum edge) .. +1 lateral (chest wall)
//   v: -1 anterior .. +1 posterior
//   w:  0 lung base .. 1 apex
// Pleural lesions sit on the lateral chest wall at (v, w); their centre is `u` times the
// lateral semi-axis inside the wall, and the lung clips the part beyond the wall.
struct LesionSpec {
  LesionType type = LesionType::kGroundGlass;
  LungSide side = LungSide::kRight;
  bool pleural = false;
  std::array<double, 3> uvw{0, 0, 0.5};
  std::array<double, 3> semi_axes_mm{10, 10, 10};  // along x, y, z, before --lesion-scale
};

// "TYPE:SIDE:U,V,W:A,B,C[;...]" with TYPE ggo|solid|pleural, SIDE right|left, semi-axes in mm.
// Throws Error(kUsage) naming the bad entry.
std::vector<LesionSpec> parse_lesion_spec(const std::string& spec);
std::string format_lesion_spec(const std::vector<LesionSpec>& lesions);
// The default set: 3 ground-glass, 2 solid, 1 pleural solid, sized for a full-size chest.
std::vector<LesionSpec> default_lesions();

struct PhantomOptions {
  std::uint64_t seed = 1;  // noise and the subject's anatomy (small variations)
  std::array<std::size_t, 3> size{192, 192, 80};
  std::array<double, 3> spacing{1.8, 1.8, 4.0};  // mm
  double noise_hu = 15.0;                        // Gaussian SD
  double lesion_scale = 1.0;  // multiplies every lesion semi-axis; positions stay fixed
  bool with_lesions = true;
  bool touching = false;  // lungs meet at an anterior junction line (hard L/R split)
  // Empty: default_lesions(), whose sizes follow the anatomy's scale. Given: sizes in mm.
  std::vector<LesionSpec> lesions;
};

struct Phantom {
  CtImage ct;
  LabelImage lungs;    // labels::kRightLung, kLeftLung, kAirway
  LabelImage lesions;  // labels::kGroundGlass, kSolid
  nlohmann::json truth;
};

// Throws Error(kUsage) for impossible options (zero size, non-positive spacing, ...).
Phantom make_phantom(const PhantomOptions& options);

// DIR/dicom/IM0001.. (one file per slice), DIR/truth.json, DIR/truth_lungs.nii.gz,
// DIR/truth_lesions.nii.gz; every file written atomically. Old slices (IM<digits>) of an
// earlier phantom in DIR/dicom are removed first. Throws Error(kOutput).
void write_phantom(const Phantom& phantom, const std::string& dir, const io::CtSeriesMeta& meta);

}  // namespace lungvol::phantom
