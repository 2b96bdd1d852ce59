#include "capture/stream.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace rstscope::capture_detail {

namespace {
constexpr size_t input_chunk_bytes = 128u << 10;
}

struct ByteStream::Decompressor {
  z_stream zlib{};
  bool zlib_ready = false;
  bool gzip_finished = false;
  ZSTD_DCtx* zstd = nullptr;
  size_t zstd_last = 0;  // 0 when the last zstd frame is complete

  ~Decompressor() {
    if (zlib_ready) inflateEnd(&zlib);
    if (zstd != nullptr) ZSTD_freeDCtx(zstd);
  }
};

ByteStream::ByteStream() = default;

ByteStream::~ByteStream() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

std::unique_ptr<ByteStream> ByteStream::open_path(const std::string& path, std::string& error) {
  std::unique_ptr<ByteStream> stream(new ByteStream());
  if (path == "-") {
    stream->fd_ = STDIN_FILENO;
  } else {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error = std::strerror(errno);
      return nullptr;
    }
    struct stat info {};
    if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
      ::close(fd);
      error = "is a directory";
      return nullptr;
    }
    stream->fd_ = fd;
    stream->owns_fd_ = true;
  }
  stream->detect_compression();
  if (!stream->error_.empty()) {
    error = stream->error_;
    return nullptr;
  }
  return stream;
}

int ByteStream::mappable_fd() const {
  if (!owns_fd_ || is_memory_ || compression_ != Compression::none) return -1;
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) return -1;
  return fd_;
}

std::unique_ptr<ByteStream> ByteStream::open_memory(std::vector<uint8_t> bytes) {
  std::unique_ptr<ByteStream> stream(new ByteStream());
  stream->memory_ = std::move(bytes);
  stream->is_memory_ = true;
  stream->detect_compression();
  return stream;
}

ptrdiff_t ByteStream::fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  return -1;
}

void ByteStream::detect_compression() {
  // Reads the first raw bytes once; read_raw() serves them again before the rest.
  uint8_t magic[4] = {};
  size_t have = 0;
  while (have < sizeof magic) {
    const ptrdiff_t got = read_raw(magic + have, sizeof magic - have);
    if (got <= 0) break;
    have += static_cast<size_t>(got);
  }
  std::memcpy(raw_prefix_, magic, have);
  raw_prefix_length_ = have;
  raw_prefix_position_ = 0;
  raw_end_ = false;
  if (have >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    compression_ = Compression::gzip;
  } else if (have >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
             magic[3] == 0xfd) {
    compression_ = Compression::zstd;
  }
  if (compression_ != Compression::none) {
    decompressor_ = std::make_unique<Decompressor>();
    input_.resize(input_chunk_bytes);
    if (compression_ == Compression::gzip) {
      // 15 + 32: a full window, gzip or zlib header detected automatically.
      if (inflateInit2(&decompressor_->zlib, 15 + 32) != Z_OK) {
        fail("cannot initialise gzip decompression");
      } else {
        decompressor_->zlib_ready = true;
      }
    } else {
      decompressor_->zstd = ZSTD_createDCtx();
      if (decompressor_->zstd == nullptr) fail("cannot initialise zstd decompression");
    }
  }
}

ptrdiff_t ByteStream::read_raw(uint8_t* out, size_t size) {
  if (raw_prefix_position_ < raw_prefix_length_) {
    const size_t count = std::min(size, raw_prefix_length_ - raw_prefix_position_);
    std::memcpy(out, raw_prefix_ + raw_prefix_position_, count);
    raw_prefix_position_ += count;
    return static_cast<ptrdiff_t>(count);
  }
  if (raw_end_) return 0;
  if (is_memory_) {
    const size_t count = std::min(size, memory_.size() - memory_position_);
    if (count > 0) std::memcpy(out, memory_.data() + memory_position_, count);
    memory_position_ += count;
    if (count == 0) raw_end_ = true;
    return static_cast<ptrdiff_t>(count);
  }
  while (true) {
    const ssize_t got = ::read(fd_, out, size);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail(std::string("read error: ") + std::strerror(errno));
    if (got == 0) raw_end_ = true;
    return got;
  }
}

bool ByteStream::fill_input() {
  input_position_ = 0;
  input_length_ = 0;
  const ptrdiff_t got = read_raw(input_.data(), input_.size());
  if (got <= 0) return false;
  input_length_ = static_cast<size_t>(got);
  return true;
}

