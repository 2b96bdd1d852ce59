// The report formats, checked on findings built by hand.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "report/report.hpp"
#include "support.hpp"

namespace rstscope {
namespace {

using testing::render;

// A strict little JSON reader: enough to prove each line parses and to look fields up.
struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<JsonValue> items;
  std::map<std::string, JsonValue> fields;

  bool has(const std::string& key) const { return fields.count(key) != 0; }
  const JsonValue& at(const std::string& key) const { return fields.at(key); }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  std::optional<JsonValue> parse_document() {
    JsonValue value;
    if (!parse_value(value)) return std::nullopt;
    skip_space();
    if (position_ != text_.size()) return std::nullopt;
    return value;
  }

 private:
  void skip_space() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t')) {
      ++position_;
    }
  }
  bool literal(std::string_view word) {
    if (text_.substr(position_, word.size()) != word) return false;
    position_ += word.size();
    return true;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }
  bool parse_string(std::string& out) {
    if (!literal("\"")) return false;
    while (position_ < text_.size()) {
      const char c = text_[position_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // raw control bytes are invalid
      if (c != '\\') {
        out += c;
        continue;
      }
      if (position_ >= text_.size()) return false;
      const char escape = text_[position_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (position_ + 4 > text_.size()) return false;
          unsigned code = 0;
          for (int digit = 0; digit < 4; ++digit) {
            const int value = hex(text_[position_++]);
            if (value < 0) return false;
            code = code * 16 + static_cast<unsigned>(value);
          }
          append_utf8(out, code);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool parse_value(JsonValue& value) {
    skip_space();
    if (position_ >= text_.size()) return false;
    const char c = text_[position_];
    if (c == '{') {
      ++position_;
      value.kind = JsonValue::Kind::object;
      skip_space();
      if (literal("}")) return true;
      while (true) {
        skip_space();
        std::string key;
        if (!parse_string(key)) return false;
        skip_space();
        if (!literal(":")) return false;
        JsonValue member;
        if (!parse_value(member)) return false;
        if (value.fields.count(key) != 0) return false;  // duplicate keys are a bug
        value.fields.emplace(key, std::move(member));
        skip_space();
        if (literal("}")) return true;
        if (!literal(",")) return false;
      }
    }
    if (c == '[') {
      ++position_;
      value.kind = JsonValue::Kind::array;
      skip_space();
      if (literal("]")) return true;
      while (true) {
        JsonValue item;
        if (!parse_value(item)) return false;
        value.items.push_back(std::move(item));
        skip_space();
        if (literal("]")) return true;
        if (!literal(",")) return false;
      }
    }
    if (c == '"') {
      value.kind = JsonValue::Kind::string;
      return parse_string(value.text);
    }
    if (literal("true")) {
      value.kind = JsonValue::Kind::boolean;
      value.boolean = true;
      return true;
    }
    if (literal("false")) {
      value.kind = JsonValue::Kind::boolean;
      return true;
    }
    if (literal("null")) return true;
    const size_t start = position_;
    if (position_ < text_.size() && text_[position_] == '-') ++position_;
    while (position_ < text_.size() &&
           std::string_view("0123456789.eE+-").find(text_[position_]) != std::string_view::npos) {
      ++position_;
    }
    if (position_ == start) return false;
    const std::string number(text_.substr(start, position_ - start));
    char* end = nullptr;
    value.number = std::strtod(number.c_str(), &end);
    value.kind = JsonValue::Kind::number;
    return end == number.c_str() + number.size();
  }

  std::string_view text_;
  size_t position_ = 0;
};

std::optional<JsonValue> parse_json(std::string_view line) { return JsonParser(line).parse_document(); }

std::vector<std::string> lines_of(const std::string& text, std::string_view end = "\n") {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t stop = text.find(end, start);
    if (stop == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, stop - start));
    start = stop + end.size();
  }
  return lines;
}

Finding refused_finding() {
  Finding finding;
  finding.frame = 2;
  finding.ts_ns = 1'377'201'633'620'883'000;
  finding.src = Address::v4(0xd4e30fbc);  // 212.227.15.188
  finding.dst = Address::v4(0xc0a80004);  // 192.168.0.4
  finding.sport = 110;
  finding.dport = 26242;
  finding.seq = 0;
  finding.ack = 3'145'310'915;
  finding.flags = tcp_flag::rst | tcp_flag::ack;
  finding.ttl = 57;
  finding.cause = Cause::refused;
  finding.confidence = Confidence::high;
  finding.sender = Sender::endpoint;
  finding.seq_check = SeqCheck::exact;
  finding.from_originator = false;
  finding.evidence = {"frame 1 is a SYN to port 110", "frame 2 answers it with ack = SYN.seq+1"};
  finding.frames = {1, 2};
  finding.history = "Sr";
  finding.explanation = "Nothing listens on 212.227.15.188:110, so the host refused it.";
  finding.connection_id = 1;
  return finding;
}

// A finding whose strings carry everything an escaper must handle.
Finding hostile_finding() {
  Finding finding = refused_finding();
  finding.frame = 9;
  finding.ts_ns = 1'377'201'634'000'000'123;
  finding.cause = Cause::forged;
  finding.sender = Sender::offpath;
  finding.seq_check = SeqCheck::out_of_window;
  finding.alternatives = {Cause::middlebox, Cause::half_open};
  finding.explanation = "a \"quoted\", comma\nnew line\\ and \x01 bell \x7f";
  finding.evidence = {std::string("bad utf8 \xff\xfe end"), "tab\there", "caf\xc3\xa9"};
  finding.injector = "great firewall";
  finding.kernel_reason = "NO_SOCKET";
  finding.duplicate_of = 2;
  return finding;
}

RunStats sample_stats() {
  RunStats stats;
  stats.capture.inputs = 2;
  stats.capture.inputs_failed = 1;
  stats.capture.packets = 13;
  stats.capture.bytes = 1400;
  stats.capture.first_ns = 1'377'201'633'000'000'000;
  stats.capture.last_ns = 1'377'201'635'879'756'000;
  stats.capture.errors.push_back({"missing \"file\".pcap", 0, "No such file or directory", true});
  stats.decode.packets = 13;
  stats.decode.tcp = 12;
  stats.decode.not_ip = 1;
  stats.track.segments = 12;
  stats.track.connections = 2;
  stats.track.resets = 6;
  stats.track.evicted_pressure = 3;
  stats.track.resets_judged_early = 2;
  stats.diagnose.by_cause[static_cast<size_t>(Cause::refused)] = 5;
  stats.diagnose.by_cause[static_cast<size_t>(Cause::forged)] = 1;
  stats.diagnose.duplicates = 4;
  stats.diagnose.patterns = 1;
  return stats;
}

PatternFinding flood_pattern() {
  PatternFinding pattern;
  pattern.type = "rst_flood";
  pattern.first_ns = 1'377'201'633'000'000'000;
  pattern.last_ns = 1'377'201'635'000'000'000;
  pattern.subject = "192.168.0.4";
  pattern.parties = "17 sources";
  pattern.count = 250;
  pattern.rate_per_second = 125.0;
  pattern.example_frames = {3, 4, 5};
  pattern.explanation = "250 resets toward 192.168.0.4 in 2 s, most for no connection";
  return pattern;
}

ConnectionSummary sample_connection() {
  ConnectionSummary summary;
  summary.connection_id = 1;
  summary.originator = Address::v4(0xc0a80004);
  summary.responder = Address::v4(0xd4e30fbc);
  summary.originator_port = 26242;
  summary.responder_port = 110;
  summary.first_ns = 1'377'201'633'000'000'000;
  summary.last_ns = 1'377'201'634'730'947'000;
  summary.first_frame = 1;
  summary.packets = 6;
  summary.originator_bytes = 0;
  summary.responder_bytes = 0;
  summary.history = "Sr";
  summary.state = "reset by responder";
  summary.resets = 3;
  summary.causes = {Cause::refused, Cause::refused, Cause::refused};
  return summary;
}

void feed_everything(Reporter& reporter) {
  reporter.reset(hostile_finding());
  reporter.reset(refused_finding());
  reporter.connection(sample_connection());
  reporter.pattern(flood_pattern());
  reporter.finish(sample_stats());
}

TEST(JsonQuote, EscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quote("line\nnext\r\t"), "\"line\\nnext\\r\\t\"");
  EXPECT_EQ(json_quote(std::string_view("\x00\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
}

// Plain text is checked 8 bytes at a time: every byte value, at every place in and across
// those words, in text of every length around them, must come out as it does alone.
TEST(JsonQuote, EveryByteAtEveryPlaceOfAWordIsEscapedAsAlone) {
  for (int value = 0; value < 256; ++value) {
    const std::string alone = json_quote(std::string(1, static_cast<char>(value)));
    const std::string inner = alone.substr(1, alone.size() - 2);
    for (size_t length = 1; length <= 27; ++length) {
      for (size_t at = 0; at < length; ++at) {
        std::string text(length, 'a');
        text[at] = static_cast<char>(value);
        const std::string expected = "\"" + std::string(at, 'a') + inner + std::string(length - at - 1, 'a') + "\"";
        ASSERT_EQ(json_quote(text), expected) << "byte " << value << " at " << at << " of " << length;
      }
    }
  }
  // A valid two-byte sequence across a word boundary stays as it is.
  for (size_t at = 0; at < 17; ++at) {
    const std::string text = std::string(at, 'b') + "\xc3\xa9" + std::string(9, 'c');
    EXPECT_EQ(json_quote(text), "\"" + text + "\"") << "at " << at;
  }
}

TEST(JsonQuote, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json_quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json_quote("\xf0\x9f\x94\x8d"), "\"\xf0\x9f\x94\x8d\"");
  EXPECT_EQ(json_quote("x\xffy"), "\"x\\ufffdy\"");
  // Overlong "/" and a UTF-16 surrogate are not UTF-8.
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
  // A sequence cut off by the end of the string.
  EXPECT_EQ(json_quote("ab\xe2\x82"), "\"ab\\ufffd\\ufffd\"");
}

TEST(Printable, NeutralisesTerminalControlAndBadBytes) {
  EXPECT_EQ(printable("plain caf\xc3\xa9"), "plain caf\xc3\xa9");
  EXPECT_EQ(printable("a\nb\tc"), "a\\nb\\tc");
  EXPECT_EQ(printable("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(printable("\xc2\x9b" "2J"), "\\u009b2J");
  EXPECT_EQ(printable("x\xffy"), "x\xef\xbf\xbdy");
  EXPECT_EQ(utf8_clean("ok\xc3"), "ok\xef\xbf\xbd");
}

// Plain text takes a short path, found 8 bytes at a time: every byte value, at every place in
// and across those words, must come out as it does alone.
TEST(Printable, EveryByteAtEveryPlaceOfAWordComesOutAsAlone) {
  for (int value = 0; value < 256; ++value) {
    const std::string alone = printable(std::string(1, static_cast<char>(value)));
    for (size_t length = 1; length <= 27; ++length) {
      for (size_t at = 0; at < length; ++at) {
        std::string text(length, 'a');
        text[at] = static_cast<char>(value);
        const std::string expected = std::string(at, 'a') + alone + std::string(length - at - 1, 'a');
        ASSERT_EQ(printable(text), expected) << "byte " << value << " at " << at << " of " << length;
      }
    }
  }
  EXPECT_EQ(printable("plain \"quoted\" back\\slash"), "plain \"quoted\" back\\slash");
}

TEST(CsvField, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("plain text"), "plain text");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field(""), "");
}

TEST(TimeFormat, EpochSecondsAndUtc) {
  EXPECT_EQ(format_epoch_seconds(1'377'201'633'620'883'000), "1377201633.620883");
  EXPECT_EQ(format_epoch_seconds(1'377'201'633'620'883'001), "1377201633.620883001");
  EXPECT_EQ(format_epoch_seconds(0), "0.000000");
  EXPECT_EQ(format_epoch_seconds(-500'000'000), "-0.500000");
  EXPECT_EQ(format_utc(1'377'201'633'620'883'000), "2013-08-22T20:00:33.620883Z");
  EXPECT_EQ(format_utc(1'377'201'633'620'883'000, ' ', false), "2013-08-22 20:00:33.620883");
  EXPECT_EQ(format_duration(2'260'000'000), "2.26 s");
  EXPECT_EQ(format_duration(245'000'000'000), "4 min 05 s");
  EXPECT_EQ(format_bytes(1400), "1.4 kB");
}

// The hand-written date and address texts against the C library's, over a spread of values.
TEST(TimeFormat, UtcAgreesWithGmtimeAcrossTheWholeRange) {
  std::mt19937_64 random(7);
  std::vector<int64_t> times{0, -1, 1, -86'400'000'000'000, 951'782'400'000'000'000 /* 2000-02-29 */,
                             4'107'542'400'000'000'000 /* 2100-03-01 */, INT64_MIN, INT64_MAX};
  for (int i = 0; i < 20000; ++i) times.push_back(static_cast<int64_t>(random()));
  for (const int64_t ts : times) {
    int64_t seconds = ts / 1'000'000'000, nanoseconds = ts % 1'000'000'000;
    if (nanoseconds < 0) {
      nanoseconds += 1'000'000'000;
      seconds -= 1;
    }
    const auto time = static_cast<std::time_t>(seconds);
    std::tm parts{};
    ASSERT_NE(gmtime_r(&time, &parts), nullptr);
    char expected[64];
    std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d.", parts.tm_year + 1900,
                  parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
    const std::string text = format_utc(ts);
    ASSERT_EQ(text.substr(0, 20), expected) << ts;
    ASSERT_EQ(text.back(), 'Z');
  }
}

TEST(AddressText, AgreesWithInetNtop) {
  std::mt19937_64 random(11);
  const auto check = [](const Address& address) {
    char expected[INET6_ADDRSTRLEN] = {};
    inet_ntop(address.is_v6() ? AF_INET6 : AF_INET, address.bytes.data(), expected, sizeof expected);
    ASSERT_EQ(address.to_string(), expected);
  };
  for (int i = 0; i < 20000; ++i) {
    uint8_t bytes[16];
    for (auto& byte : bytes) {
      // Mostly zero bytes, so every shape of zero run turns up.
      const uint64_t draw = random();
      byte = draw % 3 == 0 ? static_cast<uint8_t>(draw >> 8) : 0;
    }
    check(Address::v6(bytes));
    check(Address::v4(bytes));
  }
  const std::vector<std::vector<uint8_t>> special{
      {},                                                   // ::
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},     // ::1
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1},  // ::ffff:192.0.2.1
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1},   // ::192.0.2.1
      {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1},  // 2001:db8::1:0:0:1
      {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1},  // one zero group stays
  };
  for (std::vector<uint8_t> bytes : special) {
    bytes.resize(16);
    check(Address::v6(bytes.data()));
  }
  check(Address::v4(uint32_t{0}));
  check(Address::v4(uint32_t{0xffffffff}));
  check(Address::v4(uint32_t{0x0a00020f}));
}

TEST(PatternTypes, KnowsEveryDocumentedType) {
  for (const char* name : {"rst_flood", "syn_flood", "backscatter", "port_scan",
                           "blind_reset_attack"}) {
    EXPECT_TRUE(is_pattern_type(name)) << name;
  }
  EXPECT_FALSE(is_pattern_type("refused"));
  EXPECT_EQ(pattern_types().size(), 5u);
}

TEST(JsonReport, EveryLineParsesAndHasItsType) {
  ReportOptions options;
  options.format = Format::json;
  const std::string out = render(options, feed_everything);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 5u) << out;
  std::vector<std::string> types;
  for (const std::string& line : lines) {
    const auto value = parse_json(line);
    ASSERT_TRUE(value.has_value()) << line;
    ASSERT_EQ(value->kind, JsonValue::Kind::object) << line;
    ASSERT_TRUE(value->has("type")) << line;
    types.push_back(value->at("type").text);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"reset", "reset", "connection", "rst_flood",
                                             "stats"}));
}

