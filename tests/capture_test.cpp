// CaptureSet: pcap (both byte orders, micro- and nanosecond), pcapng (interfaces, sections),
// gzip and zstd, memory, files, directories, time-ordered merging and BPF filters.
#include <gtest/gtest.h>

#include "support.hpp"
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "capture/live.hpp"
#include "decode/decode.hpp"
#include "synth/frames.hpp"

namespace rstscope {
namespace {

using testing::Bytes;
using testing::gzip;
using testing::TempDir;
using testing::byte_swapped;
using testing::zstd;

// An Ethernet frame whose TCP seq identifies it in the output.
Bytes frame_with_seq(uint32_t seq, uint16_t dport = 443) {
  synth::SegmentSpec spec;
  spec.src = Address::v4(0xc0000201);
  spec.dst = Address::v4(0xc6336402);
  spec.sport = 40000;
  spec.dport = dport;
  spec.seq = seq;
  spec.flags = tcp_flag::ack;
  Bytes frame;
  synth::append_ethernet_frame(frame, spec);
  return frame;
}

Bytes pcap_of(const std::vector<std::pair<int64_t, uint32_t>>& packets, bool nanosecond = true,
              uint16_t dport = 443) {
  synth::PcapWriter writer(1, nanosecond);
  for (const auto& [ts, seq] : packets) writer.add(ts, frame_with_seq(seq, dport));
  return writer.bytes();
}

struct Read {
  std::vector<Packet> packets;
  std::vector<uint32_t> seqs;
  std::vector<Bytes> data;
};

Read read_all(CaptureSet& capture) {
  Read read;
  Packet packet;
  DecodeStats stats;
  Segment segment;
  // Bounded: a runaway reader fails the test instead of hanging it.
  for (int i = 0; i < 100000 && capture.next(packet); ++i) {
    read.packets.push_back(packet);
    read.data.emplace_back(packet.data, packet.data + packet.caplen);
    read.seqs.push_back(decode(packet, segment, stats) == DecodeResult::tcp ? segment.seq : 0);
    read.packets.back().data = nullptr;
  }
  return read;
}

// Writes pcapng blocks in either byte order.
class PcapngBuilder {
 public:
  explicit PcapngBuilder(bool big_endian) : big_(big_endian) {}
  void set_big_endian(bool big_endian) { big_ = big_endian; }
  void section() {
    Bytes body;
    put32(body, 0x1A2B3C4D);
    put16(body, 1);
    put16(body, 0);
    put32(body, 0xffffffff);
    put32(body, 0xffffffff);
    block(0x0A0D0D0A, body);
  }
  void interface(uint16_t link_type, uint32_t snaplen, int tsresol = -1) {
    Bytes body;
    put16(body, link_type);
    put16(body, 0);
    put32(body, snaplen);
    if (tsresol >= 0) {
      put16(body, 9);
      put16(body, 1);
      body.insert(body.end(), {static_cast<uint8_t>(tsresol), 0, 0, 0});
      put16(body, 0);
      put16(body, 0);
    }
    block(1, body);
  }
  void packet(uint32_t interface_id, uint64_t units, const Bytes& data, uint32_t origlen = 0) {
    Bytes body;
    put32(body, interface_id);
    put32(body, static_cast<uint32_t>(units >> 32));
    put32(body, static_cast<uint32_t>(units));
    put32(body, static_cast<uint32_t>(data.size()));
    put32(body, origlen != 0 ? origlen : static_cast<uint32_t>(data.size()));
    body.insert(body.end(), data.begin(), data.end());
    while (body.size() % 4 != 0) body.push_back(0);
    block(6, body);
  }
  void custom_block() { block(0x00000BAD, Bytes{1, 2, 3, 4}); }
  const Bytes& bytes() const { return out_; }

 private:
  void put16(Bytes& to, uint16_t value) {
    if (big_) {
      to.insert(to.end(), {static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)});
    } else {
      to.insert(to.end(), {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)});
    }
  }
  void put32(Bytes& to, uint32_t value) {
    if (big_) {
      put16(to, static_cast<uint16_t>(value >> 16));
      put16(to, static_cast<uint16_t>(value));
    } else {
      put16(to, static_cast<uint16_t>(value));
      put16(to, static_cast<uint16_t>(value >> 16));
    }
  }
  void block(uint32_t type, const Bytes& body) {
    const auto total = static_cast<uint32_t>(12 + body.size());
    put32(out_, type);
    put32(out_, total);
    out_.insert(out_.end(), body.begin(), body.end());
    put32(out_, total);
  }
  bool big_;
  Bytes out_;
};

