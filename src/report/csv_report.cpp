// CSV (RFC 4180): one row per reset finding. Patterns and statistics stay in JSON and text,
// because a spreadsheet wants one row shape.
#include <string>

#include <fmt/format.h>

#include "report/report.hpp"

namespace rstscope {
namespace {

constexpr std::string_view csv_header =
    "frame,ts,src,sport,dst,dport,seq,ack,flags,cause,confidence,sender,seq_check,"
    "alternatives,duplicate_of,history,explanation,evidence";

class CsvReporter final : public Reporter {
 public:
  explicit CsvReporter(const ReportOptions& options) : options_(options) {}

  void reset(const Finding& finding) override {
    header();
    std::string alternatives;
    for (const Cause cause : finding.alternatives) {
      if (!alternatives.empty()) alternatives += ';';
      alternatives += to_string(cause);
    }
    std::string evidence;
    for (const std::string& sentence : finding.evidence) {
      if (!evidence.empty()) evidence += " | ";
      evidence += sentence;
    }
    std::string row = fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n", finding.frame,
        format_epoch_seconds(finding.ts_ns), csv_field(finding.src.to_string()), finding.sport,
        csv_field(finding.dst.to_string()), finding.dport, finding.seq, finding.ack,
        csv_field(flags_to_string(finding.flags)), to_string(finding.cause),
        to_string(finding.confidence), to_string(finding.sender), to_string(finding.seq_check),
        csv_field(alternatives),
        finding.duplicate_of == 0 ? std::string() : fmt::format("{}", finding.duplicate_of),
        csv_field(utf8_clean(finding.history)), csv_field(utf8_clean(finding.explanation)),
        csv_field(utf8_clean(evidence)));
    std::fwrite(row.data(), 1, row.size(), options_.out);
    if (options_.streaming) std::fflush(options_.out);
  }

  void connection(const ConnectionSummary&) override {}
  void pattern(const PatternFinding&) override {}
  void summary(const RunStats&) override { header(); }

  void finish(const RunStats&) override {
    header();
    std::fflush(options_.out);
  }

 private:
  // Written lazily so an empty capture still yields a header and nothing else.
  void header() {
    if (header_written_) return;
    header_written_ = true;
    std::fwrite(csv_header.data(), 1, csv_header.size(), options_.out);
    std::fputs("\r\n", options_.out);
  }

  ReportOptions options_;
  bool header_written_ = false;
};

}  // namespace

std::unique_ptr<Reporter> make_csv_reporter(const ReportOptions& options) {
  return std::make_unique<CsvReporter>(options);
}

}  // namespace rstscope