TEST(JsonReport, ResetCarriesEveryRequiredField) {
  ReportOptions options;
  options.format = Format::json;
  const std::string out = render(options, [](Reporter& reporter) {
    reporter.reset(hostile_finding());
    reporter.reset(refused_finding());
  });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 2u);
  const auto hostile = parse_json(lines[0]);
  ASSERT_TRUE(hostile.has_value()) << lines[0];
  for (const char* field :
       {"type", "frame", "ts", "time", "src", "sport", "dst", "dport", "seq", "ack", "flags",
        "cause", "confidence", "sender", "seq_check", "alternatives", "evidence", "history",
        "explanation", "frames", "duplicate_of", "connection", "from", "ttl", "payload_len",
        "injector", "kernel_reason"}) {
    EXPECT_TRUE(hostile->has(field)) << field;
  }
  EXPECT_EQ(hostile->at("frame").number, 9);
  EXPECT_EQ(hostile->at("src").text, "212.227.15.188");
  EXPECT_EQ(hostile->at("dport").number, 26242);
  EXPECT_EQ(hostile->at("ack").number, 3145310915.0);
  EXPECT_EQ(hostile->at("flags").text, "RST,ACK");
  EXPECT_EQ(hostile->at("cause").text, "forged");
  EXPECT_EQ(hostile->at("sender").text, "offpath");
  EXPECT_EQ(hostile->at("seq_check").text, "out_of_window");
  EXPECT_EQ(hostile->at("from").text, "responder");
  EXPECT_EQ(hostile->at("duplicate_of").number, 2);
  ASSERT_EQ(hostile->at("alternatives").items.size(), 2u);
  EXPECT_EQ(hostile->at("alternatives").items[0].text, "middlebox");
  // The escaped text reads back exactly, bytes that were not UTF-8 as U+FFFD.
  EXPECT_EQ(hostile->at("explanation").text, "a \"quoted\", comma\nnew line\\ and \x01 bell \x7f");
  ASSERT_EQ(hostile->at("evidence").items.size(), 3u);
  EXPECT_EQ(hostile->at("evidence").items[0].text, "bad utf8 \xef\xbf\xbd\xef\xbf\xbd end");
  EXPECT_EQ(hostile->at("evidence").items[1].text, "tab\there");
  EXPECT_EQ(hostile->at("evidence").items[2].text, "caf\xc3\xa9");
  // The line itself holds no raw control byte, so it cannot be split by a line reader.
  for (const char c : lines[0]) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
  EXPECT_NE(lines[0].find("\"ts\":1377201634.000000123"), std::string::npos) << lines[0];

  const auto plain = parse_json(lines[1]);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->at("duplicate_of").kind, JsonValue::Kind::null);
  EXPECT_FALSE(plain->has("injector"));
  EXPECT_FALSE(plain->has("kernel_reason"));
  EXPECT_EQ(plain->at("time").text, "2013-08-22T20:00:33.620883Z");
}

