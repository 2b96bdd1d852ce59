// JSON Lines: one object per line, written the moment its verdict is known.
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <string>

#include <fmt/format.h>

#include "report/report.hpp"

namespace rstscope {
namespace {

// Builds one JSON object in a string; keys are trusted literals, values are escaped.
class JsonObject {
 public:
  JsonObject() : text_(own_) { own_.reserve(2048); }  // a finding's line, mostly without growing
  // Built in `line` instead (cleared first), whose storage serves one line after another.
  explicit JsonObject(std::string& line) : text_(line) { line.clear(); }
  JsonObject(const JsonObject&) = delete;
  JsonObject& operator=(const JsonObject&) = delete;

  // A finding has about thirty keys: each is one append.
  JsonObject& key(std::string_view name) {
    const char before = first_ ? '{' : ',';
    first_ = false;
    char piece[64];
    if (name.size() > sizeof piece - 4) {
      ((text_ += before) += '"').append(name) += "\":";
      return *this;
    }
    piece[0] = before;
    piece[1] = '"';
    std::memcpy(piece + 2, name.data(), name.size());
    piece[name.size() + 2] = '"';
    piece[name.size() + 3] = ':';
    text_.append(piece, name.size() + 4);
    return *this;
  }
  JsonObject& string(std::string_view name, std::string_view value) {
    key(name);
    json_quote_to(text_, value);
    return *this;
  }
  JsonObject& number(std::string_view name, uint64_t value) {
    key(name);
    append_integer(value);
    return *this;
  }
  JsonObject& number(std::string_view name, int64_t value) {
    key(name);
    append_integer(value);
    return *this;
  }
  JsonObject& real(std::string_view name, double value) {
    key(name);
    // JSON has no NaN or infinity.
    text_ += std::isfinite(value) ? fmt::format("{}", value) : std::string("null");
    return *this;
  }
  // A timestamp as a plain number of seconds, exact to the nanosecond in the text.
  JsonObject& seconds(std::string_view name, int64_t ts_ns) {
    key(name);
    append_epoch_seconds(text_, ts_ns);
    return *this;
  }
  JsonObject& utc(std::string_view name, int64_t ts_ns) {
    key(name);
    text_ += '"';
    append_utc(text_, ts_ns);  // digits and separators only: nothing to escape
    text_ += '"';
    return *this;
  }
  JsonObject& boolean(std::string_view name, bool value) {
    key(name);
    text_ += value ? "true" : "false";
    return *this;
  }
  JsonObject& null(std::string_view name) {
    key(name);
    text_ += "null";
    return *this;
  }
  JsonObject& raw(std::string_view name, std::string_view json) {
    key(name);
    text_ += json;
    return *this;
  }
  // An array, each item appended by `render(text, item)`.
  template <typename Range, typename Render>
  JsonObject& array(std::string_view name, const Range& items, Render render) {
    key(name);
    text_ += '[';
    bool first = true;
    for (const auto& item : items) {
      if (!first) text_ += ',';
      first = false;
      render(text_, item);
    }
    text_ += ']';
    return *this;
  }
  JsonObject& causes(std::string_view name, const std::vector<Cause>& causes) {
    return array(name, causes, [](std::string& out, Cause cause) { json_quote_to(out, to_string(cause)); });
  }
  JsonObject& strings(std::string_view name, const std::vector<std::string>& strings) {
    return array(name, strings, [](std::string& out, const std::string& text) { json_quote_to(out, text); });
  }
  JsonObject& frames(std::string_view name, const std::vector<uint64_t>& frames) {
    return array(name, frames, [](std::string& out, uint64_t frame) { append_integer(out, frame); });
  }
  std::string done() {
    if (first_) return "{}";
    text_ += '}';
    return std::move(text_);
  }
  // The same, left in the line it was built in.
  std::string_view finish() {
    if (first_) text_ += '{';
    text_ += '}';
    return text_;
  }

 private:
  template <typename Integer>
  void append_integer(Integer value) {
    append_integer(text_, value);
  }
  template <typename Integer>
  static void append_integer(std::string& out, Integer value) {
    char digits[24];
    const auto result = std::to_chars(std::begin(digits), std::end(digits), value);
    out.append(digits, result.ptr);
  }

  std::string own_;
  std::string& text_;
  bool first_ = true;
};

class JsonReporter final : public Reporter {
 public:
  explicit JsonReporter(const ReportOptions& options) : options_(options) {}

  void reset(const Finding& finding) override {
    JsonObject object(line_);
    object.string("type", "reset")
        .number("frame", finding.frame)
        .seconds("ts", finding.ts_ns)
        .utc("time", finding.ts_ns)
        .string("src", finding.src.to_string())
        .number("sport", uint64_t{finding.sport})
        .string("dst", finding.dst.to_string())
        .number("dport", uint64_t{finding.dport})
        .number("seq", uint64_t{finding.seq})
        .number("ack", uint64_t{finding.ack})
        .string("flags", flags_to_string(finding.flags))
        .string("cause", to_string(finding.cause))
        .string("confidence", to_string(finding.confidence))
        .string("sender", to_string(finding.sender))
        .string("seq_check", to_string(finding.seq_check))
        .string("from", finding.from_originator ? "originator" : "responder")
        .causes("alternatives", finding.alternatives)
        .string("explanation", finding.explanation)
        .strings("evidence", finding.evidence)
        .frames("frames", finding.frames)
        .string("history", finding.history);
    if (finding.duplicate_of != 0) {
      object.number("duplicate_of", finding.duplicate_of);
    } else {
      object.null("duplicate_of");
    }
    object.number("connection", finding.connection_id)
        .number("ttl", uint64_t{finding.ttl})
        .number("payload_len", uint64_t{finding.payload_len});
    if (!finding.injector.empty()) object.string("injector", finding.injector);
    if (!finding.kernel_reason.empty()) object.string("kernel_reason", finding.kernel_reason);
    write(object.finish());
  }

