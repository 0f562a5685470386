#include <iostream>

#include "apps/command.hpp"
#include "core/protocol.hpp"

namespace lungvol::app {

Action add_protocols_command(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("protocols", "list the built-in measurement protocols");
  auto show = std::make_shared<std::string>();
  cmd->add_option("--show", *show,
                  "print every setting in effect of one protocol (name or file), as TOML");
  return [show]() {
    auto print = [](const Protocol& p) {
      std::cout << p.name << " " << p.version << "  (" << p.source_path << ")\n  "
                << p.description << "\n  lesion [" << p.lesion.low_hu() << ", "
                << p.lesion.high_hu() << ") HU, split " << p.lesion.split_hu()
                << " HU, min lesion " << p.lesion.min_lesion_mm3 << " mm3\n";
      for (const auto& c : p.classes) {
        std::cout << "    " << c.name << " [" << c.band.lo_hu << ", " << c.band.hi_hu << ")\n";
      }
      std::cout << "  sha256 " << p.sha256 << "\n";
    };
    if (!show->empty()) {
      std::cout << describe_protocol(load_protocol(*show));
      return 0;
    }
    for (const auto& p : list_builtin_protocols()) print(p);
    return 0;
  };
}

}  // namespace lungvol::app
