// `rstscope analyze`: explains every reset in one or more capture files.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <algorithm>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "capture/capture.hpp"
#include "cli/analysis_options.hpp"
#include "cli/commands.hpp"
#include "diagnose/pipeline.hpp"
#include "report/report.hpp"

namespace rstscope::cli {
namespace {

struct AnalyzeArguments {
  std::vector<std::string> captures;
  std::string format = "text";
  std::string filter;
  std::string reader = "fast";
  std::vector<std::string> fail_on;
  std::string color = "auto";
  std::string output;
  bool force = false;
  AnalysisArguments analysis;
  bool no_progress = false;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
};


// Forwards to the reporter and remembers whether a --fail-on cause or pattern was seen.
class FailOnSink final : public FindingSink {
 public:
  FailOnSink(Reporter& reporter, std::set<Cause> causes, std::set<std::string> patterns)
      : reporter_(reporter), causes_(std::move(causes)), patterns_(std::move(patterns)) {}

  void reset(const Finding& finding) override {
    if (causes_.count(finding.cause) != 0) matched_ = true;
    reporter_.reset(finding);
  }
  void connection(const ConnectionSummary& summary) override { reporter_.connection(summary); }
  void pattern(const PatternFinding& pattern) override {
    if (patterns_.count(pattern.type) != 0) matched_ = true;
    reporter_.pattern(pattern);
  }
  bool matched() const { return matched_; }

 private:
  Reporter& reporter_;
  std::set<Cause> causes_;
  std::set<std::string> patterns_;
  bool matched_ = false;
};

// One status line on stderr, rewritten in place no more than four times a second.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}

  void update(const RunStats& so_far) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    shown_ = true;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(so_far.capture.packets) / elapsed : 0;
    std::fprintf(stderr, "\r%s\x1b[K",
                 fmt::format("{} packets, {:.1f} MB, {:.0f} packets/s, {} resets",
                             so_far.capture.packets,
                             static_cast<double>(so_far.capture.bytes) / 1e6, rate,
                             so_far.track.resets)
                     .c_str());
    std::fflush(stderr);
  }

