#include "report/report.hpp"

#include <array>
#include <ctime>

#include <fmt/format.h>

namespace rstscope {

std::unique_ptr<Reporter> make_reporter(const ReportOptions& options) {
  switch (options.format) {
    case Format::text: return make_text_reporter(options);
    case Format::json: return make_json_reporter(options);
    case Format::csv: return make_csv_reporter(options);
  }
  return make_text_reporter(options);
}

namespace {
constexpr std::array<std::string_view, 5> known_pattern_types{
    "rst_flood", "syn_flood", "backscatter", "port_scan", "blind_reset_attack"};

// Length of the valid UTF-8 sequence starting at text[index], or 0 when it is not valid
// (overlong forms, surrogates and code points past U+10FFFF are refused, RFC 3629).
size_t utf8_sequence_length(std::string_view text, size_t index) {
  const auto byte = [&](size_t at) { return static_cast<uint8_t>(text[at]); };
  const uint8_t lead = byte(index);
  size_t length = 0;
  uint8_t low = 0x80, high = 0xbf;  // the allowed range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (index + length > text.size()) return 0;
  if (byte(index + 1) < low || byte(index + 1) > high) return 0;
  for (size_t at = index + 2; at < index + length; ++at) {
    if (byte(at) < 0x80 || byte(at) > 0xbf) return 0;
  }
  return length;
}

// Splits a timestamp into whole seconds and nanoseconds in [0, 1e9), also before 1970.
void split_ns(int64_t ts_ns, int64_t& seconds, int64_t& nanoseconds) {
  seconds = ts_ns / 1'000'000'000;
  nanoseconds = ts_ns % 1'000'000'000;
  if (nanoseconds < 0) {
    nanoseconds += 1'000'000'000;
    seconds -= 1;
  }
}

std::string fraction(int64_t nanoseconds) {
  // Microseconds are what most captures hold; print nine digits only when they carry more.
  if (nanoseconds % 1000 == 0) return fmt::format("{:06}", nanoseconds / 1000);
  return fmt::format("{:09}", nanoseconds);
}
}  // namespace

std::span<const std::string_view> pattern_types() { return known_pattern_types; }

bool is_pattern_type(std::string_view name) {
  for (const auto type : known_pattern_types) {
    if (type == name) return true;
  }
  return false;
}

std::string json_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  size_t index = 0;
  while (index < text.size()) {
    const auto byte = static_cast<uint8_t>(text[index]);
    if (byte < 0x80) {
      switch (byte) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (byte < 0x20 || byte == 0x7f) {
            out += fmt::format("\\u{:04x}", byte);
          } else {
            out += static_cast<char>(byte);
          }
      }
      ++index;
      continue;
    }
    const size_t length = utf8_sequence_length(text, index);
    if (length == 0) {
      out += "\\ufffd";
      ++index;
      continue;
    }
    out.append(text.substr(index, length));
    index += length;
  }
  out += '"';
  return out;
}

std::string utf8_clean(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t index = 0;
  while (index < text.size()) {
    if (static_cast<uint8_t>(text[index]) < 0x80) {
      out += text[index++];
      continue;
    }
    const size_t length = utf8_sequence_length(text, index);
    if (length == 0) {
      out += "\xef\xbf\xbd";
      ++index;
      continue;
    }
    out.append(text.substr(index, length));
    index += length;
  }
  return out;
}

std::string printable(std::string_view text) {
  const std::string clean = utf8_clean(text);
  std::string out;
  out.reserve(clean.size());
  for (size_t index = 0; index < clean.size(); ++index) {
    const auto byte = static_cast<uint8_t>(clean[index]);
    if (byte == '\n') {
      out += "\\n";
    } else if (byte == '\r') {
      out += "\\r";
    } else if (byte == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else if (byte == 0xc2 && index + 1 < clean.size() &&
               static_cast<uint8_t>(clean[index + 1]) < 0xa0) {
      // U+0080..U+009F are C1 controls; some terminals obey them (0x9b starts a sequence).
      out += fmt::format("\\u{:04x}", static_cast<uint8_t>(clean[index + 1]));
      ++index;
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string format_epoch_seconds(int64_t ts_ns) {
  int64_t seconds = 0, nanoseconds = 0;
  split_ns(ts_ns, seconds, nanoseconds);
  if (seconds < 0 && nanoseconds != 0) {
    // -0.5 s splits into -1 s + 0.5 s; print it as the reader expects.
    const int64_t magnitude = -ts_ns;
    return fmt::format("-{}.{}", magnitude / 1'000'000'000, fraction(magnitude % 1'000'000'000));
  }
  return fmt::format("{}.{}", seconds, fraction(nanoseconds));
}

std::string format_utc(int64_t ts_ns, char separator, bool zone) {
  int64_t seconds = 0, nanoseconds = 0;
  split_ns(ts_ns, seconds, nanoseconds);
  const auto time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  if (gmtime_r(&time, &parts) == nullptr) return format_epoch_seconds(ts_ns);
  return fmt::format("{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}.{}{}", parts.tm_year + 1900,
                     parts.tm_mon + 1, parts.tm_mday, separator, parts.tm_hour, parts.tm_min,
                     parts.tm_sec, fraction(nanoseconds), zone ? "Z" : "");
}

std::string format_duration(int64_t duration_ns) {
  if (duration_ns < 0) duration_ns = 0;
  const double seconds = static_cast<double>(duration_ns) / 1e9;
  if (seconds < 1.0) return fmt::format("{} ms", duration_ns / 1'000'000);
  if (seconds < 60.0) return fmt::format("{:.2f} s", seconds);
  const int64_t whole = duration_ns / 1'000'000'000;
  if (whole < 3600) return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  if (whole < 86400) return fmt::format("{} h {:02} min", whole / 3600, (whole % 3600) / 60);
  return fmt::format("{} d {:02} h", whole / 86400, (whole % 86400) / 3600);
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  constexpr std::array<const char*, 5> units{"kB", "MB", "GB", "TB", "PB"};
  double value = static_cast<double>(bytes) / 1000.0;
  size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < units.size()) {
    value /= 1000.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, units[unit]);
}

}  // namespace rstscope
