// `rstscope lab`: reproduces each reset cause in network namespaces and checks the analyzer.
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <memory>

#include "cli/commands.hpp"
#include "lab/lab.hpp"

namespace rstscope::cli {

void add_lab_command(CLI::App& app, int& exit_code) {
  struct Options {
    std::vector<std::string> names;
    std::string out_dir;
    bool list = false;
    bool keep = false;
    bool serial = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "lab", "Reproduce each reset cause with real sockets in network namespaces (needs root)");
  command->add_option("scenario", options->names, "Scenarios to run (default: all)");
  command->add_option("--out", options->out_dir, "Directory for the pcaps and truth files");
  command->add_flag("--list", options->list, "List the scenarios and exit");
  command->add_flag("--keep", options->keep, "Keep the output directory (default when --out is given)");
  command->add_flag("--serial", options->serial, "Run the scenarios one after another");
  command->callback([options, &exit_code] {
    if (options->list) {
      for (const auto& info : lab::scenarios()) std::printf("%-24s %s\n", info.name.c_str(), info.summary.c_str());
      exit_code = 0;
      return;
    }
    lab::LabOptions lab_options;
    lab_options.names = options->names;
    lab_options.out_dir = options->out_dir;
    lab_options.serial = options->serial;
    const lab::LabRun run = lab::run_lab(lab_options, [](const lab::ScenarioResult& result) {
      std::printf("%s\n", lab::format_result(result).c_str());
      std::fflush(stdout);
    });
    if (!run.setup_error.empty()) std::fprintf(stderr, "rstscope lab: %s\n", run.setup_error.c_str());
    if (!run.results.empty()) std::printf("%s", lab::format_table(run.results).c_str());
    if (!run.out_dir.empty()) {
      if (options->out_dir.empty() && !options->keep) {
        std::error_code ec;
        std::filesystem::remove_all(run.out_dir, ec);
      } else {
        std::printf("pcaps and truth files in %s\n", run.out_dir.c_str());
      }
    }
    exit_code = run.exit_code();
  });
}

}  // namespace rstscope::cli
