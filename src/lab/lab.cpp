#include "lab/lab.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <thread>

#include "capture/capture.hpp"
#include "diagnose/pipeline.hpp"
#include "host/join.hpp"
#include "lab/scenario.hpp"

namespace rstscope::lab {
namespace {

using ScenarioFunction = void (*)(Context&);
struct Entry {
  ScenarioInfo info;
  ScenarioFunction run;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {{"refused", "connect to a port where nothing listens (IPv4 and IPv6)"}, run_refused},
      {{"refused_wrong_address", "the port listens on 198.51.100.2; the client dials 198.51.100.3"},
       run_refused_wrong_address},
      {{"abort", "the server closes with SO_LINGER 0 after a request and response"}, run_abort},
      {{"abort_unread_data", "the server closes with the client's request unread"}, run_abort_unread_data},
      {{"data_after_close", "the server closes; the client sends more data afterwards"}, run_data_after_close},
      {{"half_open", "the server loses the connection silently; the client sends again"}, run_half_open},
      {{"half_open_restart", "the client restarts and opens again from the same port (RFC 5961 §4)"},
       run_half_open_restart},
      {{"listen_overflow", "backlog 1, no accept(), tcp_abort_on_overflow=1, four clients"}, run_listen_overflow},
      {{"time_wait_assassination", "an old duplicate hits the client's TIME-WAIT; the server resets it"},
       run_time_wait_assassination},
      {{"middlebox", "a router firewall resets a request that is too large"}, run_middlebox},
      {{"idle_timeout", "the router's conntrack forgets an idle flow and rejects its next segment"},
       run_idle_timeout},
      {{"buffer_overflow", "the server never reads, its window fills, then it gives up and closes"},
       run_buffer_overflow},
      {{"keepalive_timeout", "keep-alive probes unanswered (the router drops the replies)"},
       run_keepalive_timeout},
      {{"forged", "the router injects RSTs as the client: in-window, then exact"}, run_forged},
      {{"forged_exact", "the router injects one RST as the client with the exact seq"}, run_forged_exact},
      {{"forged_unsigned", "a TCP-MD5 signed session; the router injects one unsigned RST with the exact seq"},
       run_forged_unsigned},
      {{"forged_in_window", "the router injects one RST as the client, in the window but not exact"},
       run_forged_in_window},
      {{"forged_out_of_window", "the router injects one RST as the client, far outside the window"},
       run_forged_out_of_window},
      {{"blind_sweep", "40 RSTs in the client's name step through the server's window"}, run_blind_sweep},
      {{"rst_burst", "three RST/ACKs with windows w, w+1, w+2 (Great Firewall style)"}, run_rst_burst},
      {{"syn_flood", "400 SYNs from spoofed 203.0.113.0/24 sources in a fraction of a second"},
       run_syn_flood},
  };
  return table;
}

// Scenarios whose RSTs come from the router: captured on its server-side link, where they travel.
bool captured_on_router(const std::string& name) {
  for (const char* router_side : {"forged", "forged_exact", "forged_unsigned", "forged_in_window", "forged_out_of_window",
                                  "blind_sweep", "rst_burst", "syn_flood"})
    if (name == router_side) return true;
  return false;
}

std::atomic<uint32_t> port_counter{0};

// Ports differ per process and per scenario run, so concurrent labs never share a 4-tuple.
uint16_t next_port() {
  const uint32_t base = 20000 + static_cast<uint32_t>(::getpid() % 64) * 600;
  return static_cast<uint16_t>(base + (port_counter++ % 600));
}

bool in_lab(const Address& address) {
  if (address.is_v6()) return address.bytes[0] == 0x20 && address.bytes[1] == 0x01 &&
                              address.bytes[2] == 0x0d && address.bytes[3] == 0xb8;
  const auto& b = address.bytes;
  return (b[0] == 192 && b[1] == 0 && b[2] == 2) || (b[0] == 198 && b[1] == 51 && b[2] == 100) ||
         (b[0] == 203 && b[1] == 0 && b[2] == 113);
}

// Collects the tracer's records on a thread while scenarios run.
class TraceCollector {
 public:
  explicit TraceCollector(host::ResetTracer& tracer) : tracer_(tracer) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        auto records = tracer_.poll(50);
        const std::lock_guard lock(mutex_);
        for (auto& record : records)
          if (in_lab(record.src) && (in_lab(record.dst) || record.dport == 0)) records_.push_back(std::move(record));
      }
    });
  }
  ~TraceCollector() {
    stop_ = true;
    thread_.join();
  }
  std::vector<host::KernelReset> for_port(uint16_t port) {
    const std::lock_guard lock(mutex_);
    std::vector<host::KernelReset> result;
    for (const auto& record : records_)
      if (record.sport == port || record.dport == port) result.push_back(record);
    return result;
  }

 private:
  host::ResetTracer& tracer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<host::KernelReset> records_;
};