// Lines are written in place, into a string reused from one line to the next and grown when a
// line needs more room: every value must still come out as json_quote() writes it, a long line
// must not be cut, and a short line after a long one must not carry the long one's bytes.
TEST(JsonReport, ValuesAreQuotedAsJsonQuoteDoesAndLinesDoNotLeakIntoEachOther) {
  std::vector<Finding> findings;
  std::vector<std::string> explanations;
  for (int value = 0; value < 256; value += 5) {
    for (size_t length : {1u, 9u, 40u}) {
      std::string text(length, 'e');
      text[length / 2] = static_cast<char>(value);
      explanations.push_back(text);
    }
  }
  for (const std::string& text : explanations) {
    Finding finding = refused_finding();
    finding.explanation = text;
    findings.push_back(finding);
  }
  // A line of about 30 kB, far beyond the room a line starts with, then a short one again.
  Finding long_finding = refused_finding();
  for (int i = 0; i < 300; ++i) long_finding.evidence.push_back(std::string(100, static_cast<char>('a' + i % 26)));
  findings.push_back(long_finding);
  findings.push_back(refused_finding());
  ReportOptions options;
  options.format = Format::json;
  const std::string out = render(options, [&](Reporter& reporter) {
    for (const Finding& finding : findings) reporter.reset(finding);
  });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), findings.size());
  for (size_t i = 0; i < explanations.size(); ++i) {
    EXPECT_NE(lines[i].find("\"explanation\":" + json_quote(explanations[i]) + ","), std::string::npos)
        << "finding " << i << ": " << lines[i];
  }
  const auto long_line = parse_json(lines[explanations.size()]);
  ASSERT_TRUE(long_line.has_value());
  ASSERT_EQ(long_line->at("evidence").items.size(), long_finding.evidence.size());
  EXPECT_EQ(long_line->at("evidence").items.back().text, long_finding.evidence.back());
  // The short line after it is the same as the one a fresh reporter writes.
  const std::string fresh = render(options, [](Reporter& reporter) { reporter.reset(refused_finding()); });
  EXPECT_EQ(lines.back() + "\n", fresh);
}

