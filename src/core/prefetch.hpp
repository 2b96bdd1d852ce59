#pragma once
// Prefetching a whole object into the cache.
#include <cstddef>

namespace rstscope {

// Every cache line of the `Bytes` bytes at `object`, which may start anywhere in a line: one
// prefetch per 64 bytes from its start, and one for its last byte, whose line the others miss
// when the object straddles one more line than its size needs.
template <size_t Bytes>
[[gnu::always_inline]] inline void prefetch_object(const void* object) {
  const auto* bytes = static_cast<const char*>(object);
  for (size_t line = 0; line < Bytes; line += 64) __builtin_prefetch(bytes + line);
  __builtin_prefetch(bytes + Bytes - 1);
}

}  // namespace rstscope
