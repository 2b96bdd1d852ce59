// The pcapng reader walks blocks in place in its own buffer. Against libpcap's pcapng reader on
// every pcapng capture of the shared corpus, and against itself with buffers from a few bytes
// (so that every block crosses a refill) to megabytes, on whole and truncated files.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "support.hpp"

namespace rstscope {
namespace {

using testing::Bytes;

struct Seen {
  int64_t ts_ns = 0;
  uint32_t caplen = 0, origlen = 0;
  Bytes bytes;
  bool operator==(const Seen&) const = default;
};

struct Outcome {
  std::vector<Seen> packets;
  std::string errors;
};

Outcome read_ours(const std::string& name, const Bytes& bytes, size_t buffer_bytes) {
  CaptureOptions options;
  options.read_buffer_bytes = buffer_bytes;
  CaptureSet capture(options);
  capture.add_memory(name, bytes);
  Outcome outcome;
  Packet packet;
  for (size_t i = 0; i < 1'000'000 && capture.next(packet); ++i) {
    outcome.packets.push_back(Seen{packet.ts_ns, packet.caplen, packet.origlen,
                                   Bytes(packet.data, packet.data + packet.caplen)});
  }
  for (const InputError& error : capture.stats().errors) {
    outcome.errors += "@" + std::to_string(error.offset) + " " + error.message + ";";
  }
  return outcome;
}

// libpcap's reading; `read` is false when it refuses the file (libpcap 1.10 stops at a second
// interface whose link type or snap length differs, which real captures have).
std::vector<Seen> read_libpcap(const std::string& path, bool& read) {
  char message[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, message);
  read = false;
  std::vector<Seen> packets;
  if (handle == nullptr) return packets;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  int status = 0;
  while ((status = pcap_next_ex(handle, &header, &data)) == 1) {
    packets.push_back(Seen{static_cast<int64_t>(header->ts.tv_sec) * 1000000000 + header->ts.tv_usec,
                           header->caplen, header->len, Bytes(data, data + header->caplen)});
  }
  read = status == PCAP_ERROR_BREAK;  // the end of the file, not an error
  pcap_close(handle);
  return packets;
}

std::vector<std::string> corpus_pcapng_files() {
  std::vector<std::string> found;
  for (const std::string& name : testing::manifest_files()) {
    const std::string path = (testing::corpus() / name).string();
    std::ifstream in(path, std::ios::binary);
    unsigned char magic[4] = {};
    in.read(reinterpret_cast<char*>(magic), sizeof magic);
    if (magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a) found.push_back(path);
  }
  return found;
}

Bytes file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(PcapngReader, CorpusCapturesReadAsLibpcapReadsThemWhateverTheBuffer) {
  const std::vector<std::string> files = corpus_pcapng_files();
  if (files.empty()) GTEST_SKIP() << "no pcapng captures in the shared corpus";
  size_t compared = 0;
  for (const std::string& path : files) {
    const Bytes bytes = file_bytes(path);
    const Outcome whole = read_ours(path, bytes, 8u << 20);
    EXPECT_EQ(whole.errors, "") << path;
    EXPECT_FALSE(whole.packets.empty()) << path;
    for (const size_t buffer : {size_t{64}, size_t{100}, size_t{4096}}) {
      const Outcome small = read_ours(path, bytes, buffer);
      EXPECT_EQ(small.errors, whole.errors) << path << " buffer " << buffer;
      EXPECT_TRUE(small.packets == whole.packets) << path << " buffer " << buffer;
    }
    bool read = false;
    const std::vector<Seen> reference = read_libpcap(path, read);
    if (!read) continue;
    ++compared;
    ASSERT_EQ(whole.packets.size(), reference.size()) << path;
    for (size_t i = 0; i < reference.size(); ++i) {
      // libpcap's microsecond fields hold nanoseconds here (nanosecond precision was asked for).
      EXPECT_EQ(whole.packets[i], reference[i]) << path << " packet " << i;
    }
  }
  EXPECT_GT(compared, 0u);
}

TEST(PcapngReader, EveryTruncationReadsTheSameWhateverTheBuffer) {
  const std::vector<std::string> files = corpus_pcapng_files();
  if (files.empty()) GTEST_SKIP() << "no pcapng captures in the shared corpus";
  const Bytes whole = file_bytes(files.front());
  const size_t limit = std::min<size_t>(whole.size(), 3000);
  size_t truncated = 0;
  for (size_t length = 0; length <= limit; ++length) {
    const Bytes cut(whole.begin(), whole.begin() + static_cast<long>(length));
    const Outcome reference = read_ours("cut.pcapng", cut, 8u << 20);
    for (const size_t buffer : {size_t{64}, size_t{61}, size_t{4096}}) {
      const Outcome small = read_ours("cut.pcapng", cut, buffer);
      EXPECT_EQ(small.errors, reference.errors) << "cut at " << length << ", buffer " << buffer;
      EXPECT_TRUE(small.packets == reference.packets) << "cut at " << length << ", buffer " << buffer;
    }
    if (reference.errors.find("truncated block") != std::string::npos) ++truncated;
  }
  EXPECT_GT(truncated, 0u);
}

}  // namespace
}  // namespace rstscope