TEST(JsonReport, ConnectionPatternAndStatsObjects) {
  ReportOptions options;
  options.format = Format::json;
  const auto lines = lines_of(render(options, feed_everything));
  ASSERT_EQ(lines.size(), 5u);
  const auto connection = parse_json(lines[2]);
  ASSERT_TRUE(connection.has_value());
  for (const char* field : {"id", "originator", "originator_port", "responder", "responder_port",
                            "first_ts", "last_ts", "packets", "originator_bytes",
                            "responder_bytes", "history", "state", "resets", "causes"}) {
    EXPECT_TRUE(connection->has(field)) << field;
  }
  EXPECT_EQ(connection->at("causes").items.size(), 3u);

  const auto pattern = parse_json(lines[3]);
  ASSERT_TRUE(pattern.has_value());
  for (const char* field : {"first_ts", "last_ts", "subject", "parties", "count", "rate",
                            "example_frames", "explanation", "confidence"}) {
    EXPECT_TRUE(pattern->has(field)) << field;
  }
  EXPECT_EQ(pattern->at("rate").number, 125.0);

  const auto stats = parse_json(lines[4]);
  ASSERT_TRUE(stats.has_value());
  const JsonValue& capture = stats->at("capture");
  EXPECT_EQ(capture.at("packets").number, 13);
  EXPECT_EQ(capture.at("inputs_failed").number, 1);
  ASSERT_EQ(capture.at("errors").items.size(), 1u);
  EXPECT_EQ(capture.at("errors").items[0].at("file").text, "missing \"file\".pcap");
  EXPECT_EQ(stats->at("decode").at("not_ip").number, 1);
  EXPECT_EQ(stats->at("track").at("evicted_pressure").number, 3);
  EXPECT_EQ(stats->at("track").at("resets_judged_early").number, 2);
  const JsonValue& by_cause = stats->at("diagnose").at("by_cause");
  EXPECT_EQ(by_cause.fields.size(), static_cast<size_t>(cause_count));
  EXPECT_EQ(by_cause.at("refused").number, 5);
  EXPECT_EQ(by_cause.at("forged").number, 1);
  EXPECT_EQ(by_cause.at("unexplained").number, 0);
}

