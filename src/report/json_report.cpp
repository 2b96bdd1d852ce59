// JSON Lines: one object per line, written the moment its verdict is known.
#include <algorithm>
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
//
// A report holds tens of thousands of these lines, each of some twenty to thirty keys and
// values, and appending each piece to a std::string cost a call and a capacity check per piece.
// So the string is opened with room for a usual line, each piece is written straight into it
// after one check for room (growing it when a line is longer), and the string is cut to the
// line at the end: a third fewer instructions for the report.
class JsonObject {
 public:
  JsonObject() : text_(own_) { open(); }
  // Built in `line` instead, whose storage serves one line after another.
  explicit JsonObject(std::string& line) : text_(line) { open(); }
  JsonObject(const JsonObject&) = delete;
  JsonObject& operator=(const JsonObject&) = delete;

  [[gnu::always_inline]] JsonObject& key(std::string_view name) {
    char* at = room(name.size() + 4);
    *at++ = first_ ? '{' : ',';
    first_ = false;
    *at++ = '"';
    std::memcpy(at, name.data(), name.size());
    at += name.size();
    *at++ = '"';
    *at++ = ':';
    moved_to(at);
    return *this;
  }
  JsonObject& string(std::string_view name, std::string_view value) {
    key(name);
    quote(value);
    return *this;
  }
  // An address, written in place rather than made into a string first.
  JsonObject& address(std::string_view name, const Address& value) {
    key(name);
    char* at = room(Address::text_max + 2);
    *at++ = '"';
    at = value.write(at);  // digits, letters, dots and colons: nothing to escape
    *at++ = '"';
    moved_to(at);
    return *this;
  }
  JsonObject& number(std::string_view name, uint64_t value) {
    key(name);
    integer(value);
    return *this;
  }
  JsonObject& number(std::string_view name, int64_t value) {
    key(name);
    integer(value);
    return *this;
  }
  JsonObject& real(std::string_view name, double value) {
    key(name);
    // JSON has no NaN or infinity.
    append(std::isfinite(value) ? fmt::format("{}", value) : std::string("null"));
    return *this;
  }
  // A timestamp as a plain number of seconds, exact to the nanosecond in the text.
  JsonObject& seconds(std::string_view name, int64_t ts_ns) {
    key(name);
    moved_to(write_epoch_seconds(room(time_text_max), ts_ns));
    return *this;
  }
  JsonObject& utc(std::string_view name, int64_t ts_ns) {
    key(name);
    char* at = room(time_text_max + 2);
    *at++ = '"';
    at = write_utc(at, ts_ns);  // digits and separators only: nothing to escape
    *at++ = '"';
    moved_to(at);
    return *this;
  }
  JsonObject& boolean(std::string_view name, bool value) {
    key(name);
    append(value ? "true" : "false");
    return *this;
  }
  JsonObject& null(std::string_view name) {
    key(name);
    append("null");
    return *this;
  }
  JsonObject& raw(std::string_view name, std::string_view json) {
    key(name);
    append(json);
    return *this;
  }
  // An array, each item written by `render(*this, item)`.
  template <typename Range, typename Render>
  JsonObject& array(std::string_view name, const Range& items, Render render) {
    key(name);
    append("[");
    bool first = true;
    for (const auto& item : items) {
      if (!first) append(",");
      first = false;
      render(*this, item);
    }
    append("]");
    return *this;
  }
  JsonObject& causes(std::string_view name, const std::vector<Cause>& causes) {
    return array(name, causes, [](JsonObject& out, Cause cause) { out.quote(to_string(cause)); });
  }
  JsonObject& strings(std::string_view name, const std::vector<std::string>& strings) {
    return array(name, strings, [](JsonObject& out, const std::string& text) { out.quote(text); });
  }
  JsonObject& frames(std::string_view name, const std::vector<uint64_t>& frames) {
    return array(name, frames, [](JsonObject& out, uint64_t frame) { out.integer(frame); });
  }

  // Pieces of a value, for array items.
  void append(std::string_view piece) {
    char* at = room(piece.size());
    std::memcpy(at, piece.data(), piece.size());
    moved_to(at + piece.size());
  }
  // `value` quoted and escaped as json_quote_to() does it.
  void quote(std::string_view value) {
    if (json_plain_run(value) == value.size()) {
      char* at = room(value.size() + 2);
      *at++ = '"';
      std::memcpy(at, value.data(), value.size());
      at += value.size();
      *at++ = '"';
      moved_to(at);
      return;
    }
    escaped_.clear();
    json_quote_to(escaped_, value);
    append(escaped_);
  }
  template <typename Integer>
  void integer(Integer value) {
    char* at = room(24);
    moved_to(std::to_chars(at, at + 24, value).ptr);
  }

  std::string done() {
    if (first_) return "{}";
    append("}");
    text_.resize(size_);
    return std::move(text_);
  }
  // The same, left in the line it was built in.
  std::string_view finish() {
    if (first_) append("{");
    append("}");
    text_.resize(size_);
    return text_;
  }

 private:
  // The string opened for writing: text_[0, size_) is the line so far, and the rest is room. A
  // reused line keeps its length from last time (only new room is zeroed by a resize).
  void open() {
    if (text_.size() < opening_room) text_.resize(opening_room);
  }
  // Where `count` more bytes may be written.
  char* room(size_t count) {
    if (text_.size() - size_ < count) text_.resize(std::max(2 * text_.size(), size_ + count));
    return text_.data() + size_;
  }
  void moved_to(const char* end) { size_ = static_cast<size_t>(end - text_.data()); }

  static constexpr size_t opening_room = 2048;  // a finding's line, mostly without growing
  std::string own_;
  std::string& text_;
  size_t size_ = 0;
  bool first_ = true;
  std::string escaped_;  // a value with something to escape, on its way in
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
        .address("src", finding.src)
        .number("sport", uint64_t{finding.sport})
        .address("dst", finding.dst)
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
        .address("originator", summary.originator)
        .number("originator_port", uint64_t{summary.originator_port})
        .address("responder", summary.responder)
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
        .array("errors", capture.errors, [](JsonObject& out, const InputError& error) {
          JsonObject object;
          object.string("file", error.file)
              .number("offset", error.offset)
              .string("message", error.message)
              .boolean("fatal", error.fatal);
          out.append(object.done());
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
        .number("resets_judged_early", track.resets_judged_early)
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
