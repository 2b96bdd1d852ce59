#pragma once
// Helpers the test files share: compressed copies, temporary folders, the shared corpus.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capture/capture.hpp"
#include "decode/decode.hpp"
#include "diagnose/analyzer.hpp"
#include "report/report.hpp"
#include "track/tracker.hpp"

namespace rstscope::testing {

using Bytes = std::vector<uint8_t>;

inline Bytes gzip(const Bytes& input) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&stream, static_cast<uLong>(input.size())) + 64);
  stream.next_in = const_cast<Bytes::value_type*>(input.data());
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

inline Bytes zstd(const Bytes& input) {
  Bytes out(ZSTD_compressBound(input.size()));
  const size_t size = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), 3);
  EXPECT_EQ(ZSTD_isError(size), 0u);
  out.resize(size);
  return out;
}

// Rewrites a little-endian classic pcap in big-endian order, field by field.
inline Bytes byte_swapped(Bytes bytes) {
  const auto swap_field = [&bytes](size_t at, size_t width) {
    for (size_t i = 0; i < width / 2; ++i) std::swap(bytes[at + i], bytes[at + width - 1 - i]);
  };
  swap_field(0, 4);
  swap_field(4, 2);
  swap_field(6, 2);
  for (size_t at = 8; at < 24; at += 4) swap_field(at, 4);
  size_t at = 24;
  while (at + 16 <= bytes.size()) {
    uint32_t caplen = 0;
    std::memcpy(&caplen, bytes.data() + at + 8, 4);
    for (size_t field = 0; field < 16; field += 4) swap_field(at + field, 4);
    at += 16 + caplen;
  }
  return bytes;
}

// A folder of its own under the system's temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("rstscope-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string write(const std::string& name, const Bytes& bytes) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return file.string();
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// The public capture corpus beside the project, with tshark's output for each capture.
inline std::filesystem::path corpus() {
  return std::filesystem::path(RSTSCOPE_SOURCE_DIR) / ".." / "shared" / "captures";
}

// The capture file names MANIFEST.tsv lists, in its order; empty when the corpus is absent.
inline std::vector<std::string> manifest_files() {
  std::vector<std::string> files;
  std::ifstream in(corpus() / "MANIFEST.tsv");
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    const std::string name = line.substr(0, line.find('\t'));
    if (!name.empty()) files.push_back(name);
  }
  return files;
}

// Runs `body` against a reporter writing into memory and returns what it wrote.
template <typename Body>
std::string render(ReportOptions options, Body body) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* memory = open_memstream(&buffer, &size);
  EXPECT_NE(memory, nullptr);
  options.out = memory;
  {
    auto reporter = make_reporter(options);
    body(*reporter);
  }
  std::fclose(memory);
  std::string out(buffer, size);
  std::free(buffer);
  return out;
}

// Feeds every TCP segment of the capture at `path` to `tracker`, each with the capture's clock,
// and returns the clock at the end (the caller finishes the tracker).
inline int64_t track_file(const std::filesystem::path& path, Tracker& tracker) {
  CaptureSet capture;
  EXPECT_TRUE(capture.add_path(path.string())) << path;
  DecodeStats decode_stats;
  Packet packet;
  Segment segment;
  int64_t clock_ns = 0;
  while (capture.next(packet)) {
    if (decode(packet, segment, decode_stats) != DecodeResult::tcp) continue;
    clock_ns = Analyzer::advance_clock(clock_ns, segment);
    tracker.add(segment);
  }
  return clock_ns;
}

}  // namespace rstscope::testing