  void clear() {
    if (!shown_) return;
    std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

void print_error(const std::string& message) {
  std::fprintf(stderr, "rstscope: error: %s\n", message.c_str());
}

int run_analyze(const AnalyzeArguments& arguments) {
  // Validate --fail-on before any work: a typo must not pass silently as "nothing found".
  std::set<Cause> fail_causes;
  std::set<std::string> fail_patterns;
  for (const std::string& name : arguments.fail_on) {
    if (name.empty()) continue;
    if (const auto cause = cause_from_string(name)) {
      fail_causes.insert(*cause);
    } else if (is_pattern_type(name)) {
      fail_patterns.insert(name);
    } else {
      std::string known;
      for (int index = 0; index < cause_count; ++index) {
        known += fmt::format("{}{}", known.empty() ? "" : ", ", to_string(static_cast<Cause>(index)));
      }
      for (const auto type : pattern_types()) known += fmt::format(", {}", type);
      print_error(fmt::format("--fail-on: unknown cause or pattern '{}' (known: {})",
                              printable(name), known));
      return 2;
    }
  }

  ReportOptions report_options;
  report_options.format = arguments.format == "json"  ? Format::json
                          : arguments.format == "csv" ? Format::csv
                                                      : Format::text;
  std::FILE* output = stdout;
  if (!arguments.output.empty() && arguments.output != "-") {
    // "x" (C11) refuses an existing file, so a report never silently replaces the user's data.
    output = std::fopen(arguments.output.c_str(), arguments.force ? "w" : "wx");
    if (output == nullptr) {
      if (errno == EEXIST) {
        print_error(fmt::format("{} already exists; add --force to overwrite it",
                                printable(arguments.output)));
      } else {
        print_error(fmt::format("cannot write {}: {}", printable(arguments.output),
                                std::strerror(errno)));
      }
      return 2;
    }
  }
  const bool output_is_terminal = isatty(fileno(output)) != 0;
  // A report of many findings is written in large blocks, not stdio's default 4 KiB: on the
  // benchmark capture (29 MB of json) that is 450 writes instead of 7,188, and 1-2 % less CPU
  // (256 KiB measured the same, and costs a byte more of peak RSS per connection).
  // The buffer lives as long as the program, since stdout is flushed last at exit.
  static char output_buffer[64u << 10];
  if (!output_is_terminal) std::setvbuf(output, output_buffer, _IOFBF, sizeof output_buffer);
  report_options.color = arguments.color == "always" ||
                         (arguments.color == "auto" && output_is_terminal &&
                          std::getenv("NO_COLOR") == nullptr);
  report_options.out = output;

  CaptureOptions capture_options;
  capture_options.filter = arguments.filter;
  if (arguments.reader == "libpcap") capture_options.pcap_reader = PcapReaderChoice::libpcap;
  capture_options.read_ahead = arguments.threads > 1;
  capture_options.map_file = arguments.reader != "read";
  // With threads busy beside the reader, every hand-back of the mapping's pages stops their
  // cores to flush their TLBs. Two threads on the benchmark capture, median wall of 11
  // interleaved runs: 0.86 s handing back every 512 KiB, 0.76 s every 1.5 MiB, 0.73 s every
  // 8.5 MiB, and 0.80 s with read() instead of the mapping.
  if (arguments.threads > 1) capture_options.mapped_release_step = 4u << 20;
  CaptureSet capture(capture_options);
  for (const std::string& path : arguments.captures) capture.add_path(path);

  const AnalyzerOptions analyzer_options = arguments.analysis.options();

  auto reporter = make_reporter(report_options);
  FailOnSink sink(*reporter, fail_causes, fail_patterns);
  ProgressLine progress(!arguments.no_progress && isatty(STDERR_FILENO) != 0);
  const RunStats stats = analyze_capture(capture, analyzer_options, sink,
                                         [&](const RunStats& so_far) { progress.update(so_far); },
                                         arguments.threads);
  progress.clear();
  reporter->finish(stats);

  bool input_failed = stats.capture.inputs_failed != 0;
  for (const InputError& error : stats.capture.errors) {
    // Also on stderr, so the error is seen when stdout goes to a file or a pipe.
    std::string where = error.offset != 0 ? fmt::format(" (at byte {})", error.offset) : "";
    std::fprintf(stderr, "rstscope: %s: %s: %s%s\n", error.fatal ? "error" : "warning",
                 printable(error.file).c_str(), printable(error.message).c_str(), where.c_str());
    if (error.fatal) input_failed = true;
  }

  bool write_failed = std::fflush(output) != 0 || std::ferror(output) != 0;
  if (output != stdout && std::fclose(output) != 0) write_failed = true;
  if (write_failed) {
    print_error(fmt::format("writing the report failed: {}", std::strerror(errno)));
    return 2;
  }
  if (input_failed) return 2;
  return sink.matched() ? 1 : 0;
}

}  // namespace

void add_analyze_command(CLI::App& app, int& exit_code) {
  auto arguments = std::make_shared<AnalyzeArguments>();
  CLI::App* command = app.add_subcommand("analyze", "Explain every TCP reset in capture files");
  command->add_option("capture", arguments->captures,
                      "Capture file (pcap, pcapng, .gz, .zst), a directory of them, or - for "
                      "standard input")
      ->required();
  command->add_option("--format", arguments->format, "Report format")
      ->check(CLI::IsMember({"text", "json", "csv"}))
      ->capture_default_str();
  command->add_option("--filter", arguments->filter, "Only read packets matching this BPF filter");
  // Hidden: reads classic pcap through libpcap, the reference the own reader is checked against,
  // or with the own reader but read() into its buffer where it would map the file.
  command->add_option("--reader", arguments->reader, "Classic pcap reader")
      ->check(CLI::IsMember({"fast", "read", "libpcap"}))
      ->group("");
  command->add_option("--fail-on", arguments->fail_on,
                      "Exit with status 1 when a reset of one of these causes (or a pattern of "
                      "these types) is found; comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  command->add_option("--color", arguments->color, "Colour the text report")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  command->add_option("-o,--output", arguments->output, "Write the report to FILE");
  command->add_flag("--force", arguments->force, "Let -o overwrite an existing file");
  add_analysis_options(command, arguments->analysis);
  command->add_flag("--no-progress", arguments->no_progress, "No progress line on stderr");
  command->add_option("--threads", arguments->threads,
                      "Threads: with 2 or more, one reads and decodes and the others follow the "
                      "connections, split by a hash of their addresses and ports (default: the "
                      "machine's cores; the findings are the same)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->callback([arguments, &exit_code] {
    try {
      exit_code = run_analyze(*arguments);
    } catch (const std::bad_alloc&) {
      print_error("out of memory (connection state is reserved for --max-connections " +
                  std::to_string(arguments->analysis.max_connections) + " at the start: lower it)");
      exit_code = 2;
    } catch (const std::exception& error) {
      print_error(error.what());
      exit_code = 2;
    }
  });
}

}  // namespace rstscope::cli
