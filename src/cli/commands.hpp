#pragma once
// Each subcommand lives in its own file and registers itself on the application.
#include <CLI/CLI.hpp>

namespace rstscope::cli {

// Each returns the subcommand's exit status through `exit_code` once it has run.
void add_analyze_command(CLI::App& app, int& exit_code);
void add_live_command(CLI::App& app, int& exit_code);
void add_host_command(CLI::App& app, int& exit_code);
void add_lab_command(CLI::App& app, int& exit_code);

}  // namespace rstscope::cli
