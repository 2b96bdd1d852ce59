// rstscope: why was this TCP connection reset?
#include <cstdio>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"rstscope: explains every TCP reset in a capture or on a live interface"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rstscope 0.1.0");
  int exit_code = 0;
  rstscope::cli::add_analyze_command(app, exit_code);
  rstscope::cli::add_live_command(app, exit_code);
  rstscope::cli::add_host_command(app, exit_code);
  rstscope::cli::add_lab_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);
    return status == 0 ? 0 : 2;
  }
  return exit_code;
}
