// Opens the counting fds of counting mode and reads them. Each fd is a perf tracepoint event
// with sample_period 0: the kernel only adds to its count (after the filter, if any), writes
// no sample and wakes nobody, so a traced drop costs what it costs under `perf stat`.
#include "perf_counters.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"

namespace rxtrace {

PerfCounters::PerfCounters(std::vector<CounterSpec> events, std::vector<int> cpus)
    : events_(std::move(events)) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.sample_period = 0;  // counting: no samples, no ring
  attr.disabled = 1;       // enabled below, once every filter is set
  attr.read_format = 0;    // read() gives one u64: the count

  fds_.reserve(events_.size() * cpus.size());
  for (size_t e = 0; e < events_.size(); ++e) {
    const CounterSpec& ev = events_[e];
    attr.config = ev.id;
    const int64_t id = static_cast<int64_t>(ev.id);
    for (const int cpu : cpus) {
      UniqueFd fd(static_cast<int>(
          syscall(SYS_perf_event_open, &attr, /*pid=*/-1, cpu, /*group_fd=*/-1, PERF_FLAG_FD_CLOEXEC)));
      if (!fd) throw SysError(errno, "perf_event_open", cpu, id);
      if (!ev.filter.empty() && ioctl(fd.get(), PERF_EVENT_IOC_SET_FILTER, ev.filter.c_str()) != 0) {
        throw SysError(errno, "ioctl(PERF_EVENT_IOC_SET_FILTER)", cpu, id, "filter \"" + ev.filter + "\"");
      }
      fds_.push_back(CounterFd{std::move(fd), e, cpu});
    }
  }
  for (const CounterFd& f : fds_) {
    if (ioctl(f.fd.get(), PERF_EVENT_IOC_ENABLE, 0) != 0) {
      throw SysError(errno, "ioctl(PERF_EVENT_IOC_ENABLE)", f.cpu, static_cast<int64_t>(events_[f.event].id));
    }
  }
}

std::vector<uint64_t> PerfCounters::Read() const {
  if (fds_.empty()) throw SysError(EBADF, "read", -1, -1, "the counters are closed");
  std::vector<uint64_t> out(events_.size(), 0);
  for (const CounterFd& f : fds_) {
    uint64_t value = 0;
    const ssize_t n = ::read(f.fd.get(), &value, sizeof value);
    if (n != static_cast<ssize_t>(sizeof value)) {
      throw SysError(n < 0 ? errno : EIO, "read", f.cpu, static_cast<int64_t>(events_[f.event].id));
    }
    out[f.event] += value;
  }
  return out;
}

}  // namespace rxtrace
