#pragma once
// lab/: reproduces each reset cause with real sockets in network namespaces, records what the
// kernel said about every RST it sent (the ground truth) and what the analyzer concludes.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/finding.hpp"
#include "host/tracer.hpp"

namespace rstscope::lab {

struct ScenarioInfo {
  std::string name;
  std::string summary;  // what it does, in one line
};
const std::vector<ScenarioInfo>& scenarios();
bool is_scenario(const std::string& name);

// One RST the lab knows about, and what its cause must be.
struct TruthRow {
  std::string origin;            // kernel (tcp_send_reset), firewall (router nft), forger (raw socket)
  host::KernelReset record;      // 4-tuple oriented as sent; reason empty when not from a kernel socket
  Cause expected = Cause::unexplained;
  std::vector<Cause> indistinct;  // causes the wire alone cannot tell from `expected`
  std::string why_indistinct;
};

enum class Outcome : uint8_t { match, indistinct, mismatch, not_on_wire };
std::string_view to_string(Outcome outcome);

struct Comparison {
  TruthRow truth;
  Outcome outcome = Outcome::not_on_wire;
  bool found = false;
  Finding finding;  // valid when found
};

// A finding across connections the scenario must produce, in one of its captures.
struct PatternExpectation {
  std::string type;  // rst_flood, syn_flood, backscatter, port_scan, blind_reset_attack
  std::string pcap;
  std::string why;   // what the capture at that point shows
};

// A pattern the analyzer found, and in which capture.
struct FoundPattern {
  std::string pcap;
  PatternFinding pattern;
};

struct ScenarioResult {
  std::string name;
  std::string pcap, truth_file;
  std::vector<std::string> actions;           // what the scenario did
  std::vector<host::KernelReset> kernel;      // the kernel's records for this scenario
  std::vector<Comparison> comparisons;
  std::vector<Finding> findings;              // every RST the analyzer judged in the pcap
  std::vector<std::string> extra_pcaps;       // further vantage points a scenario captured
  std::vector<PatternExpectation> expected_patterns;
  std::vector<FoundPattern> patterns;         // every pattern found in `pcap` and `extra_pcaps`
  std::string error;                          // setup or run failure
  bool pattern_found(const PatternExpectation& expected) const;
  // No error, no mismatch, every expected pattern found, and at least one RST on the wire
  // (or, in a scenario without RSTs, at least one expected pattern).
  bool agrees() const;
};

struct LabOptions {
  std::vector<std::string> names;  // empty: all
  std::string out_dir;             // empty: a fresh temporary directory
  bool serial = false;             // run scenarios one after another
  bool analyze = true;             // run the analyzer on each pcap
};

struct LabRun {
  std::string out_dir;
  std::string setup_error;  // set when the lab could not start (namespaces, tracefs)
  std::vector<ScenarioResult> results;
  int exit_code() const;  // 0 all agree, 1 some disagree, 2 setup error
};

LabRun run_lab(const LabOptions& options,
               const std::function<void(const ScenarioResult&)>& on_result = {});

// Analyses a pcap in-process and returns every RST finding (and, when asked, every pattern).
std::vector<Finding> analyze_pcap(const std::string& path, std::string& error,
                                  std::vector<PatternFinding>* patterns = nullptr);

// Human-readable report of one scenario, and the expected-versus-actual table.
std::string format_result(const ScenarioResult& result);
std::string format_table(const std::vector<ScenarioResult>& results);

// Whether this machine can run the lab; when not, `why` says what is missing.
bool lab_supported(std::string& why);

}  // namespace rstscope::lab
