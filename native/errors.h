// Failed syscalls as values: SysError carries errno, the syscall, and which cpu/tracepoint it
// concerned; ToJsError turns it into a plain JS Error with code/errno/syscall/cpu/eventId/bytes.
// The addon only states facts; src/errors.ts adds the hint a human can act on.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "napi_config.h"

namespace rxtrace {

/** errno → its name ("EACCES"), or "EUNKNOWN" for a number outside the table. */
const char* ErrnoName(int err);

/** strerror text ("Permission denied"), thread-safe. */
std::string ErrnoText(int err);

/** A failed syscall. Thrown by perf_session.cc, converted at the JS boundary. */
class SysError : public std::runtime_error {
 public:
  /**
   * syscall: 'perf_event_open', 'mmap', 'ioctl(PERF_EVENT_IOC_SET_FILTER)', ...
   * cpu / eventId: -1 when not about one cpu or tracepoint.
   * detail: extra context for the message only (the filter text, the mmap size).
   * bytes: the size the syscall asked for (mmap), -1 when none; a property of the JS error, so
   *   that src/errors.ts need not read it back out of the message.
   */
  SysError(int err, std::string syscall, int cpu = -1, int64_t eventId = -1,
           const std::string& detail = {}, int64_t bytes = -1);

  int err() const { return err_; }
  const std::string& syscall() const { return syscall_; }
  int cpu() const { return cpu_; }
  int64_t eventId() const { return eventId_; }
  int64_t bytes() const { return bytes_; }

 private:
  int err_;
  std::string syscall_;
  int cpu_;
  int64_t eventId_;
  int64_t bytes_;
};

/** The JS Error for a SysError: message plus code, errno (negative), syscall, cpu?, eventId?, bytes?. */
Napi::Error ToJsError(Napi::Env env, const SysError& e);

/** An Error with a Node-style string code ('ERR_INVALID_STATE', ...), for misuse of the API. */
Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message);
Napi::TypeError CodedTypeError(Napi::Env env, const char* code, const std::string& message);
Napi::RangeError CodedRangeError(Napi::Env env, const char* code, const std::string& message);

}  // namespace rxtrace
