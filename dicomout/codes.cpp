#include "dicomout/codes.hpp"

namespace lungvol::dicomout::codes {

// Standard codes: PS3.16 context groups as listed in the comments of DCMTK's dcmsr/cmr headers
// (CID 7469, CID 7181), DCMTK's dcmsr/codes/dcm.h (DCM), and the CID 7150 / 7155 / 6104 / 7159 /
// 244 tables. Nothing here is invented except the 99LUNGVOL block at the end.
Code anatomical_structure() { return {"91723000", "SCT", "Anatomical Structure"}; }
Code morphologically_abnormal_structure() {
  return {"49755003", "SCT", "Morphologically Abnormal Structure"};
}
Code lung() { return {"39607008", "SCT", "Lung"}; }
Code trachea() { return {"44567001", "SCT", "Trachea"}; }
// CID 6111 (Bronchovascular Anatomy Finding or Feature): the airway label holds the trachea and
// the main bronchi, which "Trachea" (CID 7155) would misname.
Code airway_structure() { return {"89187006", "SCT", "Airway structure"}; }
Code ground_glass_opacity() { return {"112120", "DCM", "Ground glass opacity"}; }
Code lesion() { return {"52988006", "SCT", "Lesion"}; }
Code chest() { return {"816094009", "SCT", "Chest"}; }
Code right() { return {"24028007", "SCT", "Right"}; }
Code left() { return {"7771000", "SCT", "Left"}; }

Code volume() { return {"118565006", "SCT", "Volume"}; }
Code mean_attenuation() { return {"112181", "DCM", "Mean Attenuation Coefficient"}; }
Code median_attenuation() { return {"112182", "DCM", "Median Attenuation Coefficient"}; }
Code sd_attenuation() {
  return {"112183", "DCM", "Standard Deviation of Attenuation Coefficient"};
}
Code unit_ml() { return {"ml", "UCUM", "ml"}; }
Code unit_hu() { return {"[hnsf'U]", "UCUM", "Hounsfield Unit"}; }
Code unit_percent() { return {"%", "UCUM", "Percent"}; }
Code unit_gram() { return {"g", "UCUM", "gram"}; }

// lungvol-specific measures: no standard concept exists (checked CID 7469, CID 7180, DCM).
Code lesion_volume() { return {"LV0001", kPrivateScheme, "Lesion volume"}; }
Code ggo_volume() { return {"LV0002", kPrivateScheme, "Ground-glass opacity volume"}; }
Code solid_volume() { return {"LV0003", kPrivateScheme, "Solid lesion volume"}; }
Code lesion_percent() { return {"LV0011", kPrivateScheme, "Lesion percent of lung volume"}; }
Code ggo_percent() {
  return {"LV0012", kPrivateScheme, "Ground-glass opacity percent of lung volume"};
}
Code solid_percent() { return {"LV0013", kPrivateScheme, "Solid lesion percent of lung volume"}; }
Code percentile15_density() {
  return {"LV0021", kPrivateScheme, "15th percentile density (PD15)"};
}
Code laa950_percent() {
  return {"LV0022", kPrivateScheme, "Low attenuation area below -950 HU (%LAA-950)"};
}
Code haa_percent() { return {"LV0023", kPrivateScheme, "High attenuation area percent (HAA)"}; }
Code lung_mass() { return {"LV0024", kPrivateScheme, "Lung tissue mass"}; }

}  // namespace lungvol::dicomout::codes
