#include "dicomout/seg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmfg/fgseg.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "dicomout/source.hpp"

namespace lungvol::dicomout {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, const OFCondition& c) {
  throw Error(ExitCode::kOutput,
              "cannot write DICOM SEG '" + path + "': " + what + " (" + c.text() + ")");
}

void check(const OFCondition& c, const std::string& path, const std::string& what) {
  if (c.bad()) fail(path, what, c);
}

CodeSequenceMacro code_macro(const Code& c) {
  return CodeSequenceMacro(c.value.c_str(), c.scheme.c_str(), c.meaning.c_str());
}

// sRGB (D65) to the DICOM-scaled CIELab triplet of RecommendedDisplayCIELabValue (PS3.3 C.10.7.1.1).
std::array<Uint16, 3> rgb_to_dicom_lab(const std::array<std::uint8_t, 3>& rgb) {
  double lin[3];
  for (int c = 0; c < 3; ++c) {
    const double v = rgb[static_cast<std::size_t>(c)] / 255.0;
    lin[c] = v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  }
  const double x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047;
  const double y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  const double z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883;
  const auto f = [](double t) {
    return t > 216.0 / 24389.0 ? std::cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0;
  };
  const double L = 116.0 * f(y) - 16.0;
  const double a = 500.0 * (f(x) - f(y));
  const double b = 200.0 * (f(y) - f(z));
  const auto clamp16 = [](double v) {
    return static_cast<Uint16>(std::lround(std::clamp(v, 0.0, 65535.0)));
  };
  return {clamp16(L * 65535.0 / 100.0), clamp16((a + 128.0) * 65535.0 / 255.0),
          clamp16((b + 128.0) * 65535.0 / 255.0)};
}

std::string generate_uid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

// Voxels of one segment in slice k.
std::size_t count_in_slice(const LabelImage& map, std::uint8_t value, std::size_t k) {
  const std::size_t n = map.geom.slice_voxels();
  const std::uint8_t* src = map.data.data() + k * n;
  std::size_t count = 0;
  for (std::size_t p = 0; p < n; ++p) count += src[p] == value;
  return count;
}

// Slice mask of one segment (1 where the segment's label sits).
void fill_slice_mask(const LabelImage& map, std::uint8_t value, std::size_t k,
                     std::vector<Uint8>& out) {
  const std::size_t n = map.geom.slice_voxels();
  const std::uint8_t* src = map.data.data() + k * n;
  for (std::size_t p = 0; p < n; ++p) out[p] = src[p] == value;
}

}  // namespace

const std::vector<SegmentDefinition>& segment_definitions() {
  static const std::vector<SegmentDefinition> defs = [] {
    std::vector<SegmentDefinition> d(kSegmentCount);
    d[0] = {kSegRightLung, "Right lung", "Right lung parenchyma (lungvol label 1)", "right_lung",
            codes::anatomical_structure(), codes::lung(), {codes::right()}, codes::chest(), {},
            {128, 174, 128}, false, labels::kRightLung};
    d[1] = {kSegLeftLung, "Left lung", "Left lung parenchyma (lungvol label 2)", "left_lung",
            codes::anatomical_structure(), codes::lung(), {codes::left()}, codes::chest(), {},
            {241, 214, 145}, false, labels::kLeftLung};
    d[2] = {kSegAirway, "Airway", "Trachea and main bronchi (lungvol label 3)", "airway",
            codes::anatomical_structure(), codes::airway_structure(), {}, codes::chest(), {},
            {182, 228, 255}, false, labels::kAirway};
    d[3] = {kSegGroundGlass, "Ground-glass opacity",
            "Ground-glass lesion voxels (lungvol lesion label 1)", "ground_glass",
            codes::morphologically_abnormal_structure(), codes::ground_glass_opacity(), {},
            codes::lung(), {}, {250, 210, 40}, true, labels::kGroundGlass};
    d[4] = {kSegSolid, "Solid lesion",
            "Solid (consolidation) lesion voxels (lungvol lesion label 2)", "solid",
            codes::morphologically_abnormal_structure(), codes::lesion(), {}, codes::lung(), {},
            {220, 50, 40}, true, labels::kSolid};
    return d;
  }();
  return defs;
}

bool has_dicom_source(const io::SeriesInfo& source, const Geometry& g) {
  return source.dicom && !source.files.empty() &&
         (source.files.size() == g.size[2] || source.files.size() == 1);
}