class CollectingSink : public FindingSink {
 public:
  std::vector<Finding> findings;
  void reset(const Finding& finding) override { findings.push_back(finding); }
  void connection(const ConnectionSummary&) override {}
  void pattern(const PatternFinding& found) override {
    if (patterns != nullptr) patterns->push_back(found);
  }
  std::vector<PatternFinding>* patterns = nullptr;
};

std::string causes_text(const std::vector<Cause>& causes) {
  std::string text;
  for (const Cause cause : causes) text += (text.empty() ? "" : ",") + std::string(to_string(cause));
  return text.empty() ? "-" : text;
}

std::string endpoint_text(const Address& address, uint16_t port) {
  return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                         : fmt::format("{}:{}", address.to_string(), port);
}

std::string tuple_text(const host::KernelReset& r) {
  return endpoint_text(r.src, r.sport) + " > " + endpoint_text(r.dst, r.dport);
}

// Pairs truth rows with findings on the same 4-tuple, closest in time first, then judges each.
void compare_all(ScenarioResult& result, const std::vector<WireSegment>& wire) {
  struct Candidate {
    int64_t distance;
    size_t row, finding;
  };
  std::vector<Candidate> candidates;
  for (size_t r = 0; r < result.comparisons.size(); ++r) {
    const host::KernelReset& record = result.comparisons[r].truth.record;
    for (size_t i = 0; i < result.findings.size(); ++i) {
      const Finding& f = result.findings[i];
      const int64_t distance = std::abs(f.ts_ns - record.ts_ns);
      if (distance <= 2'000'000'000 && host::same_tuple(record, f.src, f.sport, f.dst, f.dport))
        candidates.push_back({distance, r, i});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.distance < b.distance; });
  std::vector<bool> finding_taken(result.findings.size(), false);
  for (const Candidate& c : candidates) {
    Comparison& row = result.comparisons[c.row];
    if (row.found || finding_taken[c.finding]) continue;
    finding_taken[c.finding] = true;
    row.found = true;
    row.finding = result.findings[c.finding];
    row.finding.kernel_reason = row.truth.record.reason;
  }
  for (Comparison& row : result.comparisons) {
    if (!row.found) {
      // On the wire only if a RST of that 4-tuple is left over after the other rows took theirs.
      const host::KernelReset& r = row.truth.record;
      const auto on_wire = static_cast<size_t>(std::count_if(wire.begin(), wire.end(), [&](const WireSegment& s) {
        return (s.flags & 0x04) != 0 && host::same_tuple(r, s.src, s.sport, s.dst, s.dport);
      }));
      size_t claimed = 0;
      for (size_t i = 0; i < result.findings.size(); ++i)
        if (finding_taken[i] && host::same_tuple(r, result.findings[i].src, result.findings[i].sport,
                                                 result.findings[i].dst, result.findings[i].dport))
          ++claimed;
      row.outcome = on_wire > claimed ? Outcome::mismatch : Outcome::not_on_wire;
      continue;
    }
    const Finding& f = row.finding;
    const auto& alts = f.alternatives;
    if (f.cause == row.truth.expected) {
      row.outcome = Outcome::match;
    } else if (std::find(row.truth.indistinct.begin(), row.truth.indistinct.end(), f.cause) !=
                   row.truth.indistinct.end() &&
               std::find(alts.begin(), alts.end(), row.truth.expected) != alts.end()) {
      row.outcome = Outcome::indistinct;
    } else {
      row.outcome = Outcome::mismatch;
    }
  }
}

void write_truth(const ScenarioResult& result) {
  std::ofstream out(result.truth_file);
  out << "origin\tts_ns\tsrc\tsport\tdst\tdport\tstate\treason\texpected\tindistinct\tnote\n";
  for (const Comparison& row : result.comparisons) {
    const auto& r = row.truth.record;
    out << row.truth.origin << '\t' << r.ts_ns << '\t' << r.src.to_string() << '\t' << r.sport << '\t'
        << r.dst.to_string() << '\t' << r.dport << '\t' << (r.state.empty() ? "-" : r.state) << '\t'
        << (r.reason.empty() ? "-" : r.reason) << '\t' << to_string(row.truth.expected) << '\t'
        << causes_text(row.truth.indistinct) << '\t'
        << (row.truth.why_indistinct.empty() ? "-" : row.truth.why_indistinct) << '\n';
  }
}

ScenarioResult run_one(const Entry& entry, Topology& net, TraceCollector& collector,
                       const std::string& out_dir, bool analyze) {
  ScenarioResult result;
  result.name = entry.info.name;
  result.pcap = out_dir + "/" + result.name + ".pcap";
  result.truth_file = out_dir + "/" + result.name + ".truth.tsv";
  const uint16_t port = next_port();
  Context ctx{net, port, out_dir, result, {}, {}, nullptr};
  WireCapture wire;
  ctx.wire = &wire;
  const bool on_router = captured_on_router(result.name);
  std::string error;
  if (!wire.start(on_router ? net.router : net.client, on_router ? router_server_iface : client_iface,
                  fmt::format("tcp port {}", port), result.pcap, error)) {
    result.error = error;
    return result;
  }
  ctx.did(fmt::format("service port {}; capture on the {} ({})", port,
                      on_router ? "router's server-side link" : "client's link",
                      on_router ? router_server_iface : client_iface));
  entry.run(ctx);
  sleep_ms(400);  // late RSTs and trace records
  wire.stop();
  result.kernel = collector.for_port(port);
  for (const host::KernelReset& record : result.kernel) {
    if (record.event != host::KernelReset::Event::send || !ctx.expect) continue;
    const Expectation expectation = ctx.expect(record);
    Comparison row;
    row.truth.origin = "kernel";
    row.truth.record = record;
    row.truth.expected = expectation.expected;
    row.truth.indistinct = expectation.indistinct;
    row.truth.why_indistinct = expectation.why;
    result.comparisons.push_back(std::move(row));
  }
  for (TruthRow& extra : ctx.extra) {
    Comparison row;
    row.truth = std::move(extra);
    result.comparisons.push_back(std::move(row));
  }
  std::stable_sort(result.comparisons.begin(), result.comparisons.end(),
                   [](const Comparison& a, const Comparison& b) {
                     return a.truth.record.ts_ns < b.truth.record.ts_ns;
                   });
  write_truth(result);
  if (analyze) {
    std::string analyze_error;
    std::vector<PatternFinding> patterns;
    result.findings = analyze_pcap(result.pcap, analyze_error, &patterns);
    for (PatternFinding& pattern : patterns) result.patterns.push_back({result.pcap, std::move(pattern)});
    for (const std::string& pcap : result.extra_pcaps) {
      patterns.clear();
      analyze_pcap(pcap, analyze_error, &patterns);
      for (PatternFinding& pattern : patterns) result.patterns.push_back({pcap, std::move(pattern)});
    }
    if (!analyze_error.empty() && result.error.empty()) result.error = analyze_error;
  }
  compare_all(result, wire.segments());
  return result;
}

}  // namespace

