// Reading a DICOM SEG back into lungvol's label maps: our own SEGs and those edited or made in
// 3D Slicer, OHIF or ITK-SNAP. Segments are matched by what they are (property type code,
// laterality, label), never by number: other tools number segments in the order they were
// created. The dataset is read directly (not through DcmSegmentation) so that any numbering
// and any frame order is accepted.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "dicomout/seg.hpp"

namespace lungvol::dicomout {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(ExitCode::kInput, "cannot read DICOM SEG '" + path + "': " + what);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has(const std::string& text, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(),
                     [&](const char* w) { return text.find(w) != std::string::npos; });
}

std::string get_string(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  if (item.findAndGetOFStringArray(tag, v).bad()) return {};
  return v.c_str();
}

Code first_code(DcmItem& item, const DcmTagKey& sequence) {
  DcmItem* c = nullptr;
  if (item.findAndGetSequenceItem(sequence, c, 0).bad() || !c) return {};
  return {get_string(*c, DCM_CodeValue), get_string(*c, DCM_CodingSchemeDesignator),
          get_string(*c, DCM_CodeMeaning)};
}

std::vector<Code> all_codes(DcmItem& item, const DcmTagKey& sequence) {
  std::vector<Code> out;
  DcmSequenceOfItems* seq = nullptr;
  if (item.findAndGetSequence(sequence, seq).bad() || !seq) return out;
  for (unsigned long i = 0; i < seq->card(); ++i) {
    DcmItem* c = seq->getItem(i);
    out.push_back({get_string(*c, DCM_CodeValue), get_string(*c, DCM_CodingSchemeDesignator),
                   get_string(*c, DCM_CodeMeaning)});
  }
  return out;
}

bool is(const Code& c, const char* value, const char* scheme) {
  return c.value == value && c.scheme == scheme;
}

// The sub-item `sequence`[0] of a functional group, per frame first, then shared.
DcmItem* group(DcmItem* per_frame, DcmItem* shared, const DcmTagKey& sequence) {
  DcmItem* out = nullptr;
  if (per_frame && per_frame->findAndGetSequenceItem(sequence, out, 0).good() && out) return out;
  if (shared && shared->findAndGetSequenceItem(sequence, out, 0).good() && out) return out;
  return nullptr;
}

SegmentMeaning lesion_from_label(const std::string& l) {
  if (has(l, {"ground", "ggo"})) return SegmentMeaning::kGroundGlass;
  if (has(l, {"solid", "consolid"})) return SegmentMeaning::kSolid;
  return SegmentMeaning::kLesion;
}

}  // namespace

const char* segment_meaning_name(SegmentMeaning m) {
  switch (m) {
    case SegmentMeaning::kRightLung: return "right lung";
    case SegmentMeaning::kLeftLung: return "left lung";
    case SegmentMeaning::kLung: return "lung (both sides)";
    case SegmentMeaning::kAirway: return "airway";
    case SegmentMeaning::kGroundGlass: return "ground-glass lesion";
    case SegmentMeaning::kSolid: return "solid lesion";
    case SegmentMeaning::kLesion: return "lesion (not split)";
    default: return "not recognised";
  }
}

SegmentMeaning segment_meaning(const std::string& label, const Code& type,
                               const std::vector<Code>& modifiers) {
  const std::string l = lower(label);
  const auto side = [&]() {
    for (const Code& m : modifiers) {
      if (is(m, "24028007", "SCT")) return SegmentMeaning::kRightLung;
      if (is(m, "7771000", "SCT")) return SegmentMeaning::kLeftLung;
    }
    if (has(l, {"right"})) return SegmentMeaning::kRightLung;
    if (has(l, {"left"})) return SegmentMeaning::kLeftLung;
    return SegmentMeaning::kLung;
  };
  // Coded meaning first (SNOMED CT / DICOM codes of CID 7155 and the lung codes).
  if (is(type, "3341006", "SCT")) return SegmentMeaning::kRightLung;
  if (is(type, "44029006", "SCT")) return SegmentMeaning::kLeftLung;
  if (is(type, "39607008", "SCT")) return side();
  if (is(type, "44567001", "SCT") || is(type, "89187006", "SCT") || is(type, "955009", "SCT")) {
    return SegmentMeaning::kAirway;
  }
  if (is(type, "112120", "DCM")) return SegmentMeaning::kGroundGlass;
  if (is(type, "95436008", "SCT")) return SegmentMeaning::kSolid;  // lung consolidation
  if (is(type, "52988006", "SCT") || is(type, "49755003", "SCT")) return lesion_from_label(l);
  // Uncoded or other codes (Slicer's generic "Tissue"): the label decides.
  if (has(l, {"airway", "trachea", "bronch"})) return SegmentMeaning::kAirway;
  if (has(l, {"ground", "ggo", "consolid", "solid", "lesion", "infect", "opacit", "covid",
              "pneumon"})) {
    return lesion_from_label(l);
  }
  if (has(l, {"lung"})) return side();
  return SegmentMeaning::kUnknown;
}

