// Bad inputs become one clear InputError naming the file and offset; the other inputs go on.
// Random damage to valid captures never crashes or hangs capture + decode.
#include <gtest/gtest.h>

#include "support.hpp"
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "decode/decode.hpp"
#include "diagnose/pipeline.hpp"
#include "synth/frames.hpp"

namespace rstscope {
namespace {

using testing::Bytes;
using testing::gzip;
using testing::TempDir;
using testing::zstd;

Bytes frame(uint32_t seq, bool v6_addresses = false, uint16_t vlan = 0, uint32_t payload = 0) {
  synth::SegmentSpec spec;
  if (v6_addresses) {
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    spec.src = Address::v6(a);
    spec.dst = Address::v6(b);
  } else {
    spec.src = Address::v4(0xc0000201);
    spec.dst = Address::v4(0xc6336402);
  }
  spec.sport = 40000;
  spec.dport = 443;
  spec.seq = seq;
  spec.flags = tcp_flag::rst | tcp_flag::ack;
  spec.vlan = vlan;
  spec.payload_len = payload;
  spec.mss = 1460;
  spec.timestamps = true;
  spec.sack_permitted = true;
  spec.window_scale = 7;
  Bytes out;
  synth::append_ethernet_frame(out, spec);
  return out;
}

// Record i starts at 24 + i * (16 + frame size) in these captures.
Bytes three_records() {
  synth::PcapWriter writer(1, true);
  for (uint32_t i = 0; i < 3; ++i) writer.add(1000 * (i + 1), frame(i + 1));
  return writer.bytes();
}

const size_t record_bytes = 16 + frame(1).size();

Bytes good_capture() {
  synth::PcapWriter writer(1, true);
  writer.add(5000, frame(77));
  writer.add(6000, frame(78));
  return writer.bytes();
}

struct Outcome {
  size_t packets = 0;
  std::vector<uint32_t> seqs;
  CaptureStats stats;
};

// Reads `bad` next to a good input and returns what came out.
Outcome read_with_good(const std::function<void(CaptureSet&)>& add_bad) {
  CaptureOptions options;
  options.read_buffer_bytes = 4096;
  CaptureSet capture(options);
  add_bad(capture);
  capture.add_memory("good.pcap", good_capture());
  Outcome outcome;
  Packet packet;
  Segment segment;
  DecodeStats decode_stats;
  for (int i = 0; i < 1000 && capture.next(packet); ++i) {
    ++outcome.packets;
    if (decode(packet, segment, decode_stats) == DecodeResult::tcp) outcome.seqs.push_back(segment.seq);
  }
  outcome.stats = capture.stats();
  return outcome;
}

void expect_one_error(const Outcome& outcome, const std::string& file, uint64_t offset,
                      const std::string& words) {
  ASSERT_EQ(outcome.stats.errors.size(), 1u);
  const InputError& error = outcome.stats.errors[0];
  EXPECT_EQ(error.file, file);
  EXPECT_EQ(error.offset, offset) << error.message;
  EXPECT_NE(error.message.find(words), std::string::npos) << error.message;
  EXPECT_TRUE(error.fatal);
  EXPECT_EQ(error.message.find('\n'), std::string::npos);
  EXPECT_EQ(outcome.stats.inputs_failed, 1u);
  // The good input is read in full whatever happened to the bad one.
  EXPECT_NE(std::find(outcome.seqs.begin(), outcome.seqs.end(), 77u), outcome.seqs.end());
  EXPECT_NE(std::find(outcome.seqs.begin(), outcome.seqs.end(), 78u), outcome.seqs.end());
}

TEST(HostileInput, MissingFile) {
  TempDir dir;
  const std::string missing = dir.path() + "/no-such.pcap";
  bool added = true;
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { added = capture.add_path(missing); });
  EXPECT_FALSE(added);
  expect_one_error(outcome, missing, 0, "No such file");
}

TEST(HostileInput, DirectoryWithoutCaptures) {
  TempDir dir;
  dir.write("readme.txt", Bytes{'n', 'o', 'p', 'e', '\n'});
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_path(dir.path()); });
  expect_one_error(outcome, dir.path(), 0, "no capture files");
}

TEST(HostileInput, EmptyFile) {
  TempDir dir;
  const std::string empty = dir.write("empty.pcap", {});
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_path(empty); });
  expect_one_error(outcome, empty, 0, "empty");
}

