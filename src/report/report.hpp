#pragma once
// report/: renders findings as a terminal report, JSON Lines or CSV.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/stats.hpp"
#include "diagnose/analyzer.hpp"

namespace rstscope {

enum class Format { text, json, csv };

struct ReportOptions {
  Format format = Format::text;
  bool color = false;      // ANSI colours (text only); the CLI turns it on for a TTY
  bool streaming = false;  // live: write each finding as it comes, summary at the end
  std::FILE* out = stdout;
};

// A sink that writes the report. finish() writes the summary (text) or the statistics object.
class Reporter : public FindingSink {
 public:
  virtual void finish(const RunStats& stats) = 0;
  // Live: a running summary on demand (SIGUSR1), without ending the report.
  virtual void summary(const RunStats& stats) = 0;
};

std::unique_ptr<Reporter> make_reporter(const ReportOptions& options);

// One factory per format; make_reporter picks among them.
std::unique_ptr<Reporter> make_text_reporter(const ReportOptions& options);
std::unique_ptr<Reporter> make_json_reporter(const ReportOptions& options);
std::unique_ptr<Reporter> make_csv_reporter(const ReportOptions& options);

// The pattern finding types the analyzer may report, in a stable order.
std::span<const std::string_view> pattern_types();
bool is_pattern_type(std::string_view name);

// Helpers shared by the formats; public so their contract can be tested directly.
// A quoted JSON string. Control bytes, quotes and backslashes are escaped; bytes that are not
// valid UTF-8 become U+FFFD so the line always parses.
std::string json_quote(std::string_view text);
void json_quote_to(std::string& out, std::string_view text);  // the same, appended to `out`
// How many bytes of `text`, from `from` on, need no escape in JSON (so the run is copied whole).
size_t json_plain_run(std::string_view text, size_t from = 0);
// The text with every byte that is not valid UTF-8 replaced by U+FFFD.
std::string utf8_clean(std::string_view text);
// The text made safe for a terminal: as utf8_clean, and control characters (C0, DEL, C1)
// written as visible escapes such as \n or \x1b, so capture content cannot drive the terminal.
std::string printable(std::string_view text);
// One CSV field as RFC 4180 wants it: quoted when it holds a comma, quote, CR or LF.
std::string csv_field(std::string_view text);
// Seconds since the epoch with the fraction, e.g. "1377201633.620883" (9 digits if needed).
std::string format_epoch_seconds(int64_t ts_ns);
void append_epoch_seconds(std::string& out, int64_t ts_ns);
// The writers behind these two append_ functions: each writes at most time_text_max bytes at
// `out` and returns the end of what it wrote.
inline constexpr size_t time_text_max = 32;
char* write_epoch_seconds(char* out, int64_t ts_ns);
// UTC time, ISO 8601: "2013-08-22T19:20:33.620883Z"; `separator` replaces the 'T'.
std::string format_utc(int64_t ts_ns, char separator = 'T', bool zone = true);
void append_utc(std::string& out, int64_t ts_ns, char separator = 'T', bool zone = true);
char* write_utc(char* out, int64_t ts_ns, char separator = 'T', bool zone = true);
// A duration for people: "850 ms", "2.26 s", "4 min 05 s", "3 h 02 min".
std::string format_duration(int64_t duration_ns);
// Bytes for people: "512 B", "1.2 MB".
std::string format_bytes(uint64_t bytes);

}  // namespace rstscope
