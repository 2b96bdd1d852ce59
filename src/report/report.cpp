#include "report/report.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <iterator>

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

// Writes `value` as exactly `width` digits, zero-padded (value < 10^width, width <= 20).
char* put_digits(char* out, uint64_t value, int width) {
  for (int at = width - 1; at >= 0; --at) {
    out[at] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

char* put_number(char* out, uint64_t value) { return std::to_chars(out, out + 20, value).ptr; }

char* put_fraction(char* out, int64_t nanoseconds) {
  // Microseconds are what most captures hold; print nine digits only when they carry more.
  if (nanoseconds % 1000 == 0) return put_digits(out, static_cast<uint64_t>(nanoseconds / 1000), 6);
  return put_digits(out, static_cast<uint64_t>(nanoseconds), 9);
}

// The proleptic Gregorian date `days` after 1970-01-01, by whole 400-year eras (the
// days-to-civil arithmetic that needs no tables and no time zone database).
void civil_from_days(int64_t days, int64_t& year, unsigned& month, unsigned& day) {
  days += 719468;  // from 0000-03-01, so the leap day ends each year
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto day_of_era = static_cast<unsigned>(days - era * 146097);
  const unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned month_from_march = (5 * day_of_year + 2) / 153;
  day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
  month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
  year = static_cast<int64_t>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0);
}
}  // namespace

std::span<const std::string_view> pattern_types() { return known_pattern_types; }

bool is_pattern_type(std::string_view name) {
  for (const auto type : known_pattern_types) {
    if (type == name) return true;
  }
  return false;
}

namespace {

// Whether any byte of the 8 at `at` may need an escape in JSON (below 0x20, 0x7f and up, '"',
// '\\'). Never false when one does; true now and then when none does (a carry), which only
// sends those 8 bytes to the byte-wise check.
bool word_may_need_escape(const char* at) {
  uint64_t word = 0;
  std::memcpy(&word, at, 8);
  constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  const auto has_zero_byte = [](uint64_t value) { return (value - ones) & ~value & highs; };
  const uint64_t control = (word - ones * 0x20) & ~word & highs;  // a byte below 0x20
  const uint64_t high = ((word + ones) | word) & highs;           // a byte of 0x7f or more
  return (control | high | has_zero_byte(word ^ (ones * '"')) | has_zero_byte(word ^ (ones * '\\'))) != 0;
}

}  // namespace

size_t json_plain_run(std::string_view text, size_t from) {
  // Most text is plain ASCII: it is checked 8 bytes at a time.
  size_t run = from;
  while (run + 8 <= text.size() && !word_may_need_escape(text.data() + run)) run += 8;
  while (run < text.size()) {
    const auto byte = static_cast<uint8_t>(text[run]);
    if (byte < 0x20 || byte >= 0x7f || byte == '"' || byte == '\\') break;
    ++run;
  }
  return run - from;
}

void json_quote_to(std::string& out, std::string_view text) {
  out += '"';
  size_t index = 0;
  while (index < text.size()) {
    // Runs of bytes that need no escape are appended whole.
    const size_t run = index + json_plain_run(text, index);
    out.append(text.data() + index, run - index);
    index = run;
    if (index == text.size()) break;
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
        default: out += fmt::format("\\u{:04x}", byte);  // other C0 controls and DEL
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
}

std::string json_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  json_quote_to(out, text);
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
  // Most text is plain printable ASCII, which stays as it is: found 8 bytes at a time.
  if (json_plain_run(text) == text.size()) return std::string(text);
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

char* write_epoch_seconds(char* out, int64_t ts_ns) {
  int64_t seconds = 0, nanoseconds = 0;
  split_ns(ts_ns, seconds, nanoseconds);
  if (seconds < 0) {
    // -0.5 s splits into -1 s + 0.5 s; print it as the reader expects.
    const uint64_t magnitude = 0 - static_cast<uint64_t>(ts_ns);
    *out++ = '-';
    out = put_number(out, magnitude / 1'000'000'000);
    *out++ = '.';
    return put_fraction(out, static_cast<int64_t>(magnitude % 1'000'000'000));
  }
  out = put_number(out, static_cast<uint64_t>(seconds));
  *out++ = '.';
  return put_fraction(out, nanoseconds);
}

void append_epoch_seconds(std::string& out, int64_t ts_ns) {
  char text[time_text_max];
  out.append(text, write_epoch_seconds(text, ts_ns));
}

std::string format_epoch_seconds(int64_t ts_ns) {
  std::string out;
  append_epoch_seconds(out, ts_ns);
  return out;
}

char* write_utc(char* out, int64_t ts_ns, char separator, bool zone) {
  int64_t seconds = 0, nanoseconds = 0;
  split_ns(ts_ns, seconds, nanoseconds);
  int64_t days = seconds / 86400, second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    days -= 1;
  }
  int64_t year = 0;
  unsigned month = 0, day = 0;
  civil_from_days(days, year, month, day);
  // Nanoseconds since 1970 in 64 bits span the years 1677 to 2262: always four digits.
  out = put_digits(out, static_cast<uint64_t>(year), 4);
  *out++ = '-';
  out = put_digits(out, month, 2);
  *out++ = '-';
  out = put_digits(out, day, 2);
  *out++ = separator;
  out = put_digits(out, static_cast<uint64_t>(second_of_day / 3600), 2);
  *out++ = ':';
  out = put_digits(out, static_cast<uint64_t>(second_of_day / 60 % 60), 2);
  *out++ = ':';
  out = put_digits(out, static_cast<uint64_t>(second_of_day % 60), 2);
  *out++ = '.';
  out = put_fraction(out, nanoseconds);
  if (zone) *out++ = 'Z';
  return out;
}

void append_utc(std::string& out, int64_t ts_ns, char separator, bool zone) {
  char text[time_text_max];
  out.append(text, write_utc(text, ts_ns, separator, zone));
}

std::string format_utc(int64_t ts_ns, char separator, bool zone) {
  std::string out;
  out.reserve(32);
  append_utc(out, ts_ns, separator, zone);
  return out;
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
