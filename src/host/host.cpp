#include "host/host.hpp"

#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <set>
#include <fmt/format.h>
#include <vector>

#include "decode/decode.hpp"
#include "diagnose/analyzer.hpp"
#include "host/join.hpp"
#include "host/tracer.hpp"

namespace rstscope::host {
namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested.store(true); }

std::string record_line(const KernelReset& r, bool json) {
  if (json)
    return fmt::format(
        "{{\"type\":\"kernel_reset\",\"ts\":{:.6f},\"event\":\"{}\",\"src\":\"{}\",\"sport\":{},"
        "\"dst\":\"{}\",\"dport\":{},\"state\":\"{}\",\"reason\":\"{}\",\"explanation\":\"{}\"}}\n",
        static_cast<double>(r.ts_ns) / 1e9, to_string(r.event), r.src.to_string(), r.sport,
        r.dst.to_string(), r.dport, json_escape(r.state), json_escape(r.reason),
        json_escape(reason_words(r)));
  const auto text = [](const Address& address, uint16_t port) {
    return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                           : fmt::format("{}:{}", address.to_string(), port);
  };
  return fmt::format("{} {} > {} {} {}: {}\n", r.event == KernelReset::Event::send ? "sent" : "accepted",
                     text(r.src, r.sport), text(r.dst, r.dport),
                     r.state.empty() ? "-" : r.state, r.reason.empty() ? "-" : r.reason, reason_words(r));
}

// Joins each finding with the kernel records seen so far, as they arrive.
class JoiningSink : public FindingSink {
 public:
  JoiningSink(std::deque<KernelReset>& records, bool json, std::FILE* out)
      : records_(records), json_(json), out_(out) {}
  void reset(const Finding& finding) override {
    ++wire_;
    std::vector<KernelReset> candidates(records_.begin(), records_.end());
    std::vector<bool> taken(candidates.size(), false);
    for (size_t i = 0; i < candidates.size(); ++i) taken[i] = used_.count(key(candidates[i])) != 0;
    Finding joined = finding;
    std::string verdict = "no kernel record (sent by another host or the path)";
    if (const auto match = best_match(finding, candidates, taken, 2'000'000'000)) {
      used_.insert(key(candidates[*match]));
      joined.kernel_reason = candidates[*match].reason;
      ++joined_;
      switch (compare(joined.kernel_reason, joined.cause)) {
        case Verdict::agree: ++agree_; verdict = "agrees"; break;
        case Verdict::disagree: ++disagree_; verdict = "disagrees"; break;
        case Verdict::no_opinion: verdict = "kernel reason says nothing about the cause"; break;
      }
    }
    if (json_)
      std::fprintf(out_, "%s",
                   fmt::format("{{\"type\":\"reset\",\"frame\":{},\"ts\":{:.6f},\"src\":\"{}\",\"sport\":{},"
                               "\"dst\":\"{}\",\"dport\":{},\"cause\":\"{}\",\"confidence\":\"{}\","
                               "\"kernel_reason\":\"{}\",\"join\":\"{}\"}}\n",
                               joined.frame, static_cast<double>(joined.ts_ns) / 1e9, joined.src.to_string(),
                               joined.sport, joined.dst.to_string(), joined.dport, to_string(joined.cause),
                               to_string(joined.confidence), json_escape(joined.kernel_reason),
                               json_escape(verdict))
                       .c_str());
    else
      std::fprintf(out_, "%s",
                   fmt::format("wire RST frame {} {}:{} > {}:{}: {} ({}); kernel {}: {}\n", joined.frame,
                               joined.src.to_string(), joined.sport, joined.dst.to_string(), joined.dport,
                               to_string(joined.cause), to_string(joined.confidence),
                               joined.kernel_reason.empty() ? "-" : joined.kernel_reason, verdict)
                       .c_str());
    std::fflush(out_);
  }
  void connection(const ConnectionSummary&) override {}
  void pattern(const PatternFinding&) override {}

  uint64_t wire_ = 0, joined_ = 0, agree_ = 0, disagree_ = 0;

 private:
  static std::string key(const KernelReset& r) {
    return fmt::format("{}|{}|{}|{}|{}", r.ts_ns, r.src.to_string(), r.sport, r.dst.to_string(), r.dport);
  }
  std::deque<KernelReset>& records_;
  bool json_;
  std::FILE* out_;
  std::set<std::string> used_;
};

}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out;
}