Bytes raw_ip_with_seq(uint32_t seq) {
  synth::SegmentSpec spec;
  spec.src = Address::v4(0xc0000201);
  spec.dst = Address::v4(0xc6336402);
  spec.sport = 1;
  spec.dport = 2;
  spec.seq = seq;
  spec.flags = tcp_flag::rst;
  Bytes packet;
  synth::append_ip_packet(packet, spec);
  return packet;
}

TEST(Capture, ClassicPcapNanosecond) {
  CaptureSet capture;
  ASSERT_TRUE(capture.add_memory("ns.pcap", pcap_of({{1'000'000'123, 10}, {2'500'000'001, 20}})));
  const Read read = read_all(capture);
  ASSERT_EQ(read.packets.size(), 2u);
  EXPECT_EQ(read.packets[0].ts_ns, 1'000'000'123);
  EXPECT_EQ(read.packets[1].ts_ns, 2'500'000'001);
  EXPECT_EQ(read.packets[0].frame, 1u);
  EXPECT_EQ(read.packets[1].frame, 2u);
  EXPECT_EQ(read.packets[0].link_type, 1u);
  EXPECT_EQ(read.seqs, (std::vector<uint32_t>{10, 20}));
  EXPECT_EQ(read.data[0], frame_with_seq(10));
  const CaptureStats& stats = capture.stats();
  EXPECT_EQ(stats.inputs, 1u);
  EXPECT_EQ(stats.inputs_failed, 0u);
  EXPECT_EQ(stats.packets, 2u);
  EXPECT_EQ(stats.bytes, 2 * frame_with_seq(1).size());
  EXPECT_EQ(stats.first_ns, 1'000'000'123);
  EXPECT_EQ(stats.last_ns, 2'500'000'001);
  EXPECT_TRUE(stats.errors.empty());
}

TEST(Capture, ClassicPcapMicrosecondAndSwappedByteOrder) {
  const Bytes micro = pcap_of({{1'000'002'000, 1}, {1'000'005'000, 2}}, false);
  for (const Bytes& bytes : {micro, byte_swapped(micro)}) {
    CaptureSet capture;
    ASSERT_TRUE(capture.add_memory("us.pcap", bytes));
    const Read read = read_all(capture);
    ASSERT_EQ(read.packets.size(), 2u);
    EXPECT_EQ(read.packets[0].ts_ns, 1'000'002'000);
    EXPECT_EQ(read.packets[1].ts_ns, 1'000'005'000);
    EXPECT_EQ(read.seqs, (std::vector<uint32_t>{1, 2}));
  }
  CaptureSet swapped_ns;
  swapped_ns.add_memory("be-ns.pcap", byte_swapped(pcap_of({{7'000'000'007, 3}})));
  const Read read = read_all(swapped_ns);
  ASSERT_EQ(read.packets.size(), 1u);
  EXPECT_EQ(read.packets[0].ts_ns, 7'000'000'007);
}

TEST(Capture, SnappedRecordsAreCountedAndDelivered) {
  synth::PcapWriter writer(1, true, 64);
  const Bytes frame = frame_with_seq(5);
  writer.add(1000, frame.data(), 40, static_cast<uint32_t>(frame.size()));
  CaptureSet capture;
  capture.add_memory("snapped.pcap", writer.bytes());
  const Read read = read_all(capture);
  ASSERT_EQ(read.packets.size(), 1u);
  EXPECT_EQ(read.packets[0].caplen, 40u);
  EXPECT_EQ(read.packets[0].origlen, frame.size());
  EXPECT_EQ(capture.stats().snapped, 1u);
}

TEST(Capture, PcapngInterfacesAndSectionsInBothByteOrders) {
  PcapngBuilder builder(false);
  builder.section();
  builder.interface(1, 65535, 9);   // Ethernet, nanoseconds
  builder.interface(101, 0);        // raw IP, default microseconds
  builder.packet(0, 5'000'000'001, frame_with_seq(1));
  builder.custom_block();
  builder.packet(1, 5'000'002, raw_ip_with_seq(2));
  builder.set_big_endian(true);
  builder.section();                // new section: interfaces start again
  builder.interface(101, 0, 3);     // milliseconds
  builder.packet(0, 6'001, raw_ip_with_seq(3), 1500);
  CaptureSet capture;
  ASSERT_TRUE(capture.add_memory("two-sections.pcapng", builder.bytes()));
  const Read read = read_all(capture);
  for (const InputError& error : capture.stats().errors) ADD_FAILURE() << error.message;
  ASSERT_EQ(read.packets.size(), 3u);
  EXPECT_EQ(read.packets[0].link_type, 1u);
  EXPECT_EQ(read.packets[1].link_type, 101u);
  EXPECT_EQ(read.packets[2].link_type, 101u);
  EXPECT_EQ(read.packets[0].ts_ns, 5'000'000'001);
  EXPECT_EQ(read.packets[1].ts_ns, 5'000'002'000);
  EXPECT_EQ(read.packets[2].ts_ns, 6'001'000'000);
  EXPECT_EQ(read.seqs, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(read.packets[2].frame, 3u);
  EXPECT_EQ(read.packets[2].origlen, 1500u);
  EXPECT_EQ(capture.stats().snapped, 1u);
}

TEST(Capture, GzipAndZstdAreDetectedByMagic) {
  const Bytes plain = pcap_of({{1000, 1}, {2000, 2}, {3000, 3}});
  for (const Bytes& compressed : {gzip(plain), zstd(plain)}) {
    CaptureSet capture;
    ASSERT_TRUE(capture.add_memory("capture.bin", compressed));
    EXPECT_EQ(read_all(capture).seqs, (std::vector<uint32_t>{1, 2, 3}));
    for (const InputError& error : capture.stats().errors) ADD_FAILURE() << error.message;
  }
  PcapngBuilder builder(false);
  builder.section();
  builder.interface(101, 0);
  builder.packet(0, 1, raw_ip_with_seq(9));
  CaptureSet pcapng_zstd;
  pcapng_zstd.add_memory("ng.zst", zstd(builder.bytes()));
  EXPECT_EQ(read_all(pcapng_zstd).seqs, (std::vector<uint32_t>{9}));
}

// A second gzip member continues the same stream (as `cat a.gz b.gz` makes).
TEST(Capture, ConcatenatedGzipMembers) {
  const Bytes plain = pcap_of({{1000, 1}, {2000, 2}});
  const size_t split = 24 + 16 + frame_with_seq(1).size();
  Bytes joined = gzip(Bytes(plain.begin(), plain.begin() + static_cast<long>(split)));
  const Bytes second = gzip(Bytes(plain.begin() + static_cast<long>(split), plain.end()));
  joined.insert(joined.end(), second.begin(), second.end());
  CaptureSet capture;
  capture.add_memory("joined.gz", joined);
  EXPECT_EQ(read_all(capture).seqs, (std::vector<uint32_t>{1, 2}));
  EXPECT_TRUE(capture.stats().errors.empty());
}

TEST(Capture, FilesWithMisleadingNames) {
  TempDir dir;
  const std::string gz_named_pcap = dir.write("really-gzip.pcap", gzip(pcap_of({{1, 4}})));
  const std::string pcap_named_zst = dir.write("plain.zst", pcap_of({{2, 5}}));
  CaptureSet capture;
  ASSERT_TRUE(capture.add_path(gz_named_pcap));
  ASSERT_TRUE(capture.add_path(pcap_named_zst));
  EXPECT_EQ(read_all(capture).seqs, (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(capture.stats().inputs, 2u);
}

TEST(Capture, MergesInputsInTimeOrder) {
  CaptureSet capture;
  capture.add_memory("a", pcap_of({{100'000, 1}, {300'000, 3}, {500'000, 5}}));
  capture.add_memory("b", pcap_of({{200'000, 2}, {400'000, 4}, {600'000, 6}}, false));
  const Read read = read_all(capture);
  EXPECT_EQ(read.seqs, (std::vector<uint32_t>{1, 2, 3, 4, 5, 6}));
  for (size_t i = 0; i < read.packets.size(); ++i) EXPECT_EQ(read.packets[i].frame, i + 1);
  EXPECT_EQ(capture.stats().packets, 6u);
  EXPECT_EQ(capture.stats().inputs, 2u);
}

TEST(Capture, PacketDataStaysValidUntilNextCall) {
  CaptureSet capture;
  capture.add_memory("a", pcap_of({{100, 1}, {300, 3}}));
  capture.add_memory("b", pcap_of({{200, 2}}));
  Packet packet;
  ASSERT_TRUE(capture.next(packet));
  const Bytes first(packet.data, packet.data + packet.caplen);
  EXPECT_EQ(first, frame_with_seq(1));
  ASSERT_TRUE(capture.next(packet));
  EXPECT_EQ(Bytes(packet.data, packet.data + packet.caplen), frame_with_seq(2));
}

TEST(Capture, DirectoryReadsItsCapturesAndSkipsOtherFiles) {
  TempDir dir;
  dir.write("b.pcap", pcap_of({{200, 2}}));
  dir.write("a.pcap.gz", gzip(pcap_of({{100, 1}, {300, 3}})));
  dir.write("notes.txt", Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
  CaptureSet capture;
  ASSERT_TRUE(capture.add_path(dir.path()));
  EXPECT_EQ(read_all(capture).seqs, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_TRUE(capture.stats().errors.empty());
  EXPECT_EQ(capture.stats().inputs, 2u);
}

TEST(Capture, FilterConsumesFrameNumbers) {
  synth::PcapWriter writer(1, true);
  writer.add(100, frame_with_seq(1, 443));
  writer.add(200, frame_with_seq(2, 80));
  writer.add(300, frame_with_seq(3, 443));
  writer.add(400, frame_with_seq(4, 80));
  CaptureOptions options;
  options.filter = "tcp port 80";
  CaptureSet capture(options);
  capture.add_memory("filtered", writer.bytes());
  const Read read = read_all(capture);
  EXPECT_EQ(read.seqs, (std::vector<uint32_t>{2, 4}));
  ASSERT_EQ(read.packets.size(), 2u);
  EXPECT_EQ(read.packets[0].frame, 2u);
  EXPECT_EQ(read.packets[1].frame, 4u);
  EXPECT_EQ(capture.stats().filtered_out, 2u);
  EXPECT_EQ(capture.stats().packets, 4u);
}

TEST(Capture, FilterAppliesPerLinkType) {
  PcapngBuilder builder(false);
  builder.section();
  builder.interface(1, 0);
  builder.interface(101, 0);
  builder.packet(0, 1, frame_with_seq(1));
  builder.packet(1, 2, raw_ip_with_seq(2));
  CaptureOptions options;
  options.filter = "tcp[tcpflags] & tcp-rst != 0";
  CaptureSet capture(options);
  capture.add_memory("mixed", builder.bytes());
  const Read read = read_all(capture);
  EXPECT_EQ(read.seqs, (std::vector<uint32_t>{2}));
  ASSERT_EQ(read.packets.size(), 1u);
  EXPECT_EQ(read.packets[0].link_type, 101u);
  EXPECT_TRUE(capture.stats().errors.empty());
}

TEST(Capture, CheckFilter) {
  EXPECT_EQ(CaptureSet::check_filter("tcp and port 443"), "");
  EXPECT_NE(CaptureSet::check_filter("tcp and and"), "");
  CaptureOptions options;
  options.filter = "no such ((";
  CaptureSet capture(options);
  capture.add_memory("x", pcap_of({{1, 1}}));
  EXPECT_TRUE(read_all(capture).packets.empty());
  ASSERT_FALSE(capture.stats().errors.empty());
  EXPECT_NE(capture.stats().errors[0].message.find("filter"), std::string::npos);
}

TEST(Capture, EmptyPcapIsNotAnError) {
  CaptureSet capture;
  ASSERT_TRUE(capture.add_memory("empty", pcap_of({})));
  EXPECT_TRUE(read_all(capture).packets.empty());
  EXPECT_TRUE(capture.stats().errors.empty());
}

TEST(Capture, StandardInputThroughAPipe) {
  // Feeds standard input from a pipe for the duration of the read.
  const Bytes bytes = zstd(pcap_of({{10, 1}, {20, 2}}));
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  ASSERT_LT(bytes.size(), 60000u);  // fits the pipe buffer, so one write cannot block
  ASSERT_EQ(::write(pipe_ends[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(pipe_ends[1]);
  const int saved = ::dup(STDIN_FILENO);
  ::dup2(pipe_ends[0], STDIN_FILENO);
  ::close(pipe_ends[0]);
  std::vector<uint32_t> seqs;
  {
    CaptureSet capture;
    EXPECT_TRUE(capture.add_path("-"));
    seqs = read_all(capture).seqs;
    for (const InputError& error : capture.stats().errors) ADD_FAILURE() << error.message;
    EXPECT_EQ(capture.stats().inputs, 1u);
  }
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  EXPECT_EQ(seqs, (std::vector<uint32_t>{1, 2}));
}

Packet packet_of(const Bytes& frame, int64_t ts_ns) {
  Packet packet;
  packet.ts_ns = ts_ns;
  packet.link_type = 1;
  packet.data = frame.data();
  packet.caplen = static_cast<uint32_t>(frame.size());
  packet.origlen = packet.caplen;
  return packet;
}

TEST(Capture, DumperRotatesBySizeAndReadsBack) {
  TempDir dir;
  const std::string base = dir.path() + "/out.pcap";
  PcapDumper dumper;
  ASSERT_TRUE(dumper.open(base, 1, 262144, 200)) << dumper.error();
  for (uint32_t i = 0; i < 10; ++i) {
    const Bytes frame = frame_with_seq(i + 1);
    ASSERT_TRUE(dumper.write(packet_of(frame, 1'000'000'007 + i)));
  }
  dumper.close();
  // 24-byte header, 70-byte records: a file passes 200 bytes after three records.
  EXPECT_TRUE(std::filesystem::exists(base));
  EXPECT_TRUE(std::filesystem::exists(base + "1"));
  EXPECT_TRUE(std::filesystem::exists(base + "3"));
  EXPECT_FALSE(std::filesystem::exists(base + "4"));
  CaptureSet capture;
  for (const char* suffix : {"", "1", "2", "3"}) ASSERT_TRUE(capture.add_path(base + suffix));
  const Read read = read_all(capture);
  EXPECT_EQ(read.seqs, (std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  ASSERT_FALSE(read.packets.empty());
  EXPECT_EQ(read.packets[0].ts_ns, 1'000'000'007);
}

TEST(Capture, DumperRefusesAnExistingFileUnlessTold) {
  TempDir dir;
  const std::string base = dir.path() + "/out.pcap";
  auto write_text = [](const std::string& file, const char* text) {
    std::FILE* out = std::fopen(file.c_str(), "w");
    ASSERT_NE(out, nullptr);
    std::fputs(text, out);
    std::fclose(out);
  };
  auto text_of = [](const std::string& file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  write_text(base, "kept");
  PcapDumper dumper;
  EXPECT_FALSE(dumper.open(base, 1));
  EXPECT_NE(dumper.error().find("already exists"), std::string::npos) << dumper.error();
  EXPECT_EQ(text_of(base), "kept");

  // A rotated file that exists is refused too, when the rotation reaches it.
  std::filesystem::remove(base);
  write_text(base + "1", "kept too");
  ASSERT_TRUE(dumper.open(base, 1, 262144, 100)) << dumper.error();
  const Bytes frame = frame_with_seq(1);
  bool refused = false;
  for (int i = 0; i < 5 && !refused; ++i) refused = !dumper.write(packet_of(frame, 1'000'000'000 + i));
  EXPECT_TRUE(refused);
  EXPECT_NE(dumper.error().find("already exists"), std::string::npos) << dumper.error();
  EXPECT_EQ(text_of(base + "1"), "kept too");
  dumper.close();

  // Told to, it overwrites.
  ASSERT_TRUE(dumper.open(base + "1", 1, 262144, 0, true)) << dumper.error();
  EXPECT_TRUE(dumper.write(packet_of(frame, 1'000'000'000)));
  EXPECT_TRUE(dumper.close());
  EXPECT_NE(text_of(base + "1"), "kept too");
}

TEST(Capture, DumperSaysWhenTheDiskIsFull) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full here";
  PcapDumper dumper;
  ASSERT_TRUE(dumper.open("/dev/full", 1, 262144, 0, true)) << dumper.error();
  const Bytes frame = frame_with_seq(1);
  // Buffered: the failure shows when the buffer is written, at the latest when closing.
  bool failed = false;
  for (int i = 0; i < 100 && !failed; ++i) failed = !dumper.write(packet_of(frame, 1'000'000'000 + i));
  failed = !dumper.close() || failed;
  EXPECT_TRUE(failed);
  EXPECT_NE(dumper.error().find("failed"), std::string::npos) << dumper.error();
}

TEST(Capture, LiveCaptureOnMissingInterfaceSaysWhy) {
  LiveCapture live;
  LiveOptions options;
  options.interface = "no-such-if0";
  EXPECT_FALSE(live.open(options));
  EXPECT_NE(live.error().find("no-such-if0"), std::string::npos) << live.error();
  Packet packet;
  EXPECT_EQ(live.next(packet, 1), LiveCapture::Next::error);
}

}  // namespace
}  // namespace rstscope