TEST(HostileInput, TextIsNotACapture) {
  const std::string text = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  const Outcome outcome = read_with_good([&](CaptureSet& capture) {
    EXPECT_FALSE(capture.add_memory("request.txt", Bytes(text.begin(), text.end())));
  });
  expect_one_error(outcome, "request.txt", 0, "not a pcap or pcapng capture");
}

TEST(HostileInput, TruncatedGlobalHeader) {
  const Bytes whole = three_records();
  const Bytes cut(whole.begin(), whole.begin() + 10);
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("short.pcap", cut); });
  expect_one_error(outcome, "short.pcap", 0, "truncated");
}

TEST(HostileInput, TruncatedRecordHeaderKeepsEarlierPackets) {
  const Bytes whole = three_records();
  const Bytes cut(whole.begin(), whole.begin() + static_cast<long>(24 + 2 * record_bytes + 7));
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("cut.pcap", cut); });
  expect_one_error(outcome, "cut.pcap", 24 + 2 * record_bytes, "truncated");
  EXPECT_EQ(outcome.packets, 4u);  // two before the damage plus the good input's two
}

TEST(HostileInput, TruncatedRecordDataKeepsEarlierPackets) {
  const Bytes whole = three_records();
  const Bytes cut(whole.begin(), whole.begin() + static_cast<long>(24 + record_bytes + 16 + 20));
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("cut.pcap", cut); });
  expect_one_error(outcome, "cut.pcap", 24 + record_bytes, "truncated");
  EXPECT_EQ(outcome.packets, 3u);
}

TEST(HostileInput, CorruptRecordLength) {
  Bytes damaged = three_records();
  const uint32_t huge = 0x7fffffff;
  std::memcpy(damaged.data() + 24 + record_bytes + 8, &huge, 4);
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("huge.pcap", damaged); });
  expect_one_error(outcome, "huge.pcap", 24 + record_bytes, "2147483647");
  EXPECT_EQ(outcome.packets, 3u);
}

TEST(HostileInput, CorruptGzip) {
  Bytes compressed = gzip(three_records());
  for (size_t i = 20; i < compressed.size() - 10; i += 7) compressed[i] ^= 0x5a;
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("bad.gz", compressed); });
  expect_one_error(outcome, "bad.gz", outcome.stats.errors.empty() ? 0 : outcome.stats.errors[0].offset, "gzip");
}

TEST(HostileInput, TruncatedGzip) {
  const Bytes compressed = gzip(three_records());
  const Bytes cut(compressed.begin(), compressed.begin() + static_cast<long>(compressed.size() - 12));
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("cut.gz", cut); });
  ASSERT_EQ(outcome.stats.errors.size(), 1u);
  expect_one_error(outcome, "cut.gz", outcome.stats.errors[0].offset, "gzip stream truncated");
}

TEST(HostileInput, TruncatedZstd) {
  const Bytes compressed = zstd(three_records());
  const Bytes cut(compressed.begin(), compressed.begin() + static_cast<long>(compressed.size() / 2));
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("cut.zst", cut); });
  ASSERT_EQ(outcome.stats.errors.size(), 1u);
  expect_one_error(outcome, "cut.zst", outcome.stats.errors[0].offset, "zstd");
}

TEST(HostileInput, PcapngBadBlockLength) {
  // Section header, then a block whose length is not a multiple of 4.
  Bytes bytes{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0};
  bytes.insert(bytes.end(), {1, 0, 0, 0, 13, 0, 0, 0, 1, 0, 0, 0, 0});
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("bad.pcapng", bytes); });
  expect_one_error(outcome, "bad.pcapng", 28, "multiple of 4");
}

TEST(HostileInput, PcapngPacketForUndefinedInterface) {
  Bytes bytes{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0};
  bytes.insert(bytes.end(), {6, 0, 0, 0, 32, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                             0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0});
  const Outcome outcome = read_with_good([&](CaptureSet& capture) { capture.add_memory("bad.pcapng", bytes); });
  expect_one_error(outcome, "bad.pcapng", 28, "undefined interface");
}

Bytes varied_pcap() {
  synth::PcapWriter writer(1, true);
  for (uint32_t i = 0; i < 12; ++i) {
    writer.add(1000 * (i + 1), frame(i, i % 3 == 1, i % 4 == 2 ? 10 : 0, i * 7));
  }
  return writer.bytes();
}