namespace {

// One segment to write: its definition and the label map holding it.
struct SegmentSource {
  const SegmentDefinition* def = nullptr;
  const LabelImage* map = nullptr;
  bool overlaps = false;  // its voxels may also lie in another segment (a lesion in a lung)
};

struct SegContent {
  const char* label;        // ContentLabel (a DICOM CS: upper case, digits, '_')
  const char* description;  // ContentDescription
  const char* all_empty;    // why there is nothing to write, for the error message
};

// The writer of every lungvol SEG: only segments with voxels are declared, numbered 1..n in
// the order of `segs`.
SegWriteResult write_segments(const Geometry& g, const std::vector<SegmentSource>& segs,
                              const io::SeriesInfo& source, const std::string& path,
                              const SegOptions& options, const SegContent& what) {
  io::init_dcmtk();  // DCMTK's own log lines stay off stderr
  if (!has_dicom_source(source, g)) {
    throw Error(ExitCode::kInput,
                "cannot write DICOM SEG '" + path +
                    "': the CT was not read from DICOM (or its files do not match the slices); "
                    "a SEG needs the source series to reference");
  }
  for (const auto& x : segs) {
    if (!x.map->geom.same_grid(g) || x.map->size() != g.voxel_count()) {
      throw Error(ExitCode::kOutput,
                  "cannot write DICOM SEG '" + path + "': label maps are not on the CT grid");
    }
  }
  if (g.size[0] > 65535 || g.size[1] > 65535 || g.size[2] == 0) {
    throw Error(ExitCode::kOutput, "cannot write DICOM SEG '" + path + "': unsupported size");
  }
  std::optional<SourceSlices> own;
  const SourceSlices& src =
      options.source_slices ? *options.source_slices : own.emplace(read_source_slices(source, g));

  const auto rows = static_cast<Uint16>(g.size[1]);
  const auto cols = static_cast<Uint16>(g.size[0]);
  IODGeneralEquipmentModule::EquipmentInfo equipment(
      options.software_name.c_str(), options.software_name.c_str(), "1",
      options.software_version.c_str());
  ContentIdentificationMacro content;
  check(content.setInstanceNumber("1"), path, "content identification");
  check(content.setContentLabel(what.label), path, "content identification");
  check(content.setContentDescription(what.description), path, "content identification");
  // Person Name form (family^given) avoids dciodvfy's "retired person name form" warning.
  check(content.setContentCreatorName("lungvol^"), path, "content identification");

  DcmSegmentation* raw = nullptr;
  check(DcmSegmentation::createBinarySegmentation(raw, rows, cols, equipment, content), path,
        "create segmentation");
  std::unique_ptr<DcmSegmentation> seg(raw);
  check(seg->importFromSourceImage(*src.first_dataset->getDataset()), path,
        "import patient/study/frame of reference from '" + source.files.front() + "'");
  check(seg->getSeries().setSeriesDescription(options.series_description.c_str()), path,
        "series description");
  check(seg->getSeries().setSeriesNumber(std::to_string(options.series_number).c_str()), path,
        "series number");

  const std::size_t nz = g.size[2];
  std::vector<std::size_t> counts(segs.size() * nz, 0);
#pragma omp parallel for schedule(dynamic, 8)
  for (std::ptrdiff_t f = 0; f < std::ptrdiff_t(counts.size()); ++f) {
    const SegmentSource& x = segs[std::size_t(f) / nz];
    counts[std::size_t(f)] = count_in_slice(*x.map, x.def->label_value, std::size_t(f) % nz);
  }
  const std::size_t n_frames =
      std::size_t(std::count_if(counts.begin(), counts.end(), [](std::size_t c) { return c > 0; }));
  if (n_frames == 0) {
    throw Error(ExitCode::kOutput, "cannot write DICOM SEG '" + path +
                                       "': every segment is empty (" + what.all_empty + ")");
  }
  // Only segments with voxels are declared, numbered 1..n in definition order.
  std::vector<std::uint16_t> number_of(segs.size(), 0);
  {
    std::uint16_t next = 1;
    for (std::size_t d = 0; d < segs.size(); ++d) {
      bool any = false;
      for (std::size_t k = 0; k < nz && !any; ++k) any = counts[d * nz + k] > 0;
      if (any) number_of[d] = next++;
    }
  }
  SegWriteResult result;
  result.path = path;
  const std::string algorithm = options.software_name + " " + options.software_version;
  for (std::size_t d = 0; d < segs.size(); ++d) {
    const SegmentDefinition& def = *segs[d].def;
    if (number_of[d] == 0) continue;  // empty: not declared
    DcmSegment* s = nullptr;
    check(DcmSegment::create(s, def.label.c_str(), code_macro(def.category), code_macro(def.type),
                             DcmSegTypes::SAT_AUTOMATIC, algorithm.c_str()),
          path, "segment " + def.label);
    std::unique_ptr<DcmSegment> owned(s);
    check(s->setSegmentDescription(def.description.c_str()), path, "segment description");
    for (const Code& m : def.type_modifiers) {
      s->getSegmentedPropertyTypeModifierCode().push_back(new CodeSequenceMacro(code_macro(m)));
    }
    check(s->getGeneralAnatomyCode().getAnatomicRegion().set(
              def.anatomic_region.value.c_str(), def.anatomic_region.scheme.c_str(),
              def.anatomic_region.meaning.c_str()),
          path, "anatomic region");
    const auto lab = rgb_to_dicom_lab(def.rgb);
    check(s->setRecommendedDisplayCIELabValue(lab[0], lab[1], lab[2]), path, "display colour");
    SegmentSummary summary;
    summary.number = number_of[d];
    summary.label = def.label;
    summary.tracking_id = def.tracking_id;
    summary.tracking_uid = generate_uid();
    check(s->setTrackingID(def.tracking_id.c_str()), path, "tracking id");
    check(s->setTrackingUID(summary.tracking_uid.c_str()), path, "tracking uid");
    Uint16 number = 0;
    check(seg->addSegment(s, number), path, "add segment " + def.label);
    owned.release();  // the segmentation owns it now
    if (number != summary.number) {
      throw Error(ExitCode::kOutput, "cannot write DICOM SEG '" + path + "': segment numbering");
    }
    result.segments.push_back(summary);
  }

  // Shared geometry: the CT's pixel spacing and orientation.
  const auto ds = [](double v) {
    if (std::abs(v) < 1e-9) v = 0;
    char buf[64];
    for (int prec = 12; prec > 3; --prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (std::string(buf).size() <= 16) break;
    }
    return std::string(buf);
  };
  FGPixelMeasures measures;
  check(measures.setPixelSpacing((ds(g.spacing[1]) + "\\" + ds(g.spacing[0])).c_str()), path,
        "pixel spacing");
  check(measures.setSliceThickness(ds(g.spacing[2]).c_str()), path, "slice thickness");
  check(measures.setSpacingBetweenSlices(ds(g.spacing[2]).c_str()), path, "slice spacing");
  check(seg->addForAllFrames(measures), path, "pixel measures");
  const double* d = g.direction.data();
  std::unique_ptr<FGPlaneOrientationPatient> orientation(FGPlaneOrientationPatient::createMinimal(
      ds(d[0]).c_str(), ds(d[3]).c_str(), ds(d[6]).c_str(), ds(d[1]).c_str(), ds(d[4]).c_str(),
      ds(d[7]).c_str()));
  if (!orientation) {
    throw Error(ExitCode::kOutput, "cannot write DICOM SEG '" + path + "': orientation");
  }
  check(seg->addForAllFrames(*orientation), path, "plane orientation");

  // Frames are indexed by segment, then by slice position (PS3.3 C.7.6.17.3 dimensions).
  const std::string dim_uid = generate_uid();
  IODMultiframeDimensionModule& dims = seg->getDimensions();
  check(dims.addDimensionIndex(DCM_ReferencedSegmentNumber, dim_uid.c_str(),
                               DCM_SegmentIdentificationSequence, "Segment Number"),
        path, "dimension index");
  check(dims.addDimensionIndex(DCM_ImagePositionPatient, dim_uid.c_str(),
                               DCM_PlanePositionSequence, "Image Position Patient"),
        path, "dimension index");

  // DCMTK 3.6.7 mis-shifts frames whose bit count is not a multiple of 8 when it concatenates
  // them (tests/unit/dicomout: 17 x 11 frames), so lungvol packs PixelData itself: frames in
  // addFrame order, first pixel in the least significant bit, no padding between frames
  // (PS3.5 8.1.1).
  // The frames (segment, slice) are found first, so that the packed PixelData is sized once:
  // growing it frame by frame reallocated and re-zeroed it, a fifth of the SEG's time on POPI.
  std::vector<Uint8> mask(g.slice_voxels());
  // Packed straight into the PixelData element's own (zeroed) buffer: no copy of it afterwards.
  std::size_t packed_bytes = (n_frames * mask.size() + 7) / 8;
  packed_bytes += packed_bytes % 2;  // even value length (PS3.5 7.1.1)
  if (packed_bytes >= std::size_t(0xFFFFFFFFu)) {
    throw Error(ExitCode::kOutput, "cannot write DICOM SEG '" + path + "': " +
                                       std::to_string(n_frames) + " frames exceed 4 GB of pixel data");
  }
  auto pixel_data = std::make_unique<DcmPixelData>(DcmTag(DCM_PixelData, EVR_OB));
  Uint8* packed = nullptr;
  check(pixel_data->createUint8Array(static_cast<Uint32>(packed_bytes), packed), path,
        "pixel data");
  std::size_t bit = 0;
  for (std::size_t d = 0; d < segs.size(); ++d) {
    const SegmentDefinition& def = *segs[d].def;
    const LabelImage& map = *segs[d].map;
    if (number_of[d] == 0) continue;
    const std::uint16_t seg_number = number_of[d];
    SegmentSummary& summary = *std::find_if(result.segments.begin(), result.segments.end(),
                                            [&](const SegmentSummary& x) { return x.number == seg_number; });
    for (std::size_t k = 0; k < nz; ++k) {
      const std::size_t voxels = counts[d * nz + k];
      if (voxels == 0) continue;
      fill_slice_mask(map, def.label_value, k, mask);
      summary.voxels += voxels;
      ++summary.frames;

      // The source slice's own position: with a tilt within the reader's tolerance it differs
      // slightly from the regular grid's, and the frame must lie on the slice it was drawn on.
      const auto& pos = src.slices[k].ipp;
      std::unique_ptr<FGPlanePosPatient> position(FGPlanePosPatient::createMinimal(
          ds(pos[0]).c_str(), ds(pos[1]).c_str(), ds(pos[2]).c_str()));
      FGFrameContent frame_content;
      check(frame_content.setDimensionIndexValues(seg_number, 0), path, "dimension values");
      check(frame_content.setDimensionIndexValues(static_cast<Uint32>(k + 1), 1), path,
            "dimension values");
      const SourceSlice& ref = src.slices[k];
      ImageSOPInstanceReferenceMacro* ref_macro = nullptr;
      check(ImageSOPInstanceReferenceMacro::create(ref.sop_class_uid.c_str(),
                                                   ref.sop_instance_uid.c_str(), ref_macro),
            path, "source image reference");
      if (ref.frame_number > 0) {
        // The frame of a multi-frame source (Enhanced CT). DCMTK 3.6.7's create() with frame
        // numbers fails ("Illegal call, perhaps wrong parameters") for every source frame;
        // adding the number afterwards does not.
        const OFCondition framed =
            ref_macro->addReferencedFrameNumber(static_cast<Uint16>(ref.frame_number));
        if (framed.bad()) {
          delete ref_macro;
          fail(path, "ReferencedFrameNumber " + std::to_string(ref.frame_number) +
                         " of the Enhanced CT source '" + ref.sop_instance_uid + "'",
               framed);
        }
      }
      OFVector<ImageSOPInstanceReferenceMacro> refs;
      refs.push_back(*ref_macro);
      delete ref_macro;
      std::unique_ptr<FGDerivationImage> derivation(DcmSegmentation::createDerivationImageFG(
          refs, "Segmented by lungvol from this CT slice"));
      if (!position || !derivation) {
        throw Error(ExitCode::kOutput, "cannot write DICOM SEG '" + path + "': frame groups");
      }
      OFVector<FGBase*> groups;
      groups.push_back(position.get());
      groups.push_back(&frame_content);
      groups.push_back(derivation.get());
      check(seg->addFrame(mask.data(), seg_number, groups), path,
            "frame of slice " + std::to_string(k));
      std::size_t p = 0;
      if (bit % 8 == 0) {  // frame starts on a byte: eight 0/1 mask bytes per output byte
        Uint8* out = packed + bit / 8;
        for (; p + 8 <= mask.size(); p += 8) {
          const Uint8* m = mask.data() + p;
          *out++ = static_cast<Uint8>(m[0] | (m[1] << 1) | (m[2] << 2) | (m[3] << 3) |
                                      (m[4] << 4) | (m[5] << 5) | (m[6] << 6) | (m[7] << 7));
        }
        bit += p;
      }
      for (; p < mask.size(); ++p, ++bit) {
        if (mask[p]) packed[bit / 8] = static_cast<Uint8>(packed[bit / 8] | (1u << (bit % 8)));
      }
      ++result.frames;
    }
  }

  // ReferencedSeriesSequence: every source instance, so viewers can find the CT.
  IODReferences references;
  for (const std::string& uid : src.instance_uids) {
    references.add(new IODImageReference(src.patient_id.c_str(), src.study_uid.c_str(),
                                         src.series_uid.c_str(), uid.c_str(),
                                         src.sop_class_uid.c_str()));
  }
  seg->getCommonInstanceReference().addReferences(references, src.study_uid.c_str());

  seg->setCheckDimensionsOnWrite(OFFalse);  // built consistently above; the check only warns
  DcmFileFormat file;
  check(seg->writeDataset(*file.getDataset()), path, "encode");
  // Replaces the PixelData DCMTK wrote from its own (mis-shifted) concatenation.
  const OFCondition inserted = file.getDataset()->insert(pixel_data.get(), OFTrue);
  if (inserted.good()) pixel_data.release();  // the dataset owns it now
  check(inserted, path, "pixel data");
  // Lesion voxels lie inside the lung segments: the segments overlap whenever a lesion segment
  // is present (PS3.3 C.8.20.2; DCMTK 3.6.7 has no setter for it).
  bool overlap = false;
  for (std::size_t d = 0; d < segs.size(); ++d) overlap = overlap || (segs[d].overlaps && number_of[d]);
  check(file.getDataset()->putAndInsertString(DCM_SegmentsOverlap, overlap ? "YES" : "NO"), path,
        "segments overlap");
  write_file_atomic(path, [&](const std::string& tmp) {
    check(file.saveFile(tmp.c_str(), EXS_LittleEndianExplicit), path, "save");
  });

  OFString value;
  seg->getSOPCommon().getSOPInstanceUID(value);
  result.sop_instance_uid = value.c_str();
  result.sop_class_uid = UID_SegmentationStorage;
  seg->getSeries().getSeriesInstanceUID(value);
  result.series_instance_uid = value.c_str();
  result.study_instance_uid = src.study_uid;
  result.frame_of_reference_uid = src.frame_of_reference_uid;
  result.source_series_uid = src.series_uid;
  return result;
}

}  // namespace