ptrdiff_t ByteStream::read_gzip(uint8_t* out, size_t size) {
  Decompressor& state = *decompressor_;
  z_stream& zlib = state.zlib;
  const auto room = static_cast<uInt>(std::min<size_t>(size, UINT_MAX));
  // Each pass either produces output, consumes input, refills, or ends: bounded by the input.
  while (!state.gzip_finished) {
    zlib.next_in = input_.data() + input_position_;
    zlib.avail_in = static_cast<uInt>(input_length_ - input_position_);
    zlib.next_out = out;
    zlib.avail_out = room;
    const int rc = inflate(&zlib, Z_NO_FLUSH);
    input_position_ = input_length_ - zlib.avail_in;
    const size_t produced = room - zlib.avail_out;
    if (rc == Z_STREAM_END) {
      // Concatenated members form one stream (RFC 1952 §2.2); anything else after the end is ignored.
      if (input_position_ == input_length_ && !fill_input()) {
        if (!error_.empty()) return -1;
        state.gzip_finished = true;
      } else if (input_length_ - input_position_ >= 2 && input_[input_position_] == 0x1f &&
                 input_[input_position_ + 1] == 0x8b) {
        inflateReset(&zlib);
      } else {
        state.gzip_finished = true;
      }
      if (produced > 0) return static_cast<ptrdiff_t>(produced);
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return fail(std::string("gzip data corrupt: ") + (zlib.msg != nullptr ? zlib.msg : "error"));
    }
    if (produced > 0) return static_cast<ptrdiff_t>(produced);
    if (input_position_ == input_length_ && !fill_input()) {
      if (!error_.empty()) return -1;
      return fail("gzip stream truncated");
    }
  }
  return 0;
}

ptrdiff_t ByteStream::read_zstd(uint8_t* out, size_t size) {
  Decompressor& state = *decompressor_;
  while (true) {
    ZSTD_inBuffer in{input_.data(), input_length_, input_position_};
    ZSTD_outBuffer output{out, size, 0};
    const size_t rc = ZSTD_decompressStream(state.zstd, &output, &in);
    const bool progressed = in.pos != input_position_ || output.pos > 0;
    input_position_ = in.pos;
    if (ZSTD_isError(rc) != 0) {
      return fail(std::string("zstd data corrupt: ") + ZSTD_getErrorName(rc));
    }
    // A call without progress only hints at the next frame's header; it says nothing of the last.
    if (progressed) state.zstd_last = rc;
    if (output.pos > 0) return static_cast<ptrdiff_t>(output.pos);
    if (input_position_ == input_length_ && !fill_input()) {
      if (!error_.empty()) return -1;
      if (state.zstd_last != 0) return fail("zstd stream truncated");
      return 0;
    }
  }
}

ptrdiff_t ByteStream::read_decompressed(uint8_t* out, size_t size) {
  if (!error_.empty()) return -1;
  if (size == 0) return 0;
  switch (compression_) {
    case Compression::gzip:
      return read_gzip(out, size);
    case Compression::zstd:
      return read_zstd(out, size);
    case Compression::none:
      break;
  }
  return read_raw(out, size);
}

size_t ByteStream::peek(uint8_t* out, size_t size) {
  size = std::min(size, sizeof peeked_);
  // Only valid before reading starts; the bytes stay queued for read().
  while (peeked_length_ < size) {
    const ptrdiff_t got = read_decompressed(peeked_ + peeked_length_, size - peeked_length_);
    if (got <= 0) break;
    peeked_length_ += static_cast<size_t>(got);
  }
  const size_t count = std::min(size, peeked_length_ - peeked_position_);
  std::memcpy(out, peeked_ + peeked_position_, count);
  return count;
}

ptrdiff_t ByteStream::read(uint8_t* out, size_t size) {
  if (peeked_position_ < peeked_length_) {
    const size_t count = std::min(size, peeked_length_ - peeked_position_);
    std::memcpy(out, peeked_ + peeked_position_, count);
    peeked_position_ += count;
    delivered_ += count;
    return static_cast<ptrdiff_t>(count);
  }
  const ptrdiff_t got = read_decompressed(out, size);
  if (got > 0) delivered_ += static_cast<uint64_t>(got);
  return got;
}

namespace {

ssize_t cookie_read(void* cookie, char* buffer, size_t size) {
  auto* stream = static_cast<ByteStream*>(cookie);
  const ptrdiff_t got = stream->read(reinterpret_cast<uint8_t*>(buffer), size);
  if (got < 0) {
    errno = EIO;
    return -1;
  }
  return got;
}

// Answers only "where am I" so ftello() can name the offset of a damaged record.
int cookie_seek(void* cookie, off64_t* offset, int whence) {
  auto* stream = static_cast<ByteStream*>(cookie);
  if (whence == SEEK_CUR && *offset == 0) {
    *offset = static_cast<off64_t>(stream->delivered());
    return 0;
  }
  errno = ESPIPE;
  return -1;
}

int cookie_close(void*) { return 0; }

}  // namespace

std::FILE* ByteStream::open_file(std::vector<char>& buffer) {
  cookie_io_functions_t functions{};
  functions.read = cookie_read;
  functions.seek = cookie_seek;
  functions.close = cookie_close;
  std::FILE* file = fopencookie(this, "r", functions);
  if (file == nullptr) return nullptr;
  if (!buffer.empty()) std::setvbuf(file, buffer.data(), _IOFBF, buffer.size());
  return file;
}

}  // namespace rstscope::capture_detail
