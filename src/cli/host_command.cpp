// `rstscope host`: the kernel's reason for every reset this host sends or accepts.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "host/host.hpp"

namespace rstscope::cli {

void add_host_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<host::HostOptions>();
  auto format = std::make_shared<std::string>("text");
  CLI::App* command = app.add_subcommand(
      "host", "Stream the kernel's reason for each reset this host sends or accepts (needs root)");
  command->add_option("--duration", options->duration_seconds, "Stop after this many seconds (default: Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--format", *format, "Output format")->check(CLI::IsMember({"text", "json"}));
  command->add_option("--capture", options->capture_interface,
                      "Also capture this interface, analyze it and join the verdicts with the kernel's reasons");
  command->callback([options, format, &exit_code] {
    options->json = *format == "json";
    exit_code = host::run_host(*options, stdout, stderr);
  });
}

}  // namespace rstscope::cli
