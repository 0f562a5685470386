#include "dicomout/source.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcbytstr.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcvrlo.h>

#include "core/error.hpp"
#include "core/orientation.hpp"

namespace lungvol::dicomout {
namespace {

// Some writers pad strings with NUL instead of a space (CIP's GDCM 2.0 files do); DCMTK's IOD
// classes then refuse to encode the copied patient and study attributes. Trailing NULs and
// spaces are padding by definition (PS3.5 6.2), so dropping them changes no value.
void strip_string_padding(DcmDataset& ds) {
  for (unsigned long i = 0; i < ds.card(); ++i) {
    DcmElement* e = ds.getElement(i);
    auto* str = dynamic_cast<DcmByteString*>(e);
    if (!str) continue;
    char* raw = nullptr;
    if (str->getString(raw).bad() || !raw) continue;
    const Uint32 len = str->getLength();
    std::string v(raw, len);
    std::size_t end = v.size();
    while (end > 0 && (v[end - 1] == '\0' || v[end - 1] == ' ')) --end;
    if (v.find('\0') == std::string::npos) continue;  // ordinary space padding is fine
    v.resize(end);
    v.erase(std::remove(v.begin(), v.end(), '\0'), v.end());
    str->putString(v.c_str());
  }
}

struct Candidate {
  std::size_t file = 0;
  int frame = 0;
  std::array<double, 3> ipp{0, 0, 0};
};

std::string get_string(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  item.findAndGetOFStringArray(tag, v);
  return v.c_str();
}

bool get_ipp(DcmItem& item, std::array<double, 3>& out) {
  for (unsigned long i = 0; i < 3; ++i) {
    Float64 v = 0;
    if (item.findAndGetFloat64(DCM_ImagePositionPatient, v, i).bad()) return false;
    out[i] = v;
  }
  return true;
}

}  // namespace

SourceSlices read_source_slices(const io::SeriesInfo& source, const Geometry& g) {
  io::init_dcmtk();
  const std::size_t nf = source.files.size();
  std::vector<std::shared_ptr<DcmFileFormat>> files(nf);
  std::string first_error;
  const auto nfs = static_cast<std::ptrdiff_t>(nf);
  // Headers only: values longer than 4 KiB (pixel data) are not loaded.
#pragma omp parallel for schedule(dynamic)
  for (std::ptrdiff_t s = 0; s < nfs; ++s) {
    auto ff = std::make_shared<DcmFileFormat>();
    const std::string& path = source.files[static_cast<std::size_t>(s)];
    const OFCondition c = [&] {
      io::StopParsingAfterPixelData stop;  // a zero tail behind the pixels is not read again
      return ff->loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 4096);
    }();
    if (c.bad()) {
#pragma omp critical(lungvol_dicomout_source_error)
      if (first_error.empty()) first_error = "cannot read source DICOM '" + path + "': " + c.text();
    } else {
      files[static_cast<std::size_t>(s)] = ff;
    }
  }
  if (!first_error.empty()) throw Error(ExitCode::kOutput, first_error);

  SourceSlices out;
  DcmDataset& first = *files.front()->getDataset();
  strip_string_padding(first);
  out.first_dataset = files.front();
  out.files = files;
  out.study_uid = get_string(first, DCM_StudyInstanceUID);
  out.series_uid = get_string(first, DCM_SeriesInstanceUID);
  out.frame_of_reference_uid = get_string(first, DCM_FrameOfReferenceUID);
  out.patient_id = get_string(first, DCM_PatientID);
  out.sop_class_uid = get_string(first, DCM_SOPClassUID);

  // Every (file, frame) with its position.
  std::vector<Candidate> candidates;
  for (std::size_t s = 0; s < nf; ++s) {
    DcmDataset& ds = *files[s]->getDataset();
    Candidate c;
    c.file = s;
    if (get_ipp(ds, c.ipp)) {
      candidates.push_back(c);
      continue;
    }
    DcmSequenceOfItems* per_frame = nullptr;
    if (ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame).good() &&
        per_frame) {
      for (unsigned long f = 0; f < per_frame->card(); ++f) {
        DcmItem* pos_item = nullptr;
        if (per_frame->getItem(f)
                ->findAndGetSequenceItem(DCM_PlanePositionSequence, pos_item, 0)
                .good() &&
            pos_item && get_ipp(*pos_item, c.ipp)) {
          c.frame = static_cast<int>(f + 1);
          candidates.push_back(c);
        }
      }
    }
  }

  // Match each slice k to the candidate at its position: along the slice normal within 1 % of
  // the voxel size; in-plane within the tilt the reader accepted (a series whose positions
  // drift by up to kTiltTolerance x distance is read as a regular volume, so its slices lie
  // that far from the grid's own positions).
  const double tol = std::max(0.01, 0.01 * std::min({g.spacing[0], g.spacing[1], g.spacing[2]}));
  const std::array<double, 3> normal{g.direction[2], g.direction[5], g.direction[8]};
  const auto matches = [&](const Candidate& c, const std::array<double, 3>& p, double k_mm) {
    const double d[3] = {c.ipp[0] - p[0], c.ipp[1] - p[1], c.ipp[2] - p[2]};
    const double along = d[0] * normal[0] + d[1] * normal[1] + d[2] * normal[2];
    const double perp2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - along * along;
    const double in_plane = std::sqrt(std::max(0.0, perp2));
    return std::abs(along) < tol && in_plane < tol + tilt_allowance_mm(k_mm);
  };
  out.slices.resize(g.size[2]);
  std::vector<bool> used_file(nf, false);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    const auto p = g.to_physical(0, 0, static_cast<double>(k));
    const double k_mm = static_cast<double>(k) * g.spacing[2];
    const Candidate* best = nullptr;
    // Fast path: file k in slice order (single-frame series).
    if (nf == g.size[2] && k < candidates.size() && candidates[k].file == k &&
        matches(candidates[k], p, k_mm)) {
      best = &candidates[k];
    }
    for (std::size_t i = 0; !best && i < candidates.size(); ++i) {
      if (matches(candidates[i], p, k_mm)) best = &candidates[i];
    }
    if (!best) {
      throw Error(ExitCode::kOutput,
                  "no source DICOM instance lies at slice " + std::to_string(k) +
                      " of the image (was the series resampled?); cannot reference series " +
                      out.series_uid);
    }
    DcmDataset& ds = *files[best->file]->getDataset();
    SourceSlice& sl = out.slices[k];
    sl.sop_instance_uid = get_string(ds, DCM_SOPInstanceUID);
    sl.sop_class_uid = get_string(ds, DCM_SOPClassUID);
    sl.frame_number = best->frame;
    sl.ipp = best->ipp;
    if (!used_file[best->file]) {
      used_file[best->file] = true;
      out.instance_uids.push_back(sl.sop_instance_uid);
    }
  }
  return out;
}

}  // namespace lungvol::dicomout