SegWriteResult write_dicom_seg(const Geometry& g, const LabelImage& lungs,
                               const LabelImage& lesions, const io::SeriesInfo& source,
                               const std::string& path, const SegOptions& options) {
  std::vector<SegmentSource> segs;
  for (const SegmentDefinition& def : segment_definitions()) {
    segs.push_back({&def, def.from_lesion_map ? &lesions : &lungs, def.from_lesion_map});
  }
  return write_segments(g, segs, source, path, options,
                        {"LUNGVOL_SEG", "Lungs, airway and lesions", "no lungs found"});
}

const std::vector<SegmentDefinition>& change_segment_definitions() {
  // Every class is a lesion (or the place of one) of the lung; the class is in the label,
  // description and tracking id: DICOM has no codes for "resolved" or "progressed". Colours are
  // the QC overlays' (registration/qc_images.cpp, change_colour).
  static const std::vector<SegmentDefinition> defs = [] {
    auto def = [](std::uint8_t value, const char* label, const char* description,
                  const char* tracking, std::array<std::uint8_t, 3> rgb) {
      SegmentDefinition d;
      d.number = value;
      d.label = label;
      d.description = description;
      d.tracking_id = tracking;
      d.category = codes::morphologically_abnormal_structure();
      d.type = codes::lesion();
      d.anatomic_region = codes::lung();
      d.rgb = rgb;
      d.label_value = value;
      return d;
    };
    return std::vector<SegmentDefinition>{
        def(labels::kResolved, "Resolved lesion",
            "Baseline lesion voxels without lesion at follow-up (change label 1)", "change_resolved",
            {0, 200, 0}),
        def(labels::kPersistent, "Persistent lesion",
            "Lesion voxels of the same class at baseline and follow-up (change label 2)",
            "change_persistent", {255, 220, 0}),
        def(labels::kNew, "New lesion",
            "Follow-up lesion voxels without lesion at baseline (change label 3)", "change_new",
            {255, 0, 0}),
        def(labels::kProgressed, "Progressed lesion",
            "Ground-glass at baseline, solid at follow-up (change label 4)", "change_progressed",
            {255, 0, 255}),
        def(labels::kRegressed, "Regressed lesion",
            "Solid at baseline, ground-glass at follow-up (change label 5)", "change_regressed",
            {0, 200, 255}),
    };
  }();
  return defs;
}

SegWriteResult write_change_map_seg(const Geometry& g, const LabelImage& change,
                                    const io::SeriesInfo& source, const std::string& path,
                                    const SegOptions& options) {
  std::vector<SegmentSource> segs;
  for (const SegmentDefinition& def : change_segment_definitions()) segs.push_back({&def, &change});
  return write_segments(g, segs, source, path, options,
                        {"LUNGVOL_CHANGE", "Lesion change from baseline",
                         "no lesion at baseline or follow-up"});
}

}  // namespace lungvol::dicomout
