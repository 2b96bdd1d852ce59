// The terminal report: a summary a person can take in at a glance, then every reset explained.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "report/report.hpp"

namespace rstscope {
namespace {

constexpr size_t top_entries = 10;

std::string endpoint_string(const Address& address, uint16_t port) {
  // IPv6 needs brackets or the port reads as one more group.
  if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), port);
  return fmt::format("{}:{}", address.to_string(), port);
}

std::string_view sender_phrase(Sender sender) {
  switch (sender) {
    case Sender::endpoint: return "sent by the endpoint";
    case Sender::path: return "sent by a device in the path";
    case Sender::offpath: return "forged by an off-path sender";
  }
  return "sent by the endpoint";
}

std::string join_frames(const std::vector<uint64_t>& frames) {
  std::string out;
  for (const uint64_t frame : frames) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}", frame);
  }
  return out;
}

// The most frequent keys first; ties by key so the output is stable.
std::vector<std::pair<std::string, uint64_t>> top(const std::map<std::string, uint64_t>& counts) {
  std::vector<std::pair<std::string, uint64_t>> entries(counts.begin(), counts.end());
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (entries.size() > top_entries) entries.resize(top_entries);
  return entries;
}

class TextReporter final : public Reporter {
 public:
  explicit TextReporter(const ReportOptions& options) : options_(options) {}

  void reset(const Finding& finding) override {
    own_by_cause_[static_cast<size_t>(finding.cause)] += 1;
    senders_[finding.src.to_string()] += 1;
    // The service is the responder's side: the RST's receiver when the originator sent it.
    const std::string service = finding.from_originator
                                    ? endpoint_string(finding.dst, finding.dport)
                                    : endpoint_string(finding.src, finding.sport);
    services_[service] += 1;
    if (options_.streaming) {
      write(render_finding(finding));
      std::fflush(options_.out);
    } else {
      findings_.push_back(finding);
    }
  }

  void connection(const ConnectionSummary&) override { connections_reset_ += 1; }

  void pattern(const PatternFinding& pattern) override {
    patterns_.push_back(pattern);
    if (options_.streaming) {
      write(paint("1", "pattern: ") + render_pattern(pattern));
      std::fflush(options_.out);
    }
  }

  void summary(const RunStats& stats) override {
    write(render_summary(stats, "rstscope: running summary"));
    std::fflush(options_.out);
  }

  void finish(const RunStats& stats) override {
    if (options_.streaming) {
      write(render_summary(stats, "rstscope: final summary"));
      std::fflush(options_.out);
      return;
    }
    std::string text = render_summary(stats, "rstscope: reset report");
    std::stable_sort(findings_.begin(), findings_.end(),
                     [](const Finding& a, const Finding& b) { return a.frame < b.frame; });
    if (findings_.empty()) {
      text += "\nNo resets found.\n";
    } else {
      text += '\n';
      text += paint("1", "Resets, in frame order") + "\n";
      for (const Finding& finding : findings_) {
        text += '\n';
        text += render_finding(finding);
      }
    }
    write(text);
    std::fflush(options_.out);
  }

 private:
  std::string paint(std::string_view code, std::string_view text) const {
    if (!options_.color) return std::string(text);
    return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
  }

  std::string_view cause_colour(const Finding& finding) const {
    if (finding.cause == Cause::forged || finding.sender == Sender::offpath) return "1;31";
    if (finding.sender == Sender::path) return "1;33";
    if (finding.cause == Cause::unexplained) return "1;35";
    return "1;36";
  }

  void write(const std::string& text) const {
    std::fwrite(text.data(), 1, text.size(), options_.out);
  }

