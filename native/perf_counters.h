// The kernel side of counting mode, free of N-API: one perf counting fd per (tracepoint, cpu),
// with no ring and no samples (what `perf stat` does), its filter set before it is enabled,
// and read(2) of the counts on demand. A drop then costs the kernel one increment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perf_session.h"  // UniqueFd

namespace rxtrace {

struct CounterSpec {
  uint64_t id = 0;     // tracefs events/<sys>/<name>/id, perf attr.config
  std::string filter;  // empty: no filter (PERF_EVENT_IOC_SET_FILTER works on counting fds too)
};

/**
 * One set of counters. The constructor opens every fd, sets the filters, then enables them all,
 * or throws SysError with nothing left open (the fds_ member closes what was opened). So a count
 * never includes a hit from before its filter was set. The destructor closes every fd.
 * Threading: one thread at a time (the JS thread that owns it).
 */
class PerfCounters {
 public:
  PerfCounters(std::vector<CounterSpec> events, std::vector<int> cpus);
  PerfCounters(const PerfCounters&) = delete;
  PerfCounters& operator=(const PerfCounters&) = delete;

  /** Each event's count since it was enabled, summed over the cpus, in `events` order. Throws SysError. */
  std::vector<uint64_t> Read() const;
  /** Close every fd. Idempotent; Read() afterwards throws EBADF. */
  void Close() { fds_.clear(); }
  bool Open() const { return !fds_.empty(); }

 private:
  struct CounterFd {
    UniqueFd fd;
    size_t event;  // index into events_
    int cpu;
  };
  std::vector<CounterSpec> events_;
  std::vector<CounterFd> fds_;
};

}  // namespace rxtrace
