// `rstscope live`: explains resets on a live interface as they happen.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <string>

#include <fmt/format.h>

#include "capture/live.hpp"
#include "cli/analysis_options.hpp"
#include "cli/commands.hpp"
#include "decode/decode.hpp"
#include "diagnose/analyzer.hpp"
#include "report/report.hpp"

namespace rstscope::cli {
namespace {

struct LiveArguments {
  std::string interface;
  std::string filter;
  std::string format = "text";
  std::string write_path;
  uint64_t rotate_megabytes = 0;
  bool force = false;
  std::string user;
  double duration_seconds = 0;
  uint64_t count = 0;
  AnalysisArguments analysis;
};

// Signal handlers only raise these flags; the capture loop acts on them.
volatile std::sig_atomic_t stop_requested = 0;
volatile std::sig_atomic_t summary_requested = 0;

extern "C" void on_stop_signal(int) { stop_requested = 1; }
extern "C" void on_summary_signal(int) { summary_requested = 1; }

void install_handler(int signal_number, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: a blocked read returns so the loop sees the flag at once.
  action.sa_flags = 0;
  sigaction(signal_number, &action, nullptr);
}

void print_error(const std::string& message) {
  std::fprintf(stderr, "rstscope: error: %s\n", message.c_str());
}

// Gives up root for `user` as tcpdump -Z does: supplementary groups, then group, then user.
bool drop_privileges(const std::string& user, std::string& error) {
  errno = 0;
  const passwd* entry = getpwnam(user.c_str());
  if (entry == nullptr) {
    error = errno != 0 ? fmt::format("cannot look up user '{}': {}", user, std::strerror(errno))
                       : fmt::format("no such user '{}'", user);
    return false;
  }
  const uid_t uid = entry->pw_uid;
  const gid_t gid = entry->pw_gid;
  if (initgroups(entry->pw_name, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
    error = fmt::format("cannot switch to user '{}': {}", user, std::strerror(errno));
    return false;
  }
  // A process that could take root back has not really dropped it.
  if (uid != 0 && setuid(0) == 0) {
    error = fmt::format("switched to user '{}' but root could be regained", user);
    return false;
  }
  return true;
}

// Gathers the counters every stage keeps into one RunStats, with the kernel's drop counters.
RunStats collect_stats(LiveCapture& capture, const CaptureStats& capture_stats,
                       const DecodeStats& decode, const Analyzer& analyzer, int64_t started_ns) {
  RunStats stats;
  stats.capture = capture_stats;
  LiveDrops drops;
  if (capture.drops(drops)) {
    stats.capture.kernel_dropped = drops.kernel_dropped;
    stats.capture.interface_dropped = drops.interface_dropped;
  }
  stats.decode = decode;
  stats.track = analyzer.track_stats();
  stats.diagnose = analyzer.diagnose_stats();
  stats.wall_seconds = static_cast<double>(wall_clock_ns() - started_ns) / 1e9;
  return stats;
}

int run_live(const LiveArguments& arguments) {
  LiveOptions capture_options;
  capture_options.interface = arguments.interface;
  capture_options.filter = arguments.filter;
  LiveCapture capture;
  if (!capture.open(capture_options)) {
    print_error(fmt::format("{}: {}", printable(arguments.interface), printable(capture.error())));
    return 2;
  }
  std::string error;

  if (!arguments.user.empty() && !drop_privileges(arguments.user, error)) {
    print_error(error);
    return 2;
  }

  // Opened after dropping root, as tcpdump does, so the files belong to the -Z user.
  std::unique_ptr<PcapDumper> dumper;
  if (!arguments.write_path.empty()) {
    dumper = std::make_unique<PcapDumper>();
    if (!dumper->open(arguments.write_path, capture.link_type(),
                      static_cast<uint32_t>(capture_options.snaplen),
                      arguments.rotate_megabytes * 1'000'000, arguments.force)) {
      print_error(fmt::format("{}: {}", printable(arguments.write_path),
                              printable(dumper->error())));
      return 2;
    }
  }

  ReportOptions report_options;
  report_options.format = arguments.format == "json" ? Format::json : Format::text;
  report_options.streaming = true;
  report_options.color = report_options.format == Format::text && isatty(STDOUT_FILENO) != 0 &&
                         std::getenv("NO_COLOR") == nullptr;
  auto reporter = make_reporter(report_options);
  Analyzer analyzer(arguments.analysis.options(), *reporter);
  DecodeStats decode_stats;
  CaptureStats capture_stats;
  capture_stats.inputs = 1;

  stop_requested = 0;
  summary_requested = 0;
  install_handler(SIGINT, on_stop_signal);
  install_handler(SIGTERM, on_stop_signal);
  install_handler(SIGUSR1, on_summary_signal);

  const int64_t started_ns = wall_clock_ns();
  const int64_t deadline_ns =
      arguments.duration_seconds > 0
          ? started_ns + static_cast<int64_t>(arguments.duration_seconds * 1e9)
          : 0;
  uint64_t seen = 0;
  bool capture_failed = false;
  Packet packet;
  Segment segment;
  // A write to the -w file failed: said once, counted as an error of the run.
  auto dumper_failed = [&](const char* consequence) {
    print_error(fmt::format("{}: {}{}", printable(dumper->current_path()), printable(dumper->error()), consequence));
    capture_stats.errors.push_back({dumper->current_path(), 0, dumper->error(), false});
    capture_failed = true;
  };
  auto take = [&] {
    ++seen;
    capture_stats.packets += 1;
    capture_stats.bytes += packet.caplen;
    if (packet.caplen < packet.origlen) capture_stats.snapped += 1;
    if (capture_stats.first_ns == 0) capture_stats.first_ns = packet.ts_ns;
    capture_stats.last_ns = packet.ts_ns;
    if (dumper && !dumper->write(packet)) {
      dumper_failed("; no longer writing packets");
      dumper.reset();
    }
    if (decode(packet, segment, decode_stats) == DecodeResult::tcp) analyzer.add(segment);
  };
  while (stop_requested == 0) {
    // A quarter second bounds how late a verdict or a signal is acted on while the link idles.
    const LiveCapture::Next result = capture.next(packet, 250);
    if (result == LiveCapture::Next::packet) {
      take();
      if (arguments.count != 0 && seen >= arguments.count) break;
    } else if (result == LiveCapture::Next::timeout) {
      // The link is idle: move the clock so waiting resets are judged now, not at the end.
      analyzer.advance(capture.settled_ns(wall_clock_ns()));
    } else if (result == LiveCapture::Next::error) {
      print_error(fmt::format("{}: {}", printable(arguments.interface),
                              printable(capture.error())));
      capture_stats.errors.push_back({arguments.interface, 0, capture.error(), true});
      capture_stats.inputs_failed = 1;
      capture_failed = true;
      break;
    } else {
      break;  // the capture ended (interface went away)
    }
    if (summary_requested != 0) {
      summary_requested = 0;
      reporter->summary(collect_stats(capture, capture_stats, decode_stats, analyzer, started_ns));
    }
    if (deadline_ns != 0 && wall_clock_ns() >= deadline_ns) break;
  }
  // What was captured before the stop and not read yet (nothing once the capture failed or ended).
  const int64_t stopped_ns = wall_clock_ns();
  while ((arguments.count == 0 || seen < arguments.count) && capture.next_before(packet, stopped_ns)) take();

  analyzer.finish();
  if (dumper && !dumper->close()) dumper_failed("");
  const RunStats stats = collect_stats(capture, capture_stats, decode_stats, analyzer, started_ns);
  capture.close();
  reporter->finish(stats);
  std::fflush(stdout);
  if (stats.capture.kernel_dropped != 0 || stats.capture.interface_dropped != 0) {
    std::fprintf(stderr,
                 "rstscope: warning: %llu packets dropped by the kernel and %llu by the "
                 "interface; the picture is incomplete\n",
                 static_cast<unsigned long long>(stats.capture.kernel_dropped),
                 static_cast<unsigned long long>(stats.capture.interface_dropped));
  }
  return capture_failed ? 2 : 0;
}

}  // namespace

void add_live_command(CLI::App& app, int& exit_code) {
  auto arguments = std::make_shared<LiveArguments>();
  CLI::App* command =
      app.add_subcommand("live", "Explain TCP resets on a live interface as they happen");
  command->add_option("-i,--interface", arguments->interface, "Interface to capture on")
      ->required();
  command->add_option("--filter", arguments->filter, "Only capture packets matching this BPF filter");
  command->add_option("--format", arguments->format, "Report format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  command->add_option("-w,--write", arguments->write_path, "Also write every packet to this pcap");
  command->add_flag("--force", arguments->force, "With -w: overwrite files that exist");
  command->add_option("-C,--file-size", arguments->rotate_megabytes,
                      "With -w: start a new file after this many megabytes (1,000,000 bytes)")
      ->check(CLI::PositiveNumber);
  command->add_option("-Z,--user", arguments->user,
                      "Drop root privileges to this user once the interface is open");
  command->add_option("--duration", arguments->duration_seconds, "Stop after this many seconds")
      ->check(CLI::PositiveNumber);
  command->add_option("--count", arguments->count, "Stop after this many packets")
      ->check(CLI::PositiveNumber);
  add_analysis_options(command, arguments->analysis);
  command->callback([arguments, &exit_code] {
    if (arguments->rotate_megabytes != 0 && arguments->write_path.empty()) {
      print_error("-C needs -w");
      exit_code = 2;
      return;
    }
    try {
      exit_code = run_live(*arguments);
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