SegReadResult read_dicom_seg(const std::string& path, const Geometry& g) {
  io::init_dcmtk();  // DCMTK's own log lines stay off stderr
  DcmFileFormat file;
  if (OFCondition c = file.loadFile(path.c_str()); c.bad()) bad(path, c.text());
  DcmDataset& ds = *file.getDataset();
  if (get_string(ds, DCM_Modality) != "SEG") bad(path, "not a Segmentation (Modality is not SEG)");
  if (get_string(ds, DCM_SegmentationType) != "BINARY") {
    bad(path, "only BINARY segmentations are read (this one is '" +
                  get_string(ds, DCM_SegmentationType) + "')");
  }
  Uint16 rows = 0, cols = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  if (rows != g.size[1] || cols != g.size[0]) {
    bad(path, "frames are " + std::to_string(cols) + " x " + std::to_string(rows) +
                  ", the CT slices " + std::to_string(g.size[0]) + " x " + std::to_string(g.size[1]));
  }

  SegReadResult r;
  std::map<Uint16, SegmentMeaning> meaning;
  DcmSequenceOfItems* segments = nullptr;
  if (ds.findAndGetSequence(DCM_SegmentSequence, segments).bad() || !segments ||
      segments->card() == 0) {
    bad(path, "no SegmentSequence");
  }
  for (unsigned long i = 0; i < segments->card(); ++i) {
    DcmItem& s = *segments->getItem(i);
    Uint16 number = 0;
    if (s.findAndGetUint16(DCM_SegmentNumber, number).bad()) bad(path, "a segment has no number");
    const std::string label = get_string(s, DCM_SegmentLabel);
    // Laterality sits inside the property type code item (PS3.3 C.8.20.2); some writers put
    // it beside it.
    std::vector<Code> modifiers = all_codes(s, DCM_SegmentedPropertyTypeModifierCodeSequence);
    DcmItem* type_item = nullptr;
    if (s.findAndGetSequenceItem(DCM_SegmentedPropertyTypeCodeSequence, type_item, 0).good() &&
        type_item) {
      for (Code& c : all_codes(*type_item, DCM_SegmentedPropertyTypeModifierCodeSequence)) {
        modifiers.push_back(std::move(c));
      }
    }
    const SegmentMeaning m =
        segment_meaning(label, first_code(s, DCM_SegmentedPropertyTypeCodeSequence), modifiers);
    meaning[number] = m;
    r.notes.push_back("segment " + std::to_string(number) + " '" + label + "': " +
                      segment_meaning_name(m) + (m == SegmentMeaning::kUnknown ? ", ignored" : ""));
  }
  Sint32 frames = 0;
  ds.findAndGetSint32(DCM_NumberOfFrames, frames);
  const Uint8* bits = nullptr;
  unsigned long nbytes = 0;
  if (frames <= 0 || ds.findAndGetUint8Array(DCM_PixelData, bits, &nbytes).bad() || !bits ||
      std::size_t{nbytes} * 8 < std::size_t(frames) * g.slice_voxels()) {
    bad(path, "pixel data missing or shorter than " + std::to_string(frames) + " frames");
  }
  DcmItem* shared = nullptr;
  ds.findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
  DcmSequenceOfItems* per_frame = nullptr;
  ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame);
  if (!per_frame || per_frame->card() != static_cast<unsigned long>(frames)) {
    bad(path, "PerFrameFunctionalGroupsSequence does not hold one item per frame");
  }
  // Orientation must be the CT's: frames are placed by position along the slice normal only.
  const double* d = g.direction.data();
  if (DcmItem* o = group(per_frame->getItem(0), shared, DCM_PlaneOrientationSequence)) {
    Float64 iop[6];
    for (unsigned long q = 0; q < 6; ++q) {
      if (o->findAndGetFloat64(DCM_ImageOrientationPatient, iop[q], q).bad()) iop[q] = 0;
    }
    const double expected[6] = {d[0], d[3], d[6], d[1], d[4], d[7]};
    for (int q = 0; q < 6; ++q) {
      if (std::abs(iop[q] - expected[q]) > 1e-3) {
        bad(path, "its image orientation differs from the CT's");
      }
    }
  }

  std::vector<SegmentMeaning> drawn;  // meanings of the segments that have frames
  r.lungs = LabelImage(g, labels::kBackground);
  r.lesions = LabelImage(g, labels::kNoLesion);
  const std::array<double, 3> normal{d[2], d[5], d[8]};
  const auto origin = g.to_physical(0, 0, 0);
  for (Sint32 f = 0; f < frames; ++f) {
    DcmItem* item = per_frame->getItem(static_cast<unsigned long>(f));
    DcmItem* id = group(item, shared, DCM_SegmentIdentificationSequence);
    DcmItem* pos = group(item, shared, DCM_PlanePositionSequence);
    Uint16 number = 0;
    Float64 xyz[3] = {0, 0, 0};
    bool ok = id && pos && id->findAndGetUint16(DCM_ReferencedSegmentNumber, number).good();
    for (unsigned long q = 0; ok && q < 3; ++q) {
      ok = pos->findAndGetFloat64(DCM_ImagePositionPatient, xyz[q], q).good();
    }
    if (!ok) bad(path, "frame " + std::to_string(f + 1) + " lacks segment or position");
    const auto m = meaning.find(number);
    if (m == meaning.end()) {
      bad(path, "frame " + std::to_string(f + 1) + " refers to segment " + std::to_string(number) +
                    ", which is not defined");
    }
    if (m->second == SegmentMeaning::kUnknown) continue;
    drawn.push_back(m->second);
    const double along = (xyz[0] - origin[0]) * normal[0] + (xyz[1] - origin[1]) * normal[1] +
                         (xyz[2] - origin[2]) * normal[2];
    const long k = std::lround(along / g.spacing[2]);
    if (k < 0 || static_cast<std::size_t>(k) >= g.size[2] ||
        std::abs(along - static_cast<double>(k) * g.spacing[2]) > 0.01 * g.spacing[2] + 1e-3) {
      bad(path, "frame " + std::to_string(f + 1) + " is not on a CT slice");
    }
    std::uint8_t value = 0;
    bool lesion_map = false;
    switch (m->second) {
      case SegmentMeaning::kRightLung: case SegmentMeaning::kLung: value = labels::kRightLung; break;
      case SegmentMeaning::kLeftLung: value = labels::kLeftLung; break;
      case SegmentMeaning::kAirway: value = labels::kAirway; break;
      case SegmentMeaning::kGroundGlass: case SegmentMeaning::kLesion:
        value = labels::kGroundGlass, lesion_map = true; break;
      case SegmentMeaning::kSolid: value = labels::kSolid, lesion_map = true; break;
      default: break;
    }
    LabelImage& map = lesion_map ? r.lesions : r.lungs;
    std::uint8_t* dst = map.data.data() + static_cast<std::size_t>(k) * g.slice_voxels();
    const std::size_t first_bit = static_cast<std::size_t>(f) * g.slice_voxels();
    for (std::size_t p = 0; p < g.slice_voxels(); ++p) {
      const std::size_t b = first_bit + p;
      if ((bits[b / 8] >> (b % 8)) & 1u) dst[p] = value;
    }
  }
  // Empty segments do not count: a binary map written by lungvol still lists all five.
  const auto present = [&](SegmentMeaning m) {
    return std::find(drawn.begin(), drawn.end(), m) != drawn.end();
  };
  r.lungs_binary = present(SegmentMeaning::kLung);
  r.lesions_binary = present(SegmentMeaning::kLesion);
  if (r.lungs_binary && (present(SegmentMeaning::kRightLung) || present(SegmentMeaning::kLeftLung))) {
    bad(path, "it holds both a lung segment without side and a right or left lung segment");
  }
  if (r.lesions_binary &&
      (present(SegmentMeaning::kGroundGlass) || present(SegmentMeaning::kSolid))) {
    bad(path, "it holds both an unsplit lesion segment and ground-glass or solid segments");
  }
  return r;
}

}  // namespace lungvol::dicomout