TEST(CsvReport, HeaderThenOneQuotedRowPerReset) {
  ReportOptions options;
  options.format = Format::csv;
  const std::string out = render(options, feed_everything);
  // The explanation holds a quoted line break, so split on CRLF, which rows end with.
  const auto rows = lines_of(out, "\r\n");
  ASSERT_EQ(rows.size(), 3u) << out;
  EXPECT_EQ(rows[0],
            "frame,ts,src,sport,dst,dport,seq,ack,flags,cause,confidence,sender,seq_check,"
            "alternatives,duplicate_of,history,explanation,evidence");
  EXPECT_EQ(rows[1].rfind("9,1377201634.000000123,212.227.15.188,110,192.168.0.4,26242,0,"
                          "3145310915,\"RST,ACK\",forged,high,offpath,out_of_window,"
                          "middlebox;half_open,2,Sr,",
                          0),
            0u)
      << rows[1];
  EXPECT_NE(rows[1].find("\"a \"\"quoted\"\", comma\nnew line\\ and"), std::string::npos)
      << rows[1];
  EXPECT_NE(rows[1].find(",bad utf8 \xef\xbf\xbd\xef\xbf\xbd end | tab\there | caf\xc3\xa9"),
            std::string::npos)
      << rows[1];
  EXPECT_EQ(rows[2].rfind("2,1377201633.620883,", 0), 0u) << rows[2];
  // An empty duplicate_of column for a first reset.
  EXPECT_NE(rows[2].find(",exact,,,Sr,"), std::string::npos) << rows[2];
}

