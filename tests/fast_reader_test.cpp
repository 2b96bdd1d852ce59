// The own classic pcap reader against libpcap, the reference: for every capture in the shared
// corpus, for generated captures in both byte orders and both timestamp resolutions, from
// memory, files, standard input, gzip and zstd, and for truncated and damaged variants, both
// readers must hand out the same packets (timestamp, lengths, bytes, frame, link type) and the
// same statistics and errors.
#include <fcntl.h>
#include <gtest/gtest.h>

#include "support.hpp"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "capture/mapping.hpp"
#include "capture/pcap_reader.hpp"
#include "synth/frames.hpp"

namespace rstscope {
namespace {

using testing::Bytes;
using testing::gzip;
using testing::TempDir;
using testing::byte_swapped;
using testing::zstd;
using capture_detail::PcapReader;

using testing::manifest_files;
const std::filesystem::path corpus = testing::corpus();

struct Seen {
  int64_t ts_ns = 0;
  uint32_t link_type = 0, caplen = 0, origlen = 0;
  uint64_t frame = 0;
  Bytes bytes;
  bool operator==(const Seen&) const = default;
};

struct Outcome {
  std::vector<Seen> packets;
  CaptureStats stats;
};

using AddInputs = std::function<void(CaptureSet&)>;

Seen seen_of(const Packet& packet) {
  return Seen{packet.ts_ns, packet.link_type, packet.caplen, packet.origlen, packet.frame,
              Bytes(packet.data, packet.data + packet.caplen)};
}

Outcome read_with(PcapReaderChoice reader, const AddInputs& add, size_t buffer_bytes = 8u << 20,
              const std::string& filter = "", bool read_ahead = false, bool map_file = true) {
  CaptureOptions options;
  options.pcap_reader = reader;
  options.read_ahead = read_ahead;
  options.map_file = map_file;
  options.read_buffer_bytes = buffer_bytes;
  options.filter = filter;
  CaptureSet capture(options);
  add(capture);
  Outcome run;
  Packet packet;
  // Bounded: a runaway reader fails the test instead of hanging it.
  for (size_t i = 0; i < 5'000'000 && capture.next(packet); ++i) run.packets.push_back(seen_of(packet));
  run.stats = capture.stats();
  return run;
}

std::string describe(const CaptureStats& stats) {
  std::ostringstream out;
  out << "inputs=" << stats.inputs << " failed=" << stats.inputs_failed
      << " packets=" << stats.packets << " bytes=" << stats.bytes << " snapped=" << stats.snapped
      << " filtered_out=" << stats.filtered_out << " first=" << stats.first_ns
      << " last=" << stats.last_ns;
  for (const InputError& error : stats.errors) {
    out << " | " << error.file << " @" << error.offset << " " << error.message
        << (error.fatal ? " (fatal)" : "");
  }
  return out.str();
}

void expect_outcome(const Outcome& fast, const Outcome& reference, const std::string& what) {
  EXPECT_EQ(describe(fast.stats), describe(reference.stats)) << what;
  EXPECT_EQ(fast.packets.size(), reference.packets.size()) << what;
  const size_t common = std::min(fast.packets.size(), reference.packets.size());
  for (size_t i = 0; i < common; ++i) {
    if (!(fast.packets[i] == reference.packets[i])) {
      const Seen& a = fast.packets[i];
      const Seen& b = reference.packets[i];
      ADD_FAILURE() << what << ": packet " << i << " differs: fast ts=" << a.ts_ns
                    << " caplen=" << a.caplen << " origlen=" << a.origlen << " frame=" << a.frame
                    << " link=" << a.link_type << ", libpcap ts=" << b.ts_ns
                    << " caplen=" << b.caplen << " origlen=" << b.origlen << " frame=" << b.frame
                    << " link=" << b.link_type;
      break;
    }
  }
}

// Reads the inputs with both readers, the fast one with and without read-ahead and with a
// single file mapped or read, and expects the same outcome; returns the fast one.
Outcome expect_same(const AddInputs& add, const std::string& what, size_t buffer_bytes = 8u << 20,
                const std::string& filter = "") {
  const Outcome fast = read_with(PcapReaderChoice::fast, add, buffer_bytes, filter);
  const Outcome reference = read_with(PcapReaderChoice::libpcap, add, buffer_bytes, filter);
  expect_outcome(fast, reference, what);
  // Small read-ahead buffers, so that records cross from one to the next.
  const size_t ahead_bytes = std::min<size_t>(buffer_bytes, 4096);
  expect_outcome(read_with(PcapReaderChoice::fast, add, ahead_bytes, filter, true), reference, what + " (read ahead)");
  expect_outcome(read_with(PcapReaderChoice::fast, add, buffer_bytes, filter, false, false), reference,
                 what + " (read, not mapped)");
  return fast;
}

AddInputs memory(const std::string& name, const Bytes& bytes) {
  return [name, bytes](CaptureSet& capture) { capture.add_memory(name, bytes); };
}

// ---- building captures ----

Bytes tcp_frame(uint32_t seq, uint32_t payload, bool v6 = false) {
  synth::SegmentSpec spec;
  if (v6) {
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    spec.src = Address::v6(a);
    spec.dst = Address::v6(b);
  } else {
    spec.src = Address::v4(0xc0000201 + seq % 7);
    spec.dst = Address::v4(0xc6336402);
  }
  spec.sport = static_cast<uint16_t>(40000 + seq % 100);
  spec.dport = 443;
  spec.seq = seq;
  spec.flags = seq % 5 == 0 ? tcp_flag::rst : tcp_flag::ack;
  spec.payload_len = payload;
  spec.timestamps = true;
  Bytes out;
  synth::append_ethernet_frame(out, spec);
  return out;
}

// Frames of many sizes (empty to jumbo), some snapped, timestamps mostly rising.
Bytes generated(bool nanosecond, uint32_t count = 300, uint32_t snaplen = 262144) {
  synth::PcapWriter writer(1, nanosecond, snaplen);
  std::mt19937 random(count * 7 + (nanosecond ? 1 : 0));
  int64_t ts = 1'700'000'000'000'000'000 + 123'456'789;
  for (uint32_t i = 0; i < count; ++i) {
    ts += static_cast<int64_t>(random() % 3'000'000) - 200'000;
    const auto kind = static_cast<uint32_t>(random() % 10);
    const auto payload = static_cast<uint32_t>(kind < 5 ? random() % 64 : kind < 8 ? random() % 1500 : random() % 9000);
    Bytes frame = tcp_frame(i, payload, i % 4 == 3);
    uint32_t origlen = 0;
    if (i % 9 == 4 && frame.size() > 60) {  // snapped: fewer bytes than on the wire
      origlen = static_cast<uint32_t>(frame.size());
      frame.resize(60);
    }
    if (i % 37 == 11) frame.clear();  // an empty record
    writer.add(ts, frame.data(), static_cast<uint32_t>(frame.size()), origlen);
  }
  return writer.bytes();
}

void put32(Bytes& out, uint32_t value) {
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<uint8_t>(value >> (8 * b)));
}

// A little-endian file header with every field chosen by the caller.
Bytes raw_header(uint32_t magic, uint16_t major, uint16_t minor, uint32_t snaplen,
                 uint32_t link_type) {
  Bytes out;
  put32(out, magic);
  out.push_back(static_cast<uint8_t>(major));
  out.push_back(static_cast<uint8_t>(major >> 8));
  out.push_back(static_cast<uint8_t>(minor));
  out.push_back(static_cast<uint8_t>(minor >> 8));
  put32(out, 0);
  put32(out, 0);
  put32(out, snaplen);
  put32(out, link_type);
  return out;
}

void raw_record(Bytes& out, uint32_t seconds, uint32_t fraction, uint32_t caplen, uint32_t length,
                const Bytes& data) {
  put32(out, seconds);
  put32(out, fraction);
  put32(out, caplen);
  put32(out, length);
  out.insert(out.end(), data.begin(), data.end());
}

// Runs `body` with standard input reading `file`.
void with_stdin(const std::string& file, const std::function<void()>& body) {
  const int saved = ::dup(STDIN_FILENO);
  const int fd = ::open(file.c_str(), O_RDONLY);
  ASSERT_GE(saved, 0);
  ASSERT_GE(fd, 0);
  ::dup2(fd, STDIN_FILENO);
  ::close(fd);
  body();
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
}

const std::vector<size_t> buffer_sizes = {61, 100, 4096, 8u << 20};

// ---- the shared corpus ----

TEST(FastReader, EveryCorpusCaptureReadsAsLibpcapReadsIt) {
  if (!std::filesystem::exists(corpus / "MANIFEST.tsv")) GTEST_SKIP() << "no shared corpus";
  const std::vector<std::string> files = manifest_files();
  ASSERT_FALSE(files.empty());
  size_t classic = 0;
  for (const std::string& name : files) {
    const std::string path = (corpus / name).string();
    std::ifstream in(path, std::ios::binary);
    uint8_t header[24] = {};
    in.read(reinterpret_cast<char*>(header), sizeof header);
    const uint32_t magic = static_cast<uint32_t>(header[0]) | static_cast<uint32_t>(header[1]) << 8 |
                           static_cast<uint32_t>(header[2]) << 16 | static_cast<uint32_t>(header[3]) << 24;
    if (magic != 0x0A0D0D0A) {
      // Every classic capture here must go through the own reader, not fall back.
      EXPECT_TRUE(PcapReader::supports(header, static_cast<size_t>(in.gcount()))) << name;
      ++classic;
    }
    for (const size_t buffer : {size_t{100}, size_t{8u << 20}}) {
      const Outcome run = expect_same([&](CaptureSet& capture) { capture.add_path(path); },
                                  name + " buffer " + std::to_string(buffer), buffer);
      EXPECT_TRUE(run.stats.errors.empty()) << name << ": " << describe(run.stats);
      EXPECT_GT(run.packets.size(), 0u) << name;
    }
    std::ifstream whole(path, std::ios::binary);
    const Bytes bytes((std::istreambuf_iterator<char>(whole)), std::istreambuf_iterator<char>());
    expect_same(memory(name + ".gz", gzip(bytes)), name + " gzip");
    expect_same(memory(name + ".zst", zstd(bytes)), name + " zstd", 4096);
    expect_same([&](CaptureSet& capture) { capture.add_path(path); }, name + " filtered", 8u << 20,
                "tcp[tcpflags] & tcp-rst != 0");
  }
  EXPECT_GT(classic, 10u);
}

TEST(FastReader, TheWholeCorpusMergedReadsAsLibpcapReadsIt) {
  if (!std::filesystem::exists(corpus / "MANIFEST.tsv")) GTEST_SKIP() << "no shared corpus";
  const std::vector<std::string> files = manifest_files();
  const Outcome run = expect_same(
      [&](CaptureSet& capture) {
        for (const std::string& name : files) capture.add_path((corpus / name).string());
      },
      "merged corpus");
  EXPECT_EQ(run.stats.inputs, files.size());
}

// ---- generated captures ----

TEST(FastReader, GeneratedCapturesInEveryEncodingAndSource) {
  TempDir dir;
  for (const bool nanosecond : {false, true}) {
    const Bytes little = generated(nanosecond);
    const Bytes big = byte_swapped(little);
    ASSERT_NE(little, big);
    for (const auto& [order, bytes] : {std::pair{"le", little}, std::pair{"be", big}}) {
      const std::string what = std::string(nanosecond ? "ns " : "us ") + order;
      ASSERT_TRUE(PcapReader::supports(bytes.data(), bytes.size())) << what;
      for (const size_t buffer : buffer_sizes) {
        const std::string sized = what + " buffer " + std::to_string(buffer);
        const Outcome run = expect_same(memory("g.pcap", bytes), sized + " memory", buffer);
        EXPECT_EQ(run.packets.size(), 300u) << sized;
        EXPECT_TRUE(run.stats.errors.empty()) << describe(run.stats);
        expect_same(memory("g.pcap.gz", gzip(bytes)), sized + " gzip", buffer);
        expect_same(memory("g.pcap.zst", zstd(bytes)), sized + " zstd", buffer);
      }
      const std::string file = dir.write(std::string("g-") + order + ".pcap", bytes);
      expect_same([&](CaptureSet& capture) { capture.add_path(file); }, what + " file");
      with_stdin(file, [&] {
        // Standard input can be read once: read it with each reader in turn.
        const Outcome fast = read_with(PcapReaderChoice::fast,
                                   [](CaptureSet& capture) { capture.add_path("-"); });
        const Outcome reference = read_with(PcapReaderChoice::libpcap,
                                        [&](CaptureSet& capture) { capture.add_path(file); });
        EXPECT_EQ(fast.packets.size(), reference.packets.size()) << what;
        EXPECT_TRUE(fast.packets == reference.packets) << what << " stdin";
        EXPECT_EQ(fast.stats.packets, reference.stats.packets);
        EXPECT_TRUE(fast.stats.errors.empty()) << describe(fast.stats);
      });
    }
  }
}

TEST(FastReader, SeveralInputsMergeAsWithLibpcap) {
  std::vector<Bytes> inputs = {generated(true, 120), byte_swapped(generated(false, 90)),
                               generated(false, 200)};
  const Bytes pcapng_like = {0x0a, 0x0d, 0x0d, 0x0a};  // a damaged pcapng beside them
  for (const size_t buffer : buffer_sizes) {
    const Outcome run = expect_same(
        [&](CaptureSet& capture) {
          capture.add_memory("a.pcap", inputs[0]);
          capture.add_memory("b.pcap", inputs[1]);
          capture.add_memory("c.pcap.gz", gzip(inputs[2]));
          capture.add_memory("d.pcapng", pcapng_like);
        },
        "merge buffer " + std::to_string(buffer), buffer);
    EXPECT_EQ(run.packets.size(), 410u);
    for (size_t i = 1; i < run.packets.size(); ++i) EXPECT_EQ(run.packets[i].frame, i + 1);
  }
}

TEST(FastReader, HeaderVariantsReadAsLibpcapReadsThem) {
  const Bytes data = tcp_frame(1, 100);
  struct Variant {
    std::string name;
    uint32_t magic;
    uint16_t major, minor;
    uint32_t snaplen, link_type;
  };
  const std::vector<Variant> variants = {
      {"ethernet", 0xa1b2c3d4, 2, 4, 65535, 1},
      {"null", 0xa1b2c3d4, 2, 4, 65535, 0},
      {"raw", 0xa1b23c4d, 2, 4, 65535, 101},
      {"loop", 0xa1b2c3d4, 2, 4, 65535, 108},
      {"sll", 0xa1b2c3d4, 2, 4, 65535, 113},
      {"sll2", 0xa1b2c3d4, 2, 4, 65535, 276},
      {"ipv4", 0xa1b2c3d4, 2, 4, 65535, 228},
      {"ipv6", 0xa1b2c3d4, 2, 4, 65535, 229},
      {"raw as DLT 12", 0xa1b2c3d4, 2, 4, 65535, 12},
      {"atm rfc1483", 0xa1b2c3d4, 2, 4, 65535, 100},
      {"user0", 0xa1b2c3d4, 2, 4, 65535, 147},
      {"nflog", 0xa1b2c3d4, 2, 4, 65535, 239},
      {"ethernet with fcs bits", 0xa1b2c3d4, 2, 4, 65535, 0x14000001},
      {"ethernet with reserved bits", 0xa1b2c3d4, 2, 4, 65535, 0x02000001},
      {"snaplen 0", 0xa1b2c3d4, 2, 4, 0, 1},
      {"snaplen 60", 0xa1b2c3d4, 2, 4, 60, 1},
      {"snaplen huge", 0xa1b2c3d4, 2, 4, 0xffffffff, 1},
      {"snaplen max+1", 0xa1b2c3d4, 2, 4, 262145, 1},
      {"version 2.3", 0xa1b2c3d4, 2, 3, 65535, 1},
      {"version 2.2", 0xa1b2c3d4, 2, 2, 65535, 1},
      {"version 1.0", 0xa1b2c3d4, 1, 0, 65535, 1},
      {"version 3.0", 0xa1b2c3d4, 3, 0, 65535, 1},
      {"version 2.5", 0xa1b2c3d4, 2, 5, 65535, 1},
      {"version 543.0", 0xa1b2c3d4, 543, 0, 65535, 1},
      {"modified format", 0xa1b2cd34, 2, 4, 65535, 1},
  };
  for (const Variant& variant : variants) {
    for (const bool swap : {false, true}) {
      Bytes bytes = raw_header(variant.magic, variant.major, variant.minor, variant.snaplen,
                               variant.link_type);
      raw_record(bytes, 1'600'000'000, 5, static_cast<uint32_t>(data.size()),
                 static_cast<uint32_t>(data.size()), data);
      raw_record(bytes, 1'600'000'001, 999'999, 40, 1500, Bytes(data.begin(), data.begin() + 40));
      raw_record(bytes, 1'600'000'002, 7, static_cast<uint32_t>(data.size()), 20, data);
      if (swap) bytes = byte_swapped(bytes);
      const std::string what = variant.name + (swap ? " swapped" : "");
      for (const size_t buffer : buffer_sizes) {
        expect_same(memory("h.pcap", bytes), what + " buffer " + std::to_string(buffer), buffer);
      }
    }
  }
}

TEST(FastReader, OddTimestampsReadAsLibpcapReadsThem) {
  const Bytes data = tcp_frame(2, 10);
  for (const uint32_t magic : {0xa1b2c3d4u, 0xa1b23c4du}) {
    Bytes bytes = raw_header(magic, 2, 4, 65535, 1);
    const std::vector<std::pair<uint32_t, uint32_t>> stamps = {
        {0, 0},          {1, 999'999'999}, {0x7fffffff, 999'999}, {0x80000000, 1},
        {0xffffffff, 0}, {5, 0xffffffff},  {6, 0x80000000},       {7, 1'000'000},
        {8, 2'000'000'000}};
    for (const auto& [seconds, fraction] : stamps) {
      raw_record(bytes, seconds, fraction, static_cast<uint32_t>(data.size()),
                 static_cast<uint32_t>(data.size()), data);
    }
    expect_same(memory("t.pcap", bytes), "timestamps magic " + std::to_string(magic));
    expect_same(memory("t.pcap", byte_swapped(bytes)), "swapped timestamps");
  }
}

// Records longer than the file's snap length are cut to it, as libpcap does.
TEST(FastReader, RecordsBeyondTheSnapLengthReadAsLibpcapReadsThem) {
  for (const uint32_t snaplen : {1u, 64u, 1000u}) {
    synth::PcapWriter writer(1, true, snaplen);
    for (uint32_t i = 0; i < 40; ++i) writer.add(1000 * (i + 1), tcp_frame(i, i * 50));
    for (const size_t buffer : buffer_sizes) {
      const std::string what =
          "snaplen " + std::to_string(snaplen) + " buffer " + std::to_string(buffer);
      const Outcome run = expect_same(memory("s.pcap", writer.bytes()), what, buffer);
      EXPECT_EQ(run.packets.size(), 40u) << what;
      for (const Seen& seen : run.packets) EXPECT_LE(seen.caplen, snaplen);
      expect_same(memory("s.pcap", byte_swapped(writer.bytes())), what + " swapped", buffer);
    }
  }
  // The largest record libpcap accepts, one byte more, and far more.
  for (const uint32_t caplen : {262144u, 262145u, 0x7fffffffu, 0xffffffffu}) {
    for (const bool whole : {true, false}) {
      Bytes bytes = raw_header(0xa1b2c3d4, 2, 4, 0, 1);
      raw_record(bytes, 1, 0, 60, 60, Bytes(60, 0xab));
      const size_t stored = whole ? std::min<size_t>(caplen, 262144) : 1000;
      raw_record(bytes, 2, 0, caplen, caplen, Bytes(stored, 0xcd));
      raw_record(bytes, 3, 0, 60, 60, Bytes(60, 0xef));
      for (const size_t buffer : buffer_sizes) {
        expect_same(memory("big.pcap", bytes),
                    "caplen " + std::to_string(caplen) + (whole ? " whole" : " cut") +
                        " buffer " + std::to_string(buffer),
                    buffer);
      }
    }
  }
}

// ---- damaged captures ----

// Every cut of a capture, in every source: the same packets before the damage, the same error.
TEST(FastReader, EveryTruncationReportsAsLibpcapDoes) {
  TempDir dir;
  synth::PcapWriter writer(1, false, 120);
  for (uint32_t i = 0; i < 6; ++i) writer.add(1000 * (i + 1), tcp_frame(i, i * 30));
  const Bytes whole = writer.bytes();
  for (const Bytes& bytes : {whole, byte_swapped(whole)}) {
    for (size_t length = 0; length <= bytes.size(); ++length) {
      const Bytes cut(bytes.begin(), bytes.begin() + static_cast<long>(length));
      const std::string what = "cut at " + std::to_string(length);
      expect_same(memory("cut.pcap", cut), what, 61);
      expect_same(memory("cut.pcap", cut), what, 4096);
      // From a file: mapped, the cut is where the mapping ends.
      const std::string file = dir.write("cut.pcap", cut);
      expect_same([&](CaptureSet& capture) { capture.add_path(file); }, what + " file", 4096);
      if (length % 7 == 0) {
        expect_same(memory("cut.pcap.gz", gzip(cut)), what + " gzip", 100);
        expect_same(memory("cut.pcap.zst", zstd(cut)), what + " zstd", 100);
      }
    }
  }
}

TEST(FastReader, DamagedCompressedStreamsReportAsLibpcapDoes) {
  const Bytes plain = generated(true, 200);
  const Bytes packed_gzip = gzip(plain);
  const Bytes packed_zstd = zstd(plain);
  for (const size_t fraction : {2u, 3u, 5u}) {
    const size_t gzip_cut = packed_gzip.size() - packed_gzip.size() / fraction;
    const size_t zstd_cut = packed_zstd.size() - packed_zstd.size() / fraction;
    for (const size_t buffer : buffer_sizes) {
      const std::string what = "1/" + std::to_string(fraction) + " buffer " + std::to_string(buffer);
      expect_same(memory("cut.gz", Bytes(packed_gzip.begin(), packed_gzip.begin() + static_cast<long>(gzip_cut))),
                  what + " gzip cut", buffer);
      expect_same(memory("cut.zst", Bytes(packed_zstd.begin(), packed_zstd.begin() + static_cast<long>(zstd_cut))),
                  what + " zstd cut", buffer);
    }
  }
}

// Random damage to valid captures: both readers agree on every byte and every error.
TEST(FastReader, RandomDamageReadsAsLibpcapReadsIt) {
  const std::vector<Bytes> seeds = {generated(true, 40), byte_swapped(generated(false, 40)),
                                    generated(false, 40, 200)};
  std::mt19937 random(20240601);
  TempDir dir;
  uint64_t packets = 0, errors = 0;
  for (int iteration = 0; iteration < 1500; ++iteration) {
    const Bytes& seed = seeds[static_cast<size_t>(iteration) % seeds.size()];
    Bytes damaged = seed;
    const int flips = 1 + static_cast<int>(random() % 6);
    for (int i = 0; i < flips; ++i) {
      // Mostly the headers, where damage changes what the reader does.
      const size_t at = random() % 2 == 0 ? random() % 24 : random() % damaged.size();
      damaged[at] ^= static_cast<uint8_t>(1 + random() % 255);
    }
    if (random() % 3 == 0) damaged.resize(random() % damaged.size());
    const size_t buffer = buffer_sizes[random() % buffer_sizes.size()];
    const Outcome run = expect_same(memory("fuzz-" + std::to_string(iteration), damaged),
                                "iteration " + std::to_string(iteration), buffer);
    if (iteration % 5 == 0) {  // from a file too, which is mapped
      const std::string file = dir.write("fuzz.pcap", damaged);
      expect_same([&](CaptureSet& capture) { capture.add_path(file); },
                  "iteration " + std::to_string(iteration) + " file", buffer);
    }
    packets += run.packets.size();
    errors += run.stats.errors.size();
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(packets, 1000u);
  EXPECT_GT(errors, 100u);
}

// ---- files that change while they are read ----

// The packets of `bytes` as the reader hands them out from memory.
std::vector<Seen> packets_of(const Bytes& bytes) {
  return read_with(PcapReaderChoice::fast, memory("whole.pcap", bytes)).packets;
}

// Reads `file` (mapped: the default), calling `change` once `after` packets were read, and
// taking `steps_ahead` steps of fetching ahead after each packet, as the tracking loop does.
Outcome read_changing(const std::string& file, size_t after, const std::function<void()>& change,
                      int steps_ahead = 0) {
  CaptureSet capture;
  EXPECT_TRUE(capture.add_path(file));
  const FetchAhead ahead = capture.fetch_ahead();
  EXPECT_TRUE(steps_ahead == 0 || ahead);
  Outcome run;
  Packet packet;
  for (size_t i = 0; i < 5'000'000 && capture.next(packet); ++i) {
    run.packets.push_back(seen_of(packet));
    if (run.packets.size() == after) change();
    for (int step = 0; step < steps_ahead; ++step) ahead();
  }
  run.stats = capture.stats();
  return run;
}

// A page of a mapped file that can no longer be read reads as zeros and marks the mapping; the
// process does not die of SIGBUS.
TEST(FileMapping, APageCutOffWhileMappedReadsAsZerosAndIsReported) {
  TempDir dir;
  const long page = ::sysconf(_SC_PAGESIZE);
  ASSERT_GT(page, 0);
  const std::string file = dir.write("pages.bin", Bytes(static_cast<size_t>(page) * 4, 0xab));
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    std::unique_ptr<capture_detail::FileMapping> mapping = capture_detail::FileMapping::open(fd);
    ASSERT_NE(mapping, nullptr);
    ASSERT_EQ(mapping->size(), static_cast<size_t>(page) * 4);
    EXPECT_EQ(mapping->data()[0], 0xab);
    EXPECT_FALSE(mapping->faulted());
    std::filesystem::resize_file(file, static_cast<uintmax_t>(page));
    const volatile uint8_t* bytes = mapping->data();
    EXPECT_EQ(bytes[2 * page + 5], 0);  // past the new end: a fault, repaired
    EXPECT_TRUE(mapping->faulted());
    EXPECT_EQ(bytes[0], 0xab);          // before it: the file's own bytes
    EXPECT_EQ(mapping->file_size(), static_cast<uint64_t>(page));
    EXPECT_FALSE(mapping->grow());
  }
  ::close(fd);
}

// The bytes of the mapping that starts at `data` that are in the process's resident memory, as
// /proc/self/smaps counts them.
size_t resident_bytes(const uint8_t* data) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  while (std::getline(smaps, line)) {
    unsigned long long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &start, &end) == 2 && line.find(' ') > line.find('-')) {
      in_mapping = start == reinterpret_cast<uintptr_t>(data);
    } else if (in_mapping && line.rfind("Rss:", 0) == 0) {
      return std::stoull(line.substr(4)) * 1024;
    }
  }
  ADD_FAILURE() << "no mapping at the data's address in /proc/self/smaps";
  return 0;
}

// Pages behind the reader gather up to a release step and are then handed back together: the
// mapping's resident memory stays bounded by the step, and a larger step hands back less often.
TEST(FileMapping, PagesBehindTheReaderAreHandedBackAStepAtATime) {
  TempDir dir;
  constexpr size_t size = 24u << 20, check = 512u << 10;
  const std::string file = dir.write("pages.bin", Bytes(size, 0x5a));
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (const size_t step : {capture_detail::FileMapping::default_release_step, size_t{4u << 20}}) {
    std::unique_ptr<capture_detail::FileMapping> mapping = capture_detail::FileMapping::open(fd, step);
    ASSERT_NE(mapping, nullptr);
    const volatile uint8_t* bytes = mapping->data();
    size_t peak = 0, hand_backs = 0, before = 0;
    unsigned sum = 0;
    for (size_t offset = 0; offset < size; offset += 4096) {
      sum += bytes[offset];
      if (offset % check != 0) continue;
      before = resident_bytes(mapping->data());
      peak = std::max(peak, before);
      mapping->release_before(offset);
      if (resident_bytes(mapping->data()) < before) ++hand_backs;
    }
    EXPECT_EQ(sum, 0x5au * (size / 4096));
    // A step gathers, plus what was read since the last check and what the kernel mapped
    // around the last fault: the whole folio the page cache holds it in, up to 2 MiB.
    EXPECT_GE(peak, step) << step;
    EXPECT_LE(peak, step + check + (2u << 20)) << step;
    EXPECT_GE(hand_backs, size / (step + check) - 1) << step;
    EXPECT_LE(hand_backs, size / step) << step;
    mapping->release_all();
    EXPECT_EQ(resident_bytes(mapping->data()), 0u) << step;
  }
  ::close(fd);
}

// A SIGBUS that is not a guarded mapping's still ends the process, as without the handler
// (exit 4: the process went on; exit 3: nothing could be mapped).
TEST(FileMappingDeathTest, OtherBusErrorsStillEndTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  const std::string file = dir.write("one.bin", Bytes(100, 1));
  EXPECT_EXIT(
      {
        const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        auto mapping = capture_detail::FileMapping::open(fd);  // installs the handler
        if (mapping == nullptr) std::_Exit(3);
        ::raise(SIGBUS);
        std::_Exit(4);
      },
      [](int status) {
        // Killed by the signal; or, in a sanitizer build, ended by the sanitizer's own handler,
        // which was there before and is handed what is not a mapping's.
        return (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
               (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3 && WEXITSTATUS(status) != 4);
      },
      "");
}

// A capture cut short while it is read, mapped: one error, and the packets before it are the
// file's, all of those that lie wholly before the cut, even when the fetching ahead went past it
// long before the reader. The rest of the last page of a file cut short reads as zeros, so the
// one packet that spans the cut may end in zeros; no packet is made of them.
TEST(FastReader, AFileCutShortWhileMappedEndsInAnErrorNotACrash) {
  TempDir dir;
  const Bytes bytes = generated(false, 3000);
  ASSERT_GT(bytes.size(), 2u << 20);
  const std::vector<Seen> expected = packets_of(bytes);
  std::vector<size_t> expected_offsets;  // where each record starts in the file
  for (size_t at = 24; at + 16 <= bytes.size();) {
    expected_offsets.push_back(at);
    at += 16 + (bytes[at + 8] | bytes[at + 9] << 8 | bytes[at + 10] << 16 | static_cast<size_t>(bytes[at + 11]) << 24);
  }
  ASSERT_EQ(expected_offsets.size(), expected.size());
  for (const int steps_ahead : {0, 64}) {
  for (const size_t cut : {bytes.size() / 3, (bytes.size() / 2) & ~size_t{4095}, size_t{200'000}}) {
    const std::string what = "cut to " + std::to_string(cut) + ", " + std::to_string(steps_ahead) + " steps ahead";
    const std::string file = dir.write("shrinking.pcap", bytes);
    const Outcome run = read_changing(file, 100, [&] { std::filesystem::resize_file(file, cut); }, steps_ahead);
    const std::vector<Seen>& seen = run.packets;
    const CaptureStats& stats = run.stats;
    ASSERT_EQ(stats.errors.size(), 1u) << what << ": " << describe(stats);
    EXPECT_LT(seen.size(), expected.size()) << what;
    EXPECT_GE(seen.size(), 100u) << what;
    size_t whole = 0;  // the records that lie wholly before the cut
    while (whole < expected.size() && expected_offsets[whole] + 16 + expected[whole].bytes.size() <= cut) ++whole;
    EXPECT_GE(seen.size(), whole) << what;
    for (size_t i = 0; i < seen.size() && i < expected.size(); ++i) {
      if (seen[i] == expected[i]) continue;
      Seen zeroed = expected[i];  // the file's packet, with zeros from the cut on
      const size_t data_at = expected_offsets[i] + 16;
      for (size_t b = 0; b < zeroed.bytes.size(); ++b) {
        if (data_at + b >= cut) zeroed.bytes[b] = 0;
      }
      EXPECT_TRUE(i + 1 == seen.size() && data_at < cut && data_at + zeroed.bytes.size() > cut && seen[i] == zeroed)
          << what << ": packet " << i << " of " << seen.size() << " is not the file's";
      break;
    }
  }
  }
}

// Fetching ahead, however far and often, hands out the same packets; it is offered for one
// mapped classic pcap file alone, where there is a mapping to fetch ahead in.
TEST(FastReader, FetchingAheadChangesNoPacket) {
  TempDir dir;
  const Bytes bytes = generated(false, 3000);
  const std::vector<Seen> expected = packets_of(bytes);
  const std::string file = dir.write("ahead.pcap", bytes);
  for (const int steps_ahead : {1, 7, 5000}) {
    const Outcome run = read_changing(file, 0, [] {}, steps_ahead);
    EXPECT_TRUE(run.stats.errors.empty()) << describe(run.stats);
    EXPECT_TRUE(run.packets == expected) << steps_ahead << " steps ahead";
  }
  {
    // Steps after the end, once the input is closed and its reader gone, as the loop takes
    // them while it tracks its last batch (under the address sanitizer, a use after free
    // would end the test here).
    CaptureSet capture;
    ASSERT_TRUE(capture.add_path(file));
    const FetchAhead ahead = capture.fetch_ahead();
    ASSERT_TRUE(ahead);
    Packet packet;
    size_t count = 0;
    while (capture.next(packet)) ++count;
    EXPECT_EQ(count, expected.size());
    for (int step = 0; step < 1000; ++step) ahead();
    EXPECT_FALSE(capture.next(packet));
    EXPECT_TRUE(capture.stats().errors.empty()) << describe(capture.stats());
  }
  const auto offered = [](CaptureOptions options, const std::function<void(CaptureSet&)>& add) {
    CaptureSet capture(options);
    add(capture);
    return static_cast<bool>(capture.fetch_ahead());
  };
  const auto path = [&](const std::string& name) { return [&, name](CaptureSet& capture) { capture.add_path(name); }; };
  EXPECT_TRUE(offered({}, path(file)));
  CaptureOptions unmapped;
  unmapped.map_file = false;
  EXPECT_FALSE(offered(unmapped, path(file)));
  CaptureOptions filtered;
  filtered.filter = "tcp";
  EXPECT_FALSE(offered(filtered, path(file)));
  EXPECT_FALSE(offered({}, [&](CaptureSet& capture) { capture.add_memory("m.pcap", bytes); }));
  EXPECT_FALSE(offered({}, [&](CaptureSet& capture) {
    capture.add_path(file);
    capture.add_path(file);
  }));
  const std::string gz = dir.write("ahead.pcap.gz", gzip(bytes));
  EXPECT_FALSE(offered({}, path(gz)));
  EXPECT_FALSE(offered({}, [](CaptureSet&) {}));
}

// A capture that grows while it is read, as one still being written: read to its new end, as
// read() would.
TEST(FastReader, AFileThatGrowsWhileMappedIsReadToItsNewEnd) {
  TempDir dir;
  const Bytes bytes = generated(true, 2000);
  const std::vector<Seen> expected = packets_of(bytes);
  const size_t first = bytes.size() / 2;
  const std::string file = dir.write("growing.pcap", Bytes(bytes.begin(), bytes.begin() + static_cast<long>(first)));
  const Outcome run = read_changing(file, 50, [&] {
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(bytes.data() + first), static_cast<std::streamsize>(bytes.size() - first));
  });
  EXPECT_TRUE(run.stats.errors.empty()) << describe(run.stats);
  EXPECT_EQ(run.packets.size(), expected.size());
  EXPECT_TRUE(run.packets == expected);
}

}  // namespace
}  // namespace rstscope
