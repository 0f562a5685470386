#pragma once
// Coded concepts written into lungvol's DICOM SEG and SR (see docs/dicom-outputs.md for sources).
#include <string>

namespace lungvol::dicomout {

struct Code {
  std::string value;
  std::string scheme;  // Coding Scheme Designator: SCT, DCM, UCUM, 99LUNGVOL
  std::string meaning;
};

// Private coding scheme for lungvol measures that have no standard code.
inline constexpr const char* kPrivateScheme = "99LUNGVOL";

namespace codes {
// Segmentation property categories (PS3.16 CID 7150).
Code anatomical_structure();
Code morphologically_abnormal_structure();
// Segmented property types / anatomy (CID 7155 Thoracic Segmentation Type, CID 6104, CID 7159).
Code lung();
Code trachea();
Code airway_structure();  // SCT 89187006, CID 6111: trachea and main bronchi together
Code ground_glass_opacity();
Code lesion();
Code chest();
// Laterality modifiers (CID 244).
Code right();
Code left();
// SR measurement concepts (CID 7469 / DCM) and units (UCUM, CID 7181).
Code volume();
Code mean_attenuation();
Code median_attenuation();
Code sd_attenuation();
Code unit_ml();
Code unit_hu();
Code unit_percent();
Code unit_gram();
// Private 99LUNGVOL concepts.
Code lesion_volume();
Code ggo_volume();
Code solid_volume();
Code lesion_percent();
Code ggo_percent();
Code solid_percent();
Code percentile15_density();
Code laa950_percent();
Code haa_percent();
Code lung_mass();
}  // namespace codes

}  // namespace lungvol::dicomout
