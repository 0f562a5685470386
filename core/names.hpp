#pragma once
// Names that come from manifests, schedules or DICOM headers and end up in file names or
// outputs: what makes them safe (docs/batch.md, "Names"; docs/reliability.md).
#include <cstddef>
#include <string>

namespace lungvol {

// A name that becomes one folder or file name component under an output folder (subject,
// visit, arm): at most kMaxNameBytes bytes, not empty, not starting with '.', no leading or
// trailing blank, no '/', '\\', control character (newline, tab, DEL included) and none of
// : * ? " < > | (names that Windows and SMB shares cannot hold). Returns the problem, "" when
// the name is usable.
inline constexpr std::size_t kMaxNameBytes = 100;
std::string path_component_problem(const std::string& name);

// A DICOM UID (VR UI, PS3.5 9.1): 1-64 characters, digits and dots only, no empty component.
// Returns the problem, "" when valid.
std::string uid_problem(const std::string& uid);
// A valid UID that breaks the rule "no leading zero in a component" (some scanners write
// them): the warning text, "" when there is nothing to say.
std::string uid_warning(const std::string& uid);

// The text as one quoted line for messages: control characters shown as \n, \t, \xHH.
std::string printable(const std::string& text, std::size_t max_bytes = 120);

}  // namespace lungvol
