#pragma once
// A readable byte stream over a file descriptor or memory, optionally gzip or zstd compressed
// (detected by magic number). capture/ reads classic pcap from it directly, or hands it to
// libpcap or the pcapng reader as a FILE*.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace rstscope::capture_detail {

enum class Compression : uint8_t { none, gzip, zstd };

class ByteStream {
 public:
  // Opens a file (or standard input for "-"). Returns nullptr and sets `error` on failure.
  static std::unique_ptr<ByteStream> open_path(const std::string& path, std::string& error);
  static std::unique_ptr<ByteStream> open_memory(std::vector<uint8_t> bytes);
  ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  // Looks at the first decompressed bytes without consuming them; returns how many are there.
  size_t peek(uint8_t* out, size_t size);
  // Reads up to `size` decompressed bytes. Returns 0 at the end, -1 on error (see error()).
  ptrdiff_t read(uint8_t* out, size_t size);

  Compression compression() const { return compression_; }
  uint64_t delivered() const { return delivered_; }  // decompressed bytes handed out
  const std::string& error() const { return error_; }
  // The descriptor of a plain, uncompressed regular file opened by path, whose bytes are the
  // stream's from its first byte on: it can be mapped. -1 for anything else.
  int mappable_fd() const;

  // A FILE* reading this stream, fully buffered with `buffer`; the stream must outlive it.
  // Closing the FILE* does not close the stream.
  std::FILE* open_file(std::vector<char>& buffer);

 private:
  struct Decompressor;
  ByteStream();
  void detect_compression();
  ptrdiff_t read_raw(uint8_t* out, size_t size);
  ptrdiff_t read_decompressed(uint8_t* out, size_t size);
  ptrdiff_t read_gzip(uint8_t* out, size_t size);
  ptrdiff_t read_zstd(uint8_t* out, size_t size);
  bool fill_input();
  ptrdiff_t fail(std::string message);

  int fd_ = -1;
  bool owns_fd_ = false;
  std::vector<uint8_t> memory_;
  size_t memory_position_ = 0;
  bool is_memory_ = false;
  bool raw_end_ = false;

  // Raw bytes read ahead to detect compression, served before anything else.
  uint8_t raw_prefix_[8] = {};
  size_t raw_prefix_length_ = 0, raw_prefix_position_ = 0;
  // Decompressed bytes read ahead by peek(), served before anything else.
  uint8_t peeked_[32] = {};  // holds a classic pcap file header
  size_t peeked_length_ = 0, peeked_position_ = 0;

  Compression compression_ = Compression::none;
  std::unique_ptr<Decompressor> decompressor_;
  std::vector<uint8_t> input_;  // compressed input buffer
  size_t input_position_ = 0, input_length_ = 0;
  uint64_t delivered_ = 0;
  std::string error_;
};

}  // namespace rstscope::capture_detail