TEST(CsvReport, EmptyRunStillWritesTheHeader) {
  ReportOptions options;
  options.format = Format::csv;
  const std::string out = render(options, [](Reporter& reporter) { reporter.finish({}); });
  EXPECT_EQ(lines_of(out, "\r\n").size(), 1u);
}

TEST(TextReport, SummaryThenFindingsInFrameOrderWithoutColour) {
  ReportOptions options;
  options.format = Format::text;
  options.color = false;
  const std::string out = render(options, feed_everything);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  for (const char* expected :
       {"2013-08-22 20:00:33.000000 to 2013-08-22 20:00:35.879756 UTC (2.88 s)",
        "13 (1.4 kB captured)", "12 segments in 2 connections", "1 not IP",
        "under the memory cap", "verdicts on them may be weaker",
        "2 resets early, before their horizon, under the cap on waiting resets",
        "warning: 2 resets were judged before their horizon under the cap on waiting resets (--max-waiting-resets)",
        "missing \"file\".pcap: No such file or directory", "Resets by cause", "refused",
        "nothing listens on the port", "Services that reset or were reset",
        "212.227.15.188:110", "Hosts that sent resets", "rst_flood on 192.168.0.4",
        "frame 2  2013-08-22 20:00:33.620883  212.227.15.188:110 -> 192.168.0.4:26242  RST,ACK",
        "refused, high confidence, sent by the endpoint (responder), seq exact",
        "Nothing listens on 212.227.15.188:110", "    - frame 1 is a SYN to port 110",
        "could also be: middlebox, half_open", "a \"quoted\", comma\\nnew line\\ and \\x01 bell \\x7f", "duplicate of frame 2",
        "kernel reason: NO_SOCKET"}) {
    EXPECT_NE(out.find(expected), std::string::npos) << "missing: " << expected << "\n" << out;
  }
  // The summary comes first, and frame 2 is listed before frame 9 though it arrived later.
  const size_t summary_at = out.find("Resets by cause");
  const size_t frame2_at = out.find("frame 2  ");
  const size_t frame9_at = out.find("frame 9  ");
  ASSERT_NE(frame2_at, std::string::npos);
  ASSERT_NE(frame9_at, std::string::npos);
  EXPECT_LT(summary_at, frame2_at);
  EXPECT_LT(frame2_at, frame9_at);
}