const std::vector<ScenarioInfo>& scenarios() {
  static const std::vector<ScenarioInfo> list = [] {
    std::vector<ScenarioInfo> infos;
    for (const Entry& entry : entries()) infos.push_back(entry.info);
    return infos;
  }();
  return list;
}

bool is_scenario(const std::string& name) {
  return std::any_of(entries().begin(), entries().end(),
                     [&](const Entry& e) { return e.info.name == name; });
}

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::match: return "match";
    case Outcome::indistinct: return "indistinct";
    case Outcome::mismatch: return "MISMATCH";
    case Outcome::not_on_wire: return "not on wire";
  }
  return "?";
}

bool ScenarioResult::pattern_found(const PatternExpectation& expected) const {
  return std::any_of(patterns.begin(), patterns.end(), [&](const FoundPattern& found) {
    return found.pattern.type == expected.type && found.pcap == expected.pcap;
  });
}

bool ScenarioResult::agrees() const {
  if (!error.empty()) return false;
  bool any = false;
  for (const Comparison& row : comparisons) {
    if (row.outcome == Outcome::mismatch) return false;
    if (row.outcome == Outcome::match || row.outcome == Outcome::indistinct) any = true;
  }
  for (const PatternExpectation& expected : expected_patterns)
    if (!pattern_found(expected)) return false;
  return any || (comparisons.empty() && !expected_patterns.empty());
}

