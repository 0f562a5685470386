#pragma once
// A measurement protocol: every HU threshold the pipeline uses, loaded from a versioned TOML
// file in protocols/ (never hard-coded). Bands are half-open [lo_hu, hi_hu).
#include <string>
#include <vector>

namespace lungvol {

struct HuBand {
  double lo_hu = 0;
  double hi_hu = 0;
  bool contains(double hu) const { return hu >= lo_hu && hu < hi_hu; }
};

struct HuClass {
  std::string name;
  HuBand band;
  std::string description;
};

struct LungParams {
  double air_max_hu = -500;        // aerated lung seed: HU below this
  double fill_max_hu = 200;        // dense tissue admitted into the lung when closing over lesions
  double closing_radius_mm = 20;   // "rolling ball" radius that brings pleural lesions back in
  double chest_wall_mm = 15;       // closing adds tissue only this close to bone (the chest wall)
  double bone_min_hu = 250;        // bone, for the chest-wall test
  double min_lung_ml = 100;        // below this a component is not a lung (bowel gas, noise)
  HuBand fat_hu{-200, -40};        // fat: never lung parenchyma, so never admitted as dense lung
  double left_out_flag_pct = 2.0;  // flag a scan whose dense tissue left out exceeds this % of the lungs
};

struct LesionParams {
  std::vector<std::string> ground_glass_classes;  // names from Protocol::classes
  std::vector<std::string> solid_classes;
  HuBand ground_glass;  // derived: union of the ground-glass classes
  HuBand solid;         // derived: union of the solid classes, starts where ground_glass ends
  double min_lesion_mm3 = 10;
  // Vessel suppression by shape (segmentation/vesselness.hpp): the Gaussian scales (sigma, mm)
  // of the multi-scale bright-tube measure, and the tube strength (HU) from which a structure is
  // a vessel. No scales: no vessel suppression.
  // No vessel is wider than about 2 x 3 sigma of the largest scale (8 mm at sigma 3 mm: the
  // lobar and segmental arteries that reach into the lung); the threshold is measured in
  // docs/validation.md ("Thin ground-glass: vessel suppression by shape").
  std::vector<double> vessel_scales_mm{1.0, 1.5, 2.0, 3.0};
  double vesselness_threshold_hu = 25;
  // Superseded: protocols before 1.2 removed vessels by thickness (an opening of this radius).
  // Accepted so that older protocol files still load; not used.
  double vessel_radius_mm = 1.5;
  double low_hu() const { return ground_glass.lo_hu; }
  double split_hu() const { return solid.lo_hu; }
  double high_hu() const { return solid.hi_hu; }
};

struct DensitometryParams {
  std::vector<double> laa_hu{-950, -910, -856};  // %LAA below each threshold
  HuBand haa{-600, -250};                         // high-attenuation area band
  std::vector<double> percentiles{10, 15};        // PDxx
};

// The HU ranges a scan's air references must read within (inclusive at both ends) for its
// densitometry to count as comparable between visits (densitometry/calibration.hpp).
struct AirCheckParams {
  HuBand outside_air{-1005, -970};
  HuBand trachea{-1005, -970};
  std::string source;  // where the ranges come from, recorded in metrics.json
  static bool within(const HuBand& b, double hu) { return hu >= b.lo_hu && hu <= b.hi_hu; }
};

struct Protocol {
  std::string name;
  std::string version;
  std::string description;
  std::vector<std::string> references;
  std::string source_path;
  std::string sha256;  // of the file's bytes
  std::vector<std::string> defaulted;  // optional keys the file does not set ("calibration.source")

  LungParams lung;
  LesionParams lesion;
  DensitometryParams densitometry;
  AirCheckParams air_check;
  std::vector<HuClass> classes;

  // Same protocol with the lesion thresholds moved (threshold sweeps, --split etc.).
  Protocol with_lesion_thresholds(double low_hu, double split_hu) const;
};

// Parses and validates TOML text; `origin` names the file in error messages. The schema (one
// table in core/protocol.cpp) lists every key with its type, range and whether it is required;
// unknown keys and sections, missing required keys, and values that are not finite or out of
// range are refused (Error kProtocol naming the file, the line and the key). Optional keys keep
// the defaults of the structs above, listed in docs/protocols.md.
Protocol parse_protocol(const std::string& toml_text, const std::string& origin);
// Every setting in effect, as TOML with comments (defaults marked): `lungvol protocols --show`.
std::string describe_protocol(const Protocol& p);
// A path to a .toml file, or the name of a built-in protocol (file in the protocol directory).
Protocol load_protocol(const std::string& name_or_path);
// Directory of the built-in protocols: $LUNGVOL_PROTOCOL_DIR, the installed share dir or the
// source tree's protocols/.
std::string protocol_directory();
std::vector<Protocol> list_builtin_protocols();
inline constexpr const char* kDefaultProtocol = "covid-ggo-solid";

}  // namespace lungvol