// The text report's findings wait for its summary in an unnamed file in $TMPDIR, not in
// memory, and come out in frame order whatever order they came in; with no usable $TMPDIR they
// wait in memory, and the report is the same.
TEST(TextReport, FindingsWaitInAnUnnamedFileAndComeOutInFrameOrder) {
  const std::string previous = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "";
  const std::filesystem::path directory =
      std::filesystem::temp_directory_path() / ("rstscope-spool-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  // 3,000 findings: frames in order, then a run out of order, then in order again, and some
  // frames twice (kept in the order they came).
  std::vector<uint64_t> frames;
  for (uint64_t frame = 100; frame < 1100; ++frame) frames.push_back(frame);
  for (uint64_t frame = 2099; frame >= 1100; --frame) frames.push_back(frame);
  for (uint64_t frame = 2100; frame < 3100; ++frame) frames.push_back(frame % 7 == 0 ? frame - 1 : frame);
  const auto feed = [&](Reporter& reporter, bool check_spool) {
    for (size_t i = 0; i < frames.size(); ++i) {
      Finding finding = refused_finding();
      finding.frame = frames[i];
      finding.explanation = "finding number " + std::to_string(i);
      reporter.reset(finding);
    }
    if (check_spool) {
      // The spool: an open file in the directory, already unlinked.
      bool found = false;
      for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code error;
        const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
        if (target.rfind(directory.string() + "/", 0) == 0 && target.find("(deleted)") != std::string::npos) found = true;
      }
      EXPECT_TRUE(found) << "no unlinked file open in " << directory;
      EXPECT_TRUE(std::filesystem::is_empty(directory));
    }
    reporter.finish(sample_stats());
  };
  ReportOptions options;
  options.format = Format::text;
  options.color = false;
  setenv("TMPDIR", directory.c_str(), 1);
  const std::string spooled = render(options, [&](Reporter& reporter) { feed(reporter, true); });
  // A file that cannot grow past 64 KiB (a full disk, as the writer sees it): the spool moves
  // to memory on its first failed write, with what it held.
  std::string cut_short;
  {
    rlimit before{};
    getrlimit(RLIMIT_FSIZE, &before);
    rlimit small = before;
    small.rlim_cur = 64u << 10;
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    cut_short = render(options, [&](Reporter& reporter) { feed(reporter, false); });
    setrlimit(RLIMIT_FSIZE, &before);
    std::signal(SIGXFSZ, old_handler);
  }
  setenv("TMPDIR", (directory / "missing").c_str(), 1);
  const std::string in_memory = render(options, [&](Reporter& reporter) { feed(reporter, false); });
  if (previous.empty()) {
    unsetenv("TMPDIR");
  } else {
    setenv("TMPDIR", previous.c_str(), 1);
  }
  EXPECT_TRUE(std::filesystem::is_empty(directory));
  std::filesystem::remove_all(directory);
  EXPECT_EQ(spooled, in_memory);
  EXPECT_EQ(cut_short, in_memory);
  EXPECT_GT(in_memory.size(), size_t{256} << 10);  // the limit was reached
  // Frame order, ties in the order they came.
  std::vector<std::pair<uint64_t, size_t>> expected;
  for (size_t i = 0; i < frames.size(); ++i) expected.emplace_back(frames[i], i);
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t at = 0;
  for (const auto& [frame, i] : expected) {
    at = spooled.find("frame " + std::to_string(frame) + "  ", at);
    ASSERT_NE(at, std::string::npos) << "frame " << frame << " missing or out of order";
    at = spooled.find("finding number " + std::to_string(i) + "\n", at);
    ASSERT_NE(at, std::string::npos) << "finding " << i << " missing or out of order";
  }
}