  std::string render_finding(const Finding& finding) const {
    std::string text = fmt::format(
        "{}  {}  {} -> {}  {}\n", paint("1", fmt::format("frame {}", finding.frame)),
        format_utc(finding.ts_ns, ' ', false), endpoint_string(finding.src, finding.sport),
        endpoint_string(finding.dst, finding.dport), flags_to_string(finding.flags));
    text += fmt::format("  {}, {} confidence, {} ({}), seq {}", paint(cause_colour(finding),
                        to_string(finding.cause)), to_string(finding.confidence),
                        sender_phrase(finding.sender),
                        finding.from_originator ? "originator" : "responder",
                        to_string(finding.seq_check));
    if (finding.connection_id != 0) text += fmt::format(", connection {}", finding.connection_id);
    text += '\n';
    const std::string_view explanation =
        finding.explanation.empty() ? describe(finding.cause) : finding.explanation;
    text += fmt::format("  {}\n", printable(explanation));
    for (const std::string& sentence : finding.evidence) {
      text += fmt::format("    {} {}\n", paint("2", "-"), printable(sentence));
    }
    if (!finding.alternatives.empty()) {
      std::string names;
      for (const Cause cause : finding.alternatives) {
        if (!names.empty()) names += ", ";
        names += to_string(cause);
      }
      text += fmt::format("  could also be: {}\n", names);
    }
    if (!finding.history.empty()) text += fmt::format("  history: {}\n", printable(finding.history));
    if (finding.duplicate_of != 0) {
      text += fmt::format("  duplicate of frame {}\n", finding.duplicate_of);
    }
    if (!finding.injector.empty()) text += fmt::format("  injector: {}\n", printable(finding.injector));
    if (!finding.kernel_reason.empty()) {
      text += fmt::format("  kernel reason: {}\n", printable(finding.kernel_reason));
    }
    return text;
  }

  std::string render_pattern(const PatternFinding& pattern) const {
    std::string text = fmt::format(
        "{} on {}{}: {} in {} ({:.1f}/s), {} confidence\n", paint("1;31", printable(pattern.type)),
        printable(pattern.subject), pattern.parties.empty() ? "" : " with " + printable(pattern.parties),
        pattern.count, format_duration(pattern.last_ns - pattern.first_ns),
        pattern.rate_per_second, to_string(pattern.confidence));
    if (!pattern.explanation.empty()) text += fmt::format("      {}\n", printable(pattern.explanation));
    if (!pattern.example_frames.empty()) {
      text += fmt::format("      example frames: {}\n", join_frames(pattern.example_frames));
    }
    return text;
  }

