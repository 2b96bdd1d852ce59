// The terminal report: a summary a person can take in at a glance, then every reset explained.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

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

// The findings of a report whose summary goes first, rendered as they come and kept until the
// end in an unnamed temporary file, so that memory does not grow with the number of resets (a
// capture can hold millions); in memory only when no temporary file can be written. What stays
// in memory is each finding's frame and place, to write them in frame order, as they nearly
// always come already.
class FindingSpool {
 public:
  FindingSpool() = default;
  FindingSpool(const FindingSpool&) = delete;
  FindingSpool& operator=(const FindingSpool&) = delete;
  ~FindingSpool() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool empty() const { return places_.empty(); }

  void add(uint64_t frame, const std::string& text) {
    if (!opened_) {
      opened_ = true;
      fd_ = open_temporary();
    }
    in_order_ = in_order_ && (places_.empty() || frame >= places_.back().frame);
    places_.push_back({frame, size_});
    size_ += text.size();
    if (fd_ < 0) {
      memory_ += text;
      return;
    }
    pending_ += text;
    if (pending_.size() >= write_bytes) write_pending();
  }

  // Writes every finding to `out` in frame order (those of one frame in the order they came).
  void write_in_frame_order(std::FILE* out) {
    if (fd_ >= 0) write_pending();
    if (in_order_) {
      copy(out, 0, size_);
      return;
    }
    std::vector<Place> order = places_;
    std::stable_sort(order.begin(), order.end(), [](const Place& a, const Place& b) { return a.frame < b.frame; });
    for (const Place& place : order) copy(out, place.offset, end_of(place));
  }

 private:
  struct Place {
    uint64_t frame;
    uint64_t offset;  // of its text in the spool
  };
  static constexpr size_t write_bytes = 256u << 10;  // gathered before each write to the file

  // An unnamed file in $TMPDIR (else /tmp), gone when closed; -1 when none can be made.
  static int open_temporary() {
    const char* directory = std::getenv("TMPDIR");
    std::string path = std::string(directory != nullptr && *directory != '\0' ? directory : "/tmp") +
                       "/rstscope-report-XXXXXX";
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(path.c_str());
    return fd;
  }

  // Moves the gathered text into the file; if the file takes no more (a full disk), the spool
  // moves into memory with all it holds.
  void write_pending() {
    size_t done = 0;
    while (done < pending_.size()) {
      const ssize_t wrote = ::write(fd_, pending_.data() + done, pending_.size() - done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) break;
      done += static_cast<size_t>(wrote);
    }
    written_ += done;
    pending_.erase(0, done);
    if (!pending_.empty()) to_memory();
  }

  void to_memory() {
    memory_.assign(written_, '?');  // '?' stays where the file cannot be read back, if anywhere
    read_at(memory_.data(), 0, written_);
    memory_ += pending_;
    pending_.clear();
    pending_.shrink_to_fit();
    ::close(fd_);
    fd_ = -1;
  }

  bool read_at(char* into, uint64_t offset, uint64_t count) const {
    while (count > 0) {
      const ssize_t got = ::pread(fd_, into, count, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      into += got;
      offset += static_cast<uint64_t>(got);
      count -= static_cast<uint64_t>(got);
    }
    return true;
  }

  // Where the text at `place` ends: where the next one in the order they came starts.
  uint64_t end_of(const Place& place) const {
    const auto next = std::upper_bound(places_.begin(), places_.end(), place.offset,
                                       [](uint64_t offset, const Place& other) { return offset < other.offset; });
    return next == places_.end() ? size_ : next->offset;
  }

  // Copies the spool's bytes [from, to) to `out`.
  void copy(std::FILE* out, uint64_t from, uint64_t to) {
    if (fd_ < 0) {
      std::fwrite(memory_.data() + from, 1, to - from, out);
      return;
    }
    std::vector<char> buffer(std::min<uint64_t>(to - from, write_bytes));
    while (from < to) {
      const uint64_t count = std::min<uint64_t>(to - from, buffer.size());
      if (!read_at(buffer.data(), from, count)) std::fill(buffer.begin(), buffer.end(), '?');
      std::fwrite(buffer.data(), 1, count, out);
      from += count;
    }
  }

  int fd_ = -1;
  bool opened_ = false;
  std::string pending_;       // text not yet written to the file
  uint64_t written_ = 0;      // bytes in the file
  std::string memory_;        // the spool when there is no file
  uint64_t size_ = 0;         // bytes spooled
  std::vector<Place> places_;  // in the order they came
  bool in_order_ = true;
};

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
      spool_.add(finding.frame, "\n" + render_finding(finding));
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
    if (spool_.empty()) {
      text += "\nNo resets found.\n";
      write(text);
    } else {
      text += '\n';
      text += paint("1", "Resets, in frame order") + "\n";
      write(text);
      spool_.write_in_frame_order(options_.out);
    }
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
    if (stats.track.resets_judged_early != 0) {
      line("judged", fmt::format("{} resets early, before their horizon, under the cap on waiting resets",
                                       stats.track.resets_judged_early));
    }
    // Live runs always show the drop counters: zero drops is news worth stating there.
    if (options_.streaming || capture.kernel_dropped != 0 || capture.interface_dropped != 0) {
      line("dropped", fmt::format("{} by the kernel, {} by the interface",
                                  capture.kernel_dropped, capture.interface_dropped));
    }
    const auto warn = [&](const std::string& message) { text += paint("1;33", "  warning: " + message) + "\n"; };
    if (stats.track.resets_judged_early != 0) {
      warn(fmt::format("{} resets were judged before their horizon under the cap on waiting resets "
                       "(--max-waiting-resets); verdicts on them may be weaker.",
                       stats.track.resets_judged_early));
    }
    if (stats.track.evicted_pressure != 0) {
      warn(fmt::format("{} connections were evicted early under the memory cap (--max-connections); "
                       "verdicts on them may be weaker.",
                       stats.track.evicted_pressure));
    }
    if (capture.kernel_dropped != 0 || capture.interface_dropped != 0) {
      warn("packets were dropped before rstscope saw them; the picture is incomplete and some "
           "verdicts may be wrong.");
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
  FindingSpool spool_;
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
