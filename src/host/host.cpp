#include "host/host.hpp"

#include <poll.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <set>
#include <fmt/format.h>
#include <vector>

#include "capture/live.hpp"
#include "decode/decode.hpp"
#include "diagnose/analyzer.hpp"
#include "host/join.hpp"
#include "host/tracer.hpp"
#include "report/report.hpp"

namespace rstscope::host {
namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested.store(true); }

std::string record_line(const KernelReset& r, bool json) {
  if (json)
    return fmt::format(
        "{{\"type\":\"kernel_reset\",\"ts\":{:.6f},\"event\":\"{}\",\"src\":\"{}\",\"sport\":{},"
        "\"dst\":\"{}\",\"dport\":{},\"state\":{},\"reason\":{},\"explanation\":{}}}\n",
        static_cast<double>(r.ts_ns) / 1e9, to_string(r.event), r.src.to_string(), r.sport,
        r.dst.to_string(), r.dport, json_quote(r.state), json_quote(r.reason), json_quote(reason_words(r)));
  const auto text = [](const Address& address, uint16_t port) {
    return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                           : fmt::format("{}:{}", address.to_string(), port);
  };
  return fmt::format("{} {} > {} {} {}: {}\n", r.event == KernelReset::Event::send ? "sent" : "accepted",
                     text(r.src, r.sport), text(r.dst, r.dport),
                     r.state.empty() ? "-" : r.state, r.reason.empty() ? "-" : r.reason, reason_words(r));
}

// Joins each finding with the kernel records seen so far, then hands it to the report.
class JoiningSink : public FindingSink {
 public:
  JoiningSink(std::deque<KernelReset>& records, Reporter& report) : records_(records), report_(report) {}
  void reset(const Finding& finding) override {
    ++wire_;
    std::vector<KernelReset> candidates(records_.begin(), records_.end());
    std::vector<bool> taken(candidates.size(), false);
    for (size_t i = 0; i < candidates.size(); ++i) taken[i] = used_.count(key(candidates[i])) != 0;
    Finding joined = finding;
    if (const auto match = best_match(finding, candidates, taken, 2'000'000'000)) {
      used_.insert(key(candidates[*match]));
      joined.kernel_reason = candidates[*match].reason;
      ++joined_;
      std::string said;
      switch (compare(joined.kernel_reason, joined.cause)) {
        case Verdict::agree: ++agree_; said = "which agrees with the verdict"; break;
        case Verdict::disagree: ++disagree_; said = "which disagrees with the verdict"; break;
        case Verdict::no_opinion: said = "which says nothing about the cause"; break;
      }
      joined.evidence.push_back(fmt::format("the sending host's kernel gave reason {}, {}", joined.kernel_reason, said));
    } else {
      joined.evidence.push_back("no kernel record on this host: another host or a device in the path sent it");
    }
    report_.reset(joined);
  }
  void connection(const ConnectionSummary& summary) override { report_.connection(summary); }
  void pattern(const PatternFinding& pattern) override { report_.pattern(pattern); }

  uint64_t wire_ = 0, joined_ = 0, agree_ = 0, disagree_ = 0;

 private:
  static std::string key(const KernelReset& r) {
    return fmt::format("{}|{}|{}|{}|{}", r.ts_ns, r.src.to_string(), r.sport, r.dst.to_string(), r.dport);
  }
  std::deque<KernelReset>& records_;
  Reporter& report_;
  std::set<std::string> used_;
};

}  // namespace

int run_host(const HostOptions& options, std::FILE* out, std::FILE* err) {
  remove_stale_instances();
  ResetTracer tracer;
  std::string error;
  if (!tracer.open(error)) {
    std::fprintf(err, "rstscope host: %s\n", error.c_str());
    return 2;
  }
  LiveCapture capture;
  const bool capturing = !options.capture_interface.empty();
  if (capturing) {
    LiveOptions live;
    live.interface = options.capture_interface;
    live.filter = "tcp";
    if (!capture.open(live)) {
      std::fprintf(err, "rstscope host: cannot capture on %s: %s\n", options.capture_interface.c_str(),
                   capture.error().c_str());
      return 2;
    }
  }

  stop_requested = false;
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);

  ReportOptions report_options;
  report_options.format = options.json ? Format::json : Format::text;
  report_options.streaming = true;
  report_options.out = out;
  const auto report = make_reporter(report_options);
  std::deque<KernelReset> recent;
  JoiningSink sink(recent, *report);
  AnalyzerOptions analyzer_options;
  analyzer_options.horizon_ns = 1'000'000'000;
  Analyzer analyzer(analyzer_options, sink);
  RunStats stats;
  uint64_t kernel_count = 0;
  const auto started = std::chrono::steady_clock::now();
  Packet packet;
  Segment segment;
  auto take = [&] {
    ++stats.capture.packets;
    stats.capture.bytes += packet.caplen;
    if (decode(packet, segment, stats.decode) == DecodeResult::tcp) analyzer.add(segment);
  };
  while (!stop_requested.load()) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (options.duration_seconds > 0 && elapsed >= options.duration_seconds) break;
    for (KernelReset& record : tracer.poll(capturing ? 10 : 200)) {
      ++kernel_count;
      std::fprintf(out, "%s", record_line(record, options.json).c_str());
      recent.push_back(std::move(record));
    }
    std::fflush(out);
    if (!capturing) continue;
    // Drain what the interface has, a bounded amount per round so kernel records keep flowing.
    for (int i = 0; i < 512 && capture.next(packet, 0) == LiveCapture::Next::packet; ++i) take();
    const int64_t now = wall_clock_ns();
    analyzer.advance(capture.settled_ns(now));
    // Records older than the join window can no longer match.
    while (!recent.empty() && recent.front().ts_ns < now - 10'000'000'000) recent.pop_front();
  }
  // What was captured before the stop and not read yet.
  const int64_t stopped = wall_clock_ns();
  while (capturing && capture.next_before(packet, stopped)) take();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (capturing) {
    analyzer.finish();
    LiveDrops drops;
    if (capture.drops(drops)) {
      stats.capture.kernel_dropped = drops.kernel_dropped;
      stats.capture.interface_dropped = drops.interface_dropped;
    }
    stats.capture.inputs = 1;
    stats.track = analyzer.track_stats();
    stats.diagnose = analyzer.diagnose_stats();
    stats.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    report->finish(stats);
  }
  if (options.json)
    std::fprintf(out,
                 "{\"type\":\"host\",\"kernel_resets\":%llu,\"wire_resets\":%llu,\"joined\":%llu,"
                 "\"agreements\":%llu,\"disagreements\":%llu}\n",
                 static_cast<unsigned long long>(kernel_count), static_cast<unsigned long long>(sink.wire_),
                 static_cast<unsigned long long>(sink.joined_), static_cast<unsigned long long>(sink.agree_),
                 static_cast<unsigned long long>(sink.disagree_));
  else
    std::fprintf(out, "%llu kernel resets; %llu RSTs on the wire, %llu joined: %llu agree, %llu disagree\n",
                 static_cast<unsigned long long>(kernel_count), static_cast<unsigned long long>(sink.wire_),
                 static_cast<unsigned long long>(sink.joined_), static_cast<unsigned long long>(sink.agree_),
                 static_cast<unsigned long long>(sink.disagree_));
  return 0;
}

}  // namespace rstscope::host
