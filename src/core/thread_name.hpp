#pragma once
// Names the calling thread (at most 15 characters), so `top -H`, `ps -L` and profilers tell
// the stages of a run apart. A name that cannot be set changes nothing else.
#include <pthread.h>

namespace rstscope {

inline void name_this_thread(const char* name) { ::pthread_setname_np(::pthread_self(), name); }

}  // namespace rstscope
