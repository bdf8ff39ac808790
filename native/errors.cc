// errno names and messages, and the conversion of SysError into the JS Error shape that
// src/native.ts documents (code, negative errno, syscall, cpu, eventId). No hints here:
// TypeScript decides what a code means for the user.
#include "errors.h"

#include <cerrno>
#include <cstring>

namespace rxtrace {

namespace {

struct ErrnoEntry {
  int err;
  const char* name;
};

// The errnos perf_event_open, mmap, ioctl, eventfd and epoll can return, plus the usual
// suspects. A table (not strerrorname_np) so musl builds give the same names. On Linux
// ENOTSUP == EOPNOTSUPP, so it has no row of its own.
constexpr ErrnoEntry kErrnoNames[] = {
    {EPERM, "EPERM"},     {ENOENT, "ENOENT"},   {ESRCH, "ESRCH"},
    {EINTR, "EINTR"},     {EIO, "EIO"},         {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"},     {EBADF, "EBADF"},     {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},   {EACCES, "EACCES"},   {EFAULT, "EFAULT"},
    {EBUSY, "EBUSY"},     {EEXIST, "EEXIST"},   {ENODEV, "ENODEV"},
    {EINVAL, "EINVAL"},   {ENFILE, "ENFILE"},   {EMFILE, "EMFILE"},
    {ENOTTY, "ENOTTY"},   {ENOSPC, "ENOSPC"},   {ERANGE, "ERANGE"},
    {ENOSYS, "ENOSYS"},   {EOVERFLOW, "EOVERFLOW"}, {EOPNOTSUPP, "EOPNOTSUPP"},
    {ENOBUFS, "ENOBUFS"}, {ESPIPE, "ESPIPE"},   {EROFS, "EROFS"},
    // netlink sock_diag (sock_diag.cc)
    {ETIMEDOUT, "ETIMEDOUT"}, {EMSGSIZE, "EMSGSIZE"}, {EBADMSG, "EBADMSG"},
    {EPIPE, "EPIPE"},     {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
    // /proc/PID/fd (fd_scan.cc)
    {ENOTDIR, "ENOTDIR"}, {ELOOP, "ELOOP"},     {ENAMETOOLONG, "ENAMETOOLONG"},
};

// strerror_r comes in two flavours (GNU returns char*, XSI returns int); overloads pick
// whichever this libc declared.
[[maybe_unused]] const char* PickStrerror(int rc, const char* buf) {
  return rc == 0 ? buf : "Unknown error";
}
[[maybe_unused]] const char* PickStrerror(const char* msg, const char*) { return msg; }

Napi::Error& Decorate(Napi::Error& err, const char* code) {
  err.Set("code", Napi::String::New(err.Env(), code));
  return err;
}

}  // namespace

const char* ErrnoName(int err) {
  for (const auto& e : kErrnoNames) {
    if (e.err == err) return e.name;
  }
  return "EUNKNOWN";
}

std::string ErrnoText(int err) {
  char buf[128];
  return PickStrerror(strerror_r(err, buf, sizeof buf), buf);
}

namespace {

// "perf_event_open(tracepoint 2282, cpu 1): Permission denied". For syscalls whose name
// already ends in ")" (the ioctls), the context goes inside those parentheses.
std::string FormatMessage(int err, const std::string& syscall, int cpu, int64_t eventId,
                          const std::string& detail) {
  std::string ctx;
  auto add = [&ctx](const std::string& part) {
    if (!ctx.empty()) ctx += ", ";
    ctx += part;
  };
  if (eventId >= 0) add("tracepoint " + std::to_string(eventId));
  if (cpu >= 0) add("cpu " + std::to_string(cpu));
  if (!detail.empty()) add(detail);

  std::string head = syscall;
  if (!ctx.empty()) {
    if (!head.empty() && head.back() == ')') {
      head.pop_back();
      head += ", " + ctx + ")";
    } else {
      head += "(" + ctx + ")";
    }
  }
  return head + ": " + ErrnoText(err);
}

}  // namespace

SysError::SysError(int err, std::string syscall, int cpu, int64_t eventId,
                   const std::string& detail, int64_t bytes)
    : std::runtime_error(FormatMessage(err, syscall, cpu, eventId, detail)),
      err_(err),
      syscall_(std::move(syscall)),
      cpu_(cpu),
      eventId_(eventId),
      bytes_(bytes) {}

Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  Decorate(err, ErrnoName(e.err()));
  // Node's convention: errno is negative (uv error numbers), code is the name.
  err.Set("errno", Napi::Number::New(env, -e.err()));
  err.Set("syscall", Napi::String::New(env, e.syscall()));
  if (e.cpu() >= 0) err.Set("cpu", Napi::Number::New(env, e.cpu()));
  if (e.eventId() >= 0) err.Set("eventId", Napi::Number::New(env, static_cast<double>(e.eventId())));
  if (e.bytes() >= 0) err.Set("bytes", Napi::Number::New(env, static_cast<double>(e.bytes())));
  return err;
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  return Decorate(err, code);
}

Napi::TypeError CodedTypeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::TypeError err = Napi::TypeError::New(env, message);
  Decorate(err, code);
  return err;
}

Napi::RangeError CodedRangeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::RangeError err = Napi::RangeError::New(env, message);
  Decorate(err, code);
  return err;
}

}  // namespace rxtrace
