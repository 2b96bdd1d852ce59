#pragma once
// Everything that spans connections: what the capture showed of hosts and services, the
// judgement of each RST, the duplicates, the patterns. Fed by one tracker, or by several shards
// whose reports are merged back into capture order, so it sees the same sequence either way.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "diagnose/analyzer.hpp"
#include "diagnose/patterns.hpp"
#include "diagnose/rule.hpp"
#include "track/tracker.hpp"

namespace rstscope {

// The options of each tracker when the connections are split over `shards` of them.
TrackerOptions tracker_options(const AnalyzerOptions& options, unsigned shards);

// The part of a RST's judgement that reads nothing but the RST, its connection and the
// capture's observations of hosts and services: the rules' verdicts, strongest first.
struct Prejudgement {
  std::vector<Verdict> matches;
  std::string fingerprint_sentence;  // Facts::fingerprint_sentence
  bool ttl_known = false;
};

class Diagnoser final : public TrackerSink {
 public:
  Diagnoser(const PatternThresholds& thresholds, FindingSink& sink);

  void host_packet(const Address& address, uint8_t ttl) override { observations_.host_packet(address, ttl); }
  void service_accepted(const Segment& synack) override { observations_.service_accepted(synack); }
  void service_accepted(const Observations::Accepted& accepted) { observations_.service_accepted(accepted); }
  void ended(const Connection& connection) override;
  void judge(ResetContext& context) override;
  // The prejudgement of `context` (whose host TTLs it sets). It changes nothing else, so another
  // thread may work it out while nothing is added to the observations: at the end of the
  // capture, once every host and service is in. judge() is then told it.
  void prejudge(ResetContext& context, Prejudgement& out) const;
  void judge(ResetContext& context, Prejudgement& prejudged);
  bool wants(const Connection& connection) const override { return wanted(connection); }
  // Whether ended() does anything with this connection.
  static bool wanted(const Connection& connection) { return connection.resets > 0 || Patterns::counts(connection); }
  // Reports the cross-connection patterns. Call once, at the end.
  void finish();

  const DiagnoseStats& stats() const { return diagnose_stats_; }

 private:
  struct FirstReset {
    uint64_t frame;
    Cause cause;
    Confidence confidence;
    Sender sender;
  };
  // The rest of the judgement, in capture order: repeats, the finding, the patterns.
  void conclude(ResetContext& context, Prejudgement& prejudged);
  static void add_alternative(Finding& finding, Cause cause);
  static void explain_missing(const ResetContext& context, const Prejudgement& prejudged, Finding& finding);

  FindingSink& sink_;
  Observations observations_;
  Patterns patterns_;
  DiagnoseStats diagnose_stats_;
  // What the judgement keeps of a connection's RSTs until it ends: the first of each episode
  // (later ones of it repeat its verdict) and the cause of each, for its summary.
  struct ResetsOf {
    std::vector<FirstReset> firsts;
    std::vector<Cause> causes;
  };
  std::unordered_map<uint64_t, ResetsOf> resets_;  // by connection id
  // Reused from one RST to the next, so that their vectors and strings keep their storage: most
  // RSTs of a capture are judged at its end, on one thread, where allocations were a third of
  // the time.
  Prejudgement prejudgement_;
  Finding finding_;
  ConnectionSummary summary_;  // every field is set for each one
};

}  // namespace rstscope
