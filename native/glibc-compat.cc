// Portable release builds only (binding.gyp adds this file when rxtrace_portable=1): lets one
// addon built on Debian bookworm (glibc 2.36) load on glibc 2.28 hosts (RHEL 8, Debian 10,
// Ubuntu 20.04) with libstdc++ and libgcc linked in statically.
//
// Linking against glibc 2.36 binds each symbol to its newest version. The static libstdc++ and
// libgcc (and std::thread in our own code) then need:
//   pthread_create, pthread_join, pthread_detach, pthread_once, __pthread_key_create @GLIBC_2.34
//     (the release that moved libpthread into libc): the same functions exist on every glibc
//     under the arch's first version, so we define hidden forwarders bound with .symver to it.
//     On glibc < 2.34 the loader finds them in libpthread, which node itself links.
//   __libc_single_threaded @GLIBC_2.32 (libstdc++'s fast path for refcounts): ours is 0, "maybe
//     threaded", which only means libstdc++ always uses atomics. The addon runs threads anyway.
//   _dl_find_object @GLIBC_2.35 (the unwinder's FDE lookup, needed for C++ exceptions): ours
//     answers from dl_iterate_phdr (glibc 2.2.4), which is what libgcc did before 2.35.
//   arc4random @GLIBC_2.36 (std::random_device; unused by rxtrace, linked via random.o): ours
//     reads getrandom(2).
// Every definition here is hidden (-fvisibility=hidden and explicit attributes): the addon
// uses them; nothing else in the process sees them. scripts/check-abi verifies the result.
#include <cerrno>
#include <cstdint>
#include <link.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define RX_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define RX_GLIBC_BASE "GLIBC_2.17"
#else
#error "portable builds are for x86_64 and aarch64"
#endif

#define RX_HIDDEN __attribute__((visibility("hidden")))

// A forwarder `name` (hidden) to name@<first glibc version>, declared with void* so that no
// pthread.h declaration is needed here.
#define RX_PIN(ret, name, params, args)                                  \
  __asm__(".symver rx_old_" #name ", " #name "@" RX_GLIBC_BASE);         \
  extern "C" ret rx_old_##name params;                                   \
  extern "C" RX_HIDDEN ret name params { return rx_old_##name args; }

RX_PIN(int, pthread_create, (void* t, const void* attr, void* (*fn)(void*), void* arg), (t, attr, fn, arg))
RX_PIN(int, pthread_join, (unsigned long t, void** ret), (t, ret))
RX_PIN(int, pthread_detach, (unsigned long t), (t))
RX_PIN(int, pthread_once, (int* once, void (*fn)(void)), (once, fn))
RX_PIN(int, __pthread_key_create, (unsigned* key, void (*dtor)(void*)), (key, dtor))

extern "C" RX_HIDDEN char __libc_single_threaded = 0;

extern "C" RX_HIDDEN uint32_t arc4random(void) {
  uint32_t v = 0;
  for (;;) {
    long n = syscall(SYS_getrandom, &v, sizeof v, 0);
    if (n == static_cast<long>(sizeof v)) return v;
    if (n < 0 && errno != EINTR) return v ^ static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&v));
  }
}

namespace {
struct FindState {
  uintptr_t pc;
  dl_find_object* out;
  bool found;
};

int FindCallback(dl_phdr_info* info, size_t, void* data) {
  auto* st = static_cast<FindState*>(data);
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  bool contains = false;
  const void* eh = nullptr;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const auto& ph = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD) {
      if (start < lo) lo = start;
      if (start + ph.p_memsz > hi) hi = start + ph.p_memsz;
      if (st->pc >= start && st->pc < start + ph.p_memsz) contains = true;
    } else if (ph.p_type == PT_GNU_EH_FRAME) {
      eh = reinterpret_cast<const void*>(start);
    }
  }
  if (!contains) return 0;
  st->out->dlfo_flags = 0;
  st->out->dlfo_map_start = reinterpret_cast<void*>(lo);
  st->out->dlfo_map_end = reinterpret_cast<void*>(hi);
  st->out->dlfo_link_map = nullptr;
  st->out->dlfo_eh_frame = const_cast<void*>(eh);
  st->found = true;
  return 1;
}
}  // namespace

extern "C" RX_HIDDEN int _dl_find_object(void* pc, dl_find_object* result) {
  FindState st{reinterpret_cast<uintptr_t>(pc), result, false};
  dl_iterate_phdr(FindCallback, &st);
  return st.found ? 0 : -1;
}