int LabRun::exit_code() const {
  if (!setup_error.empty()) return 2;
  for (const ScenarioResult& result : results)
    if (!result.agrees()) return 1;
  return 0;
}

std::vector<Finding> analyze_pcap(const std::string& path, std::string& error,
                                  std::vector<PatternFinding>* patterns) {
  CaptureSet capture;
  if (!capture.add_path(path)) {
    error = fmt::format("cannot read {}", path);
    return {};
  }
  CollectingSink sink;
  sink.patterns = patterns;
  analyze_capture(capture, AnalyzerOptions{}, sink);
  return std::move(sink.findings);
}

bool lab_supported(std::string& why) {
  if (::geteuid() != 0) {
    why = "the lab needs root (network namespaces, nftables, tracefs)";
    return false;
  }
  if (host::tracefs_root(why).empty()) return false;
  Namespace probe;
  if (!probe.create(fmt::format("{}{}-probe", namespace_prefix, ::getpid()), why)) return false;
  return true;
}

LabRun run_lab(const LabOptions& options,
               const std::function<void(const ScenarioResult&)>& on_result) {
  LabRun run;
  const InterruptGuard guard;
  std::vector<const Entry*> selected;
  for (const Entry& entry : entries())
    if (options.names.empty() ||
        std::find(options.names.begin(), options.names.end(), entry.info.name) != options.names.end())
      selected.push_back(&entry);
  for (const std::string& name : options.names)
    if (!is_scenario(name)) run.setup_error = fmt::format("unknown scenario '{}'", name);
  if (!run.setup_error.empty()) return run;

  std::error_code ec;
  if (options.out_dir.empty()) {
    std::string pattern =
        (std::filesystem::temp_directory_path(ec) / "rstscope-lab-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      run.setup_error = "cannot create a temporary directory";
      return run;
    }
    run.out_dir = pattern;
  } else {
    run.out_dir = options.out_dir;
    std::filesystem::create_directories(run.out_dir, ec);
    if (ec) {
      run.setup_error = fmt::format("cannot create {}: {}", run.out_dir, ec.message());
      return run;
    }
  }

  host::remove_stale_instances();
  host::ResetTracer tracer;
  if (!tracer.open(run.setup_error)) return run;
  Topology net;
  if (!net.create(run.setup_error)) return run;
  // The first IPv6 packets wait for neighbour discovery on each hop: resolve them before timing matters.
  for (const char* ip : {server_v6, server_v4}) {
    int code = 0;
    connect_to(net.client, ip, 9, code, 3000);
  }
  TraceCollector collector(tracer);

  std::mutex mutex;
  const auto finish = [&](ScenarioResult result) {
    const std::lock_guard lock(mutex);
    if (on_result) on_result(result);
    run.results.push_back(std::move(result));
  };
  if (options.serial) {
    for (const Entry* entry : selected) {
      if (interrupted.load()) break;
      finish(run_one(*entry, net, collector, run.out_dir, options.analyze));
    }
  } else {
    std::vector<std::thread> threads;
    for (const Entry* entry : selected)
      threads.emplace_back([&, entry] { finish(run_one(*entry, net, collector, run.out_dir, options.analyze)); });
    for (std::thread& thread : threads) thread.join();
    // Report in the table's order, whatever order they finished in.
    std::sort(run.results.begin(), run.results.end(), [&](const auto& a, const auto& b) {
      const auto index = [&](const std::string& name) {
        for (size_t i = 0; i < entries().size(); ++i)
          if (entries()[i].info.name == name) return i;
        return entries().size();
      };
      return index(a.name) < index(b.name);
    });
  }
  if (interrupted.load()) run.setup_error = "interrupted";
  return run;
}