TEST(TextReport, ColourOnlyWhenAsked) {
  ReportOptions options;
  options.format = Format::text;
  options.color = true;
  const std::string out = render(options, feed_everything);
  EXPECT_NE(out.find("\x1b["), std::string::npos);
}

TEST(TextReport, StreamingPrintsEachFindingAtOnceAndSummaryOnDemand) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* memory = open_memstream(&buffer, &size);
  ASSERT_NE(memory, nullptr);
  ReportOptions options;
  options.format = Format::text;
  options.streaming = true;
  options.out = memory;
  auto reporter = make_reporter(options);
  reporter->reset(refused_finding());
  // open_memstream updates buffer and size on fflush, which streaming mode must have done.
  ASSERT_NE(buffer, nullptr);
  const std::string after_finding(buffer, size);
  EXPECT_NE(after_finding.find("frame 2  "), std::string::npos) << after_finding;
  EXPECT_EQ(after_finding.find("Resets by cause"), std::string::npos);
  RunStats running = sample_stats();
  running.capture.kernel_dropped = 7;
  reporter->summary(running);
  const std::string after_summary(buffer, size);
  EXPECT_NE(after_summary.find("running summary"), std::string::npos) << after_summary;
  EXPECT_NE(after_summary.find("7 by the kernel"), std::string::npos) << after_summary;
  EXPECT_NE(after_summary.find("picture is incomplete"), std::string::npos) << after_summary;
  reporter->finish(running);
  reporter.reset();
  std::fclose(memory);
  const std::string out(buffer, size);
  std::free(buffer);
  EXPECT_NE(out.find("final summary"), std::string::npos);
}

TEST(TextReport, EmptyCaptureSaysSo) {
  ReportOptions options;
  const std::string out = render(options, [](Reporter& reporter) { reporter.finish({}); });
  EXPECT_NE(out.find("no packets"), std::string::npos) << out;
  EXPECT_NE(out.find("No resets found."), std::string::npos) << out;
}

TEST(TextReport, Ipv6EndpointsAreBracketed) {
  ReportOptions options;
  const std::string out = render(options, [](Reporter& reporter) {
    Finding finding = refused_finding();
    uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    finding.src = Address::v6(bytes);
    reporter.reset(finding);
    reporter.finish({});
  });
  EXPECT_NE(out.find("[2001:db8::1]:110 -> "), std::string::npos) << out;
}

}  // namespace
}  // namespace rstscope
