// Every capture in the shared corpus decodes with the same RST packets tshark finds.
#include <gtest/gtest.h>

#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "decode/decode.hpp"

namespace rstscope {
namespace {

using testing::manifest_files;
const std::filesystem::path corpus = testing::corpus();

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) fields.push_back(field);
  return fields;
}

// The frame.number column of F.tshark-rst.tsv.
std::vector<uint64_t> tshark_rst_frames(const std::string& file) {
  std::vector<uint64_t> frames;
  std::ifstream in(corpus / (file + ".tshark-rst.tsv"));
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    if (line.empty()) continue;
    frames.push_back(std::stoull(split_tabs(line).at(0)));
  }
  return frames;
}

TEST(SharedCaptures, EveryCaptureDecodesTheRstPacketsTsharkFinds) {
  if (!std::filesystem::exists(corpus / "MANIFEST.tsv")) {
    GTEST_SKIP() << "shared capture corpus not found next to the source tree";
  }
  const std::vector<std::string> files = manifest_files();
  ASSERT_FALSE(files.empty());
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    ASSERT_TRUE(std::filesystem::exists(corpus / (file + ".tshark-rst.tsv")));
    CaptureSet capture;
    ASSERT_TRUE(capture.add_path((corpus / file).string()));
    DecodeStats decode_stats;
    std::vector<uint64_t> rst_frames;
    Packet packet;
    Segment segment;
    uint64_t records = 0;
    while (capture.next(packet)) {
      ++records;
      EXPECT_EQ(packet.frame, records);
      if (decode(packet, segment, decode_stats) == DecodeResult::tcp && segment.has(tcp_flag::rst)) {
        rst_frames.push_back(segment.frame);
      }
    }
    for (const InputError& error : capture.stats().errors) {
      ADD_FAILURE() << error.file << " at " << error.offset << ": " << error.message;
    }
    EXPECT_TRUE(capture.stats().errors.empty());
    EXPECT_EQ(capture.stats().packets, records);
    EXPECT_EQ(decode_stats.packets, records);
    EXPECT_EQ(decode_stats.unsupported_link, 0u);
    EXPECT_EQ(rst_frames, tshark_rst_frames(file));
  }
}

}  // namespace
}  // namespace rstscope