std::string format_result(const ScenarioResult& result) {
  std::string out = fmt::format("== {}\n", result.name);
  for (const std::string& action : result.actions) out += fmt::format("   did: {}\n", action);
  for (const host::KernelReset& record : result.kernel)
    out += fmt::format("   kernel: {} {} state={} reason={}: {}\n", host::to_string(record.event),
                       tuple_text(record), record.state.empty() ? "-" : record.state,
                       record.reason.empty() ? "-" : record.reason, host::reason_words(record));
  for (const Comparison& row : result.comparisons) {
    out += fmt::format("   rst {} from {}{}: expected {}, analyzer {}{} -> {}\n", tuple_text(row.truth.record),
                       row.truth.origin,
                       row.truth.record.reason.empty() ? "" : " (" + row.truth.record.reason + ")",
                       to_string(row.truth.expected),
                       row.found ? std::string(to_string(row.finding.cause)) : std::string("none"),
                       row.found ? fmt::format(" [{}; alternatives {}]", to_string(row.finding.confidence),
                                               causes_text(row.finding.alternatives))
                                 : "",
                       to_string(row.outcome));
    if (row.outcome == Outcome::indistinct)
      out += fmt::format("       wire alone cannot tell {} from {}: {}\n", to_string(row.truth.expected),
                         to_string(row.finding.cause), row.truth.why_indistinct);
  }
  for (const FoundPattern& found : result.patterns)
    out += fmt::format("   pattern {} on {} in {}: {} [{}]\n", found.pattern.type, found.pattern.subject,
                       std::filesystem::path(found.pcap).filename().string(), found.pattern.explanation,
                       to_string(found.pattern.confidence));
  for (const PatternExpectation& expected : result.expected_patterns)
    out += fmt::format("   expected pattern {} in {}: {} ({})\n", expected.type,
                       std::filesystem::path(expected.pcap).filename().string(),
                       result.pattern_found(expected) ? "found" : "MISSING", expected.why);
  if (!result.error.empty()) out += fmt::format("   error: {}\n", result.error);
  out += fmt::format("   pcap: {}\n   verdict: {}\n", result.pcap, result.agrees() ? "agree" : "DISAGREE");
  return out;
}

std::string format_table(const std::vector<ScenarioResult>& results) {
  std::string out = fmt::format("{:<24} {:<9} {:<22} {:<24} {:<24} {}\n", "scenario", "origin",
                                "kernel reason", "expected", "analyzer", "outcome");
  size_t agreeing = 0;
  for (const ScenarioResult& result : results) {
    if (result.agrees()) ++agreeing;
    for (const PatternExpectation& expected : result.expected_patterns)
      out += fmt::format("{:<24} {:<9} {:<22} {:<24} {:<24} {}\n", result.name, "pattern", "-", expected.type,
                         result.pattern_found(expected) ? expected.type : std::string("none"),
                         result.pattern_found(expected) ? "match" : "MISSING");
    if (result.comparisons.empty() && result.expected_patterns.empty())
      out += fmt::format("{:<24} {:<9} {:<22} {:<24} {:<24} {}\n", result.name, "-", "-", "-", "-",
                         result.error.empty() ? "no RST seen" : "error: " + result.error);
    for (const Comparison& row : result.comparisons)
      out += fmt::format("{:<24} {:<9} {:<22} {:<24} {:<24} {}\n", result.name, row.truth.origin,
                         row.truth.record.reason.empty() ? "-" : row.truth.record.reason,
                         to_string(row.truth.expected),
                         row.found ? to_string(row.finding.cause) : std::string_view("none"),
                         to_string(row.outcome));
  }
  out += fmt::format("lab agreement: {}/{} scenarios\n", agreeing, results.size());
  return out;
}

}  // namespace rstscope::lab