Bytes varied_pcapng() {
  Bytes out{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0};
  out.insert(out.end(), {1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0});
  for (uint32_t i = 0; i < 6; ++i) {
    const Bytes data = frame(i, i % 2 == 1, 0, i * 5);
    const size_t padded = (data.size() + 3) & ~size_t{3};
    const auto total = static_cast<uint32_t>(32 + padded);
    auto put32 = [&](uint32_t value) {
      for (int b = 0; b < 4; ++b) out.push_back(static_cast<uint8_t>(value >> (8 * b)));
    };
    put32(6);
    put32(total);
    put32(0);
    put32(0);
    put32(i * 1000);
    put32(static_cast<uint32_t>(data.size()));
    put32(static_cast<uint32_t>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
    out.insert(out.end(), padded - data.size(), 0);
    put32(total);
  }
  return out;
}

// Flips random bytes (and sometimes cuts the end) of valid captures; everything must stay bounded.
TEST(HostileInput, RandomDamageNeverCrashes) {
  const std::vector<Bytes> seeds = {varied_pcap(), varied_pcapng(), gzip(varied_pcap()), zstd(varied_pcapng())};
  std::mt19937 random(20240531);
  uint64_t total_packets = 0, total_errors = 0;
  for (int iteration = 0; iteration < 2000; ++iteration) {
    const Bytes& seed = seeds[static_cast<size_t>(iteration) % seeds.size()];
    Bytes damaged = seed;
    const int flips = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < flips; ++i) {
      damaged[random() % damaged.size()] ^= static_cast<uint8_t>(1 + random() % 255);
    }
    if (random() % 4 == 0) damaged.resize(random() % damaged.size());
    CaptureOptions options;
    options.read_buffer_bytes = 4096;
    CaptureSet capture(options);
    capture.add_memory("fuzz-" + std::to_string(iteration), damaged);
    Packet packet;
    Segment segment;
    DecodeStats decode_stats;
    uint64_t packets = 0;
    while (capture.next(packet)) {
      ASSERT_LT(++packets, 100000u) << "runaway reader at iteration " << iteration;
      // Copy to an exact-size buffer so a sanitizer sees any read past the captured bytes.
      const Bytes copy(packet.data, packet.data + packet.caplen);
      packet.data = copy.data();
      decode(packet, segment, decode_stats);
      if (segment.payload_captured > 0) {
        ASSERT_GE(segment.payload, copy.data());
        ASSERT_LE(segment.payload + segment.payload_captured, copy.data() + copy.size());
      }
    }
    EXPECT_EQ(decode_stats.packets, packets);
    EXPECT_LE(capture.stats().errors.size(), 1u);
    total_packets += packets;
    total_errors += capture.stats().errors.size();
  }
  // The damage must have exercised both paths: packets read and errors reported.
  EXPECT_GT(total_packets, 1000u);
  EXPECT_GT(total_errors, 100u);
}

}  // namespace
}  // namespace rstscope

namespace rstscope {
namespace {

struct Counting : FindingSink {
  uint64_t resets = 0, connections = 0, patterns = 0;
  void reset(const Finding& finding) override {
    ++resets;
    EXPECT_FALSE(finding.explanation.empty());
    EXPECT_FALSE(finding.evidence.empty());
  }
  void connection(const ConnectionSummary&) override { ++connections; }
  void pattern(const PatternFinding&) override { ++patterns; }
};

// Damaged real traffic through the whole pipeline: tracking and every rule see impossible
// sequence numbers, flags and lengths, and must judge each RST without a crash or UB.
TEST(HostileInput, RandomDamageThroughTheWholeAnalysis) {
  std::ifstream sample(std::filesystem::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.pcap", std::ios::binary);
  const Bytes seed((std::istreambuf_iterator<char>(sample)), std::istreambuf_iterator<char>());
  ASSERT_GT(seed.size(), 1000u);
  std::mt19937 random(20261124);
  uint64_t resets = 0;
  for (int iteration = 0; iteration < 600; ++iteration) {
    Bytes damaged = seed;
    const int flips = 1 + static_cast<int>(random() % 64);
    // Past the file header, so most damage lands in packets rather than ending the read at once.
    for (int i = 0; i < flips; ++i) damaged[24 + random() % (damaged.size() - 24)] ^= static_cast<uint8_t>(1 + random() % 255);
    CaptureSet capture;
    capture.add_memory("damaged-" + std::to_string(iteration), damaged);
    Counting sink;
    AnalyzerOptions options;
    options.max_connections = 8 + random() % 32;  // the eviction paths too
    const RunStats stats = analyze_capture(capture, options, sink, {}, 1 + iteration % 2);
    EXPECT_EQ(sink.resets, stats.track.resets);
    resets += sink.resets;
  }
  EXPECT_GT(resets, 1000u);
}

}  // namespace
}  // namespace rstscope