  std::string render_summary(const RunStats& stats, std::string_view title) const {
    const CaptureStats& capture = stats.capture;
    std::string text = paint("1", title) + "\n";
    const auto line = [&](std::string_view label, const std::string& value) {
      text += fmt::format("  {:<10}  {}\n", label, value);
    };

    if (capture.packets == 0) {
      line("span", "no packets");
    } else {
      line("span", fmt::format("{} to {} UTC ({})", format_utc(capture.first_ns, ' ', false),
                               format_utc(capture.last_ns, ' ', false),
                               format_duration(capture.last_ns - capture.first_ns)));
    }
    std::string inputs = fmt::format("{} read", capture.inputs - std::min(capture.inputs,
                                                                          capture.inputs_failed));
    if (capture.inputs_failed != 0) inputs += fmt::format(", {} failed", capture.inputs_failed);
    line("inputs", inputs);
    line("packets", fmt::format("{} ({} captured)", capture.packets, format_bytes(capture.bytes)));
    line("tcp", fmt::format("{} segments in {} connection{}", stats.track.segments,
                            stats.track.connections, stats.track.connections == 1 ? "" : "s"));
    std::string resets = fmt::format("{}", stats.track.resets);
    if (stats.diagnose.duplicates != 0) {
      resets += fmt::format(" ({} repeat an earlier reset)", stats.diagnose.duplicates);
    }
    if (stats.track.resets_without_connection != 0) {
      resets += fmt::format(", {} outside any tracked connection",
                            stats.track.resets_without_connection);
    }
    if (connections_reset_ != 0) {
      resets += fmt::format(", in {} connection{}", connections_reset_,
                            connections_reset_ == 1 ? "" : "s");
    }
    line("resets", resets);

    std::vector<std::string> skipped;
    const auto skip = [&](uint64_t count, std::string_view reason) {
      if (count != 0) skipped.push_back(fmt::format("{} {}", count, reason));
    };
    skip(capture.filtered_out, "filtered out");
    skip(stats.decode.not_ip, "not IP");
    skip(stats.decode.not_tcp, "not TCP");
    skip(stats.decode.fragments, "IP fragments");
    skip(stats.decode.truncated, "truncated");
    skip(stats.decode.malformed, "malformed");
    skip(stats.decode.unsupported_link, "unsupported link type");
    std::string skipped_text;
    for (const std::string& part : skipped) {
      if (!skipped_text.empty()) skipped_text += ", ";
      skipped_text += part;
    }
    line("skipped", skipped_text.empty() ? std::string("none") : skipped_text);
    if (capture.snapped != 0) {
      line("snapped", fmt::format("{} packets cut short by the snap length", capture.snapped));
    }
    if (stats.track.evicted_idle != 0 || stats.track.evicted_pressure != 0) {
      line("evicted", fmt::format("{} idle, {} under the memory cap", stats.track.evicted_idle,
                                  stats.track.evicted_pressure));
    }
    // Live runs always show the drop counters: zero drops is news worth stating there.
    if (options_.streaming || capture.kernel_dropped != 0 || capture.interface_dropped != 0) {
      line("dropped", fmt::format("{} by the kernel, {} by the interface",
                                  capture.kernel_dropped, capture.interface_dropped));
    }
    if (stats.track.evicted_pressure != 0) {
      text += paint("1;33", fmt::format(
                                "  warning: {} connections were evicted early under the memory "
                                "cap (--max-connections); verdicts on them may be weaker.",
                                stats.track.evicted_pressure)) +
              "\n";
    }
    if (capture.kernel_dropped != 0 || capture.interface_dropped != 0) {
      text += paint("1;33", "  warning: packets were dropped before rstscope saw them; the "
                            "picture is incomplete and some verdicts may be wrong.") +
              "\n";
    }

    if (!capture.errors.empty()) {
      text += '\n';
      text += paint("1;31", "Input errors") + "\n";
      for (const InputError& error : capture.errors) {
        text += fmt::format("  {}: {}{}{}\n", printable(error.file), printable(error.message),
                            error.offset != 0 ? fmt::format(" (at byte {})", error.offset)
                                              : std::string(),
                            error.fatal ? "" : " (read on past it)");
      }
    }

    // The analyzer's counts are authoritative; the reporter's own serve when it has none yet.
    auto by_cause = stats.diagnose.by_cause;
    uint64_t total = 0;
    for (const uint64_t count : by_cause) total += count;
    if (total == 0) by_cause = own_by_cause_;
    bool any_cause = false;
    for (int index = 0; index < cause_count; ++index) {
      const uint64_t count = by_cause[static_cast<size_t>(index)];
      if (count == 0) continue;
      if (!any_cause) {
        text += '\n';
        text += paint("1", "Resets by cause") + "\n";
      }
      any_cause = true;
      const auto cause = static_cast<Cause>(index);
      text += fmt::format("  {:>6}  {:<24} {}\n", count, to_string(cause), describe(cause));
    }

    if (!services_.empty()) {
      text += '\n';
      text += paint("1", "Services that reset or were reset") + "\n";
      for (const auto& [service, count] : top(services_)) {
        text += fmt::format("  {:>6}  {}\n", count, service);
      }
    }
    if (!senders_.empty()) {
      text += '\n';
      text += paint("1", "Hosts that sent resets") + "\n";
      for (const auto& [host, count] : top(senders_)) {
        text += fmt::format("  {:>6}  {}\n", count, host);
      }
    }
    if (!patterns_.empty()) {
      text += '\n';
      text += paint("1", "Patterns across connections") + "\n";
      for (const PatternFinding& pattern : patterns_) text += "  " + render_pattern(pattern);
    }
    return text;
  }

  ReportOptions options_;
  std::vector<Finding> findings_;
  std::vector<PatternFinding> patterns_;
  std::array<uint64_t, cause_count> own_by_cause_{};
  std::map<std::string, uint64_t> services_;
  std::map<std::string, uint64_t> senders_;
  uint64_t connections_reset_ = 0;
};

}  // namespace

std::unique_ptr<Reporter> make_text_reporter(const ReportOptions& options) {
  return std::make_unique<TextReporter>(options);
}

}  // namespace rstscope