  void connection(const ConnectionSummary& summary) override {
    JsonObject object(line_);
    object.string("type", "connection")
        .number("id", summary.connection_id)
        .string("originator", summary.originator.to_string())
        .number("originator_port", uint64_t{summary.originator_port})
        .string("responder", summary.responder.to_string())
        .number("responder_port", uint64_t{summary.responder_port})
        .seconds("first_ts", summary.first_ns)
        .seconds("last_ts", summary.last_ns)
        .number("first_frame", summary.first_frame)
        .number("packets", summary.packets)
        .number("originator_bytes", summary.originator_bytes)
        .number("responder_bytes", summary.responder_bytes)
        .string("history", summary.history)
        .string("state", summary.state)
        .boolean("handshake_seen", summary.handshake_seen)
        .number("resets", uint64_t{summary.resets})
        .causes("causes", summary.causes);
    write(object.finish());
  }

  void pattern(const PatternFinding& pattern) override {
    JsonObject object;
    object.string("type", pattern.type)
        .seconds("first_ts", pattern.first_ns)
        .seconds("last_ts", pattern.last_ns)
        .string("subject", pattern.subject)
        .string("parties", pattern.parties)
        .number("count", pattern.count)
        .real("rate", pattern.rate_per_second)
        .frames("example_frames", pattern.example_frames)
        .string("explanation", pattern.explanation)
        .string("confidence", to_string(pattern.confidence));
    write(object.done());
  }

  void summary(const RunStats& stats) override { write(stats_object(stats, "summary")); }

  void finish(const RunStats& stats) override {
    write(stats_object(stats, "stats"));
    std::fflush(options_.out);
  }

 private:
  void write(std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), options_.out);
    std::fputc('\n', options_.out);
    if (options_.streaming) std::fflush(options_.out);
  }

  static std::string stats_object(const RunStats& stats, std::string_view type) {
    const CaptureStats& capture = stats.capture;
    JsonObject capture_object;
    capture_object.number("inputs", capture.inputs)
        .number("inputs_failed", capture.inputs_failed)
        .number("packets", capture.packets)
        .number("bytes", capture.bytes)
        .number("snapped", capture.snapped)
        .number("filtered_out", capture.filtered_out)
        .number("kernel_dropped", capture.kernel_dropped)
        .number("interface_dropped", capture.interface_dropped)
        .seconds("first_ts", capture.first_ns)
        .seconds("last_ts", capture.last_ns)
        .array("errors", capture.errors, [](std::string& out, const InputError& error) {
          JsonObject object;
          object.string("file", error.file)
              .number("offset", error.offset)
              .string("message", error.message)
              .boolean("fatal", error.fatal);
          out += object.done();
        });

    const DecodeStats& decode = stats.decode;
    JsonObject decode_object;
    decode_object.number("packets", decode.packets)
        .number("tcp", decode.tcp)
        .number("not_ip", decode.not_ip)
        .number("not_tcp", decode.not_tcp)
        .number("fragments", decode.fragments)
        .number("truncated", decode.truncated)
        .number("malformed", decode.malformed)
        .number("unsupported_link", decode.unsupported_link)
        .number("tunnelled", decode.tunnelled);

    const TrackStats& track = stats.track;
    JsonObject track_object;
    track_object.number("segments", track.segments)
        .number("connections", track.connections)
        .number("live_peak", track.live_peak)
        .number("evicted_idle", track.evicted_idle)
        .number("evicted_pressure", track.evicted_pressure)
        .number("port_reuse", track.port_reuse)
        .number("resets", track.resets)
        .number("resets_without_connection", track.resets_without_connection)
        .number("retransmissions", track.retransmissions)
        .number("out_of_order", track.out_of_order);

    JsonObject by_cause;
    for (int index = 0; index < cause_count; ++index) {
      const auto cause = static_cast<Cause>(index);
      by_cause.number(to_string(cause), stats.diagnose.by_cause[static_cast<size_t>(index)]);
    }
    JsonObject diagnose_object;
    diagnose_object.raw("by_cause", by_cause.done())
        .number("duplicates", stats.diagnose.duplicates)
        .number("patterns", stats.diagnose.patterns);

    JsonObject object;
    object.string("type", type)
        .raw("capture", capture_object.done())
        .raw("decode", decode_object.done())
        .raw("track", track_object.done())
        .raw("diagnose", diagnose_object.done())
        .real("wall_seconds", stats.wall_seconds);
    return object.done();
  }

  ReportOptions options_;
  std::string line_;  // the line being built, reused
};

}  // namespace

std::unique_ptr<Reporter> make_json_reporter(const ReportOptions& options) {
  return std::make_unique<JsonReporter>(options);
}

}  // namespace rstscope