int run_host(const HostOptions& options, std::FILE* out, std::FILE* err) {
  remove_stale_instances();
  ResetTracer tracer;
  std::string error;
  if (!tracer.open(error)) {
    std::fprintf(err, "rstscope host: %s\n", error.c_str());
    return 2;
  }
  pcap_t* handle = nullptr;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  if (!options.capture_interface.empty()) {
    handle = pcap_create(options.capture_interface.c_str(), errbuf);
    if (handle != nullptr) {
      pcap_set_snaplen(handle, 262144);
      pcap_set_immediate_mode(handle, 1);
      pcap_set_timeout(handle, 20);
      if (pcap_activate(handle) < 0) {
        std::snprintf(errbuf, sizeof errbuf, "%s", pcap_geterr(handle));
        pcap_close(handle);
        handle = nullptr;
      }
    }
    bpf_program program{};
    if (handle != nullptr && pcap_compile(handle, &program, "tcp", 1, PCAP_NETMASK_UNKNOWN) == 0) {
      pcap_setfilter(handle, &program);
      pcap_freecode(&program);
    }
    if (handle == nullptr) {
      std::fprintf(err, "rstscope host: cannot capture on %s: %s\n", options.capture_interface.c_str(), errbuf);
      return 2;
    }
    pcap_setnonblock(handle, 1, errbuf);
  }

  stop_requested = false;
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);

  std::deque<KernelReset> recent;
  JoiningSink sink(recent, options.json, out);
  AnalyzerOptions analyzer_options;
  analyzer_options.horizon_ns = 1'000'000'000;
  Analyzer analyzer(analyzer_options, sink);
  DecodeStats decode_stats;
  uint64_t frame = 0, kernel_count = 0;
  struct Feed {
    Analyzer* analyzer;
    DecodeStats* stats;
    uint64_t* frame;
    int link_type;
  } feed{&analyzer, &decode_stats, &frame, handle != nullptr ? pcap_datalink(handle) : 0};
  const auto started = std::chrono::steady_clock::now();
  while (!stop_requested.load()) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (options.duration_seconds > 0 && elapsed >= options.duration_seconds) break;
    for (KernelReset& record : tracer.poll(handle != nullptr ? 10 : 200)) {
      ++kernel_count;
      std::fprintf(out, "%s", record_line(record, options.json).c_str());
      recent.push_back(std::move(record));
    }
    std::fflush(out);
    if (handle == nullptr) continue;
    pcap_dispatch(
        handle, 512,
        [](u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
          auto* f = reinterpret_cast<Feed*>(user);
          Packet packet;
          packet.ts_ns = static_cast<int64_t>(header->ts.tv_sec) * 1'000'000'000 +
                         static_cast<int64_t>(header->ts.tv_usec) * 1000;
          packet.link_type = static_cast<uint32_t>(f->link_type);
          packet.data = bytes;
          packet.caplen = header->caplen;
          packet.origlen = header->len;
          packet.frame = ++*f->frame;
          Segment segment;
          if (decode(packet, segment, *f->stats) == DecodeResult::tcp) f->analyzer->add(segment);
        },
        reinterpret_cast<u_char*>(&feed));
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    analyzer.advance(now);
    // Records older than the join window can no longer match.
    while (!recent.empty() && recent.front().ts_ns < now - 10'000'000'000) recent.pop_front();
  }
  if (handle != nullptr) {
    analyzer.finish();
    pcap_close(handle);
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (options.json)
    std::fprintf(out,
                 "{\"type\":\"stats\",\"kernel_resets\":%llu,\"wire_resets\":%llu,\"joined\":%llu,"
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
