// NETLINK_SOCK_DIAG I/O: open a netlink socket inside a namespace (setns on a throwaway thread),
// send a dump request, read every reply message of that request. Why a thread of its own: a
// netlink socket answers for the namespace it was created in, and setns() changes the calling
// thread's namespace; a thread that exits right after socket() leaves nobody in the wrong one.
#include "sock_diag.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <thread>

#include "errors.h"

namespace rxtrace {
namespace {

// A dump reply skb is at most ~32 KiB (netlink_dump); twice that never truncates.
constexpr size_t kRecvBuf = 64 * 1024;
// A dump of 100,000 sockets takes well under a second; a reply silent this long is a fault.
constexpr int kTimeoutSec = 10;

int OpenHere() {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) throw SysError(errno, "socket(NETLINK_SOCK_DIAG)");
  timeval tv{kTimeoutSec, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

int OpenIn(const std::string& nsPath) {
  int fd = -1, err = 0;
  std::string syscall;
  std::thread t([&] {
    const int ns = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
      err = errno;
      syscall = "open(" + nsPath + ")";
      return;
    }
    if (setns(ns, CLONE_NEWNET) != 0) {
      err = errno;
      syscall = "setns(" + nsPath + ")";
      close(ns);
      return;
    }
    close(ns);
    try {
      fd = OpenHere();
    } catch (const SysError& e) {
      err = e.err();
      syscall = e.syscall();
    }
  });
  t.join();
  if (fd < 0) throw SysError(err ? err : EIO, syscall);
  return fd;
}

}  // namespace

SockDiag::~SockDiag() { CloseAll(); }

SockDiag::Entry::~Entry() {
  if (fd >= 0) close(fd);
}

std::shared_ptr<SockDiag::Entry> SockDiag::EntryFor(uint64_t key, const std::string& nsPath) {
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  auto e = std::make_shared<Entry>();
  e->fd = nsPath.empty() ? OpenHere() : OpenIn(nsPath);
  entries_[key] = e;
  return e;
}

void SockDiag::RunOne(Entry& e, const std::vector<uint8_t>& request, std::vector<uint8_t>& out) {
  const int fd = e.fd;
  if (request.size() < sizeof(nlmsghdr)) throw SysError(EINVAL, "sendto(NETLINK_SOCK_DIAG)", -1, -1, "request shorter than a netlink header");
  std::vector<uint8_t> req(request);
  const uint32_t seq = ++e.seq;
  std::memcpy(req.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
  // Left over from a query that failed halfway: drop it so it cannot pass for this one's.
  std::vector<uint8_t> buf(kRecvBuf);
  while (recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n < 0) throw SysError(errno, "sendto(NETLINK_SOCK_DIAG)");
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    n = recvmsg(fd, &mh, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SysError(errno == EAGAIN ? ETIMEDOUT : errno, "recvmsg(NETLINK_SOCK_DIAG)");
    if (mh.msg_flags & MSG_TRUNC) throw SysError(EMSGSIZE, "recvmsg(NETLINK_SOCK_DIAG)", -1, -1, "reply truncated");
    if (n == 0) throw SysError(EPIPE, "recvmsg(NETLINK_SOCK_DIAG)", -1, -1, "end of stream before NLMSG_DONE");
    // Keep this request's messages; stop at its NLMSG_DONE or NLMSG_ERROR. TS validates the rest.
    size_t off = 0;
    bool done = false;
    while (off + sizeof(nlmsghdr) <= static_cast<size_t>(n)) {
      nlmsghdr h;
      std::memcpy(&h, buf.data() + off, sizeof h);
      if (h.nlmsg_len < sizeof(nlmsghdr) || off + h.nlmsg_len > static_cast<size_t>(n)) {
        throw SysError(EBADMSG, "recvmsg(NETLINK_SOCK_DIAG)", -1, -1, "malformed netlink message length");
      }
      if (h.nlmsg_seq == seq) {
        out.insert(out.end(), buf.begin() + off, buf.begin() + off + h.nlmsg_len);
        if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) done = true;
      }
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
    if (done) return;
  }
}

std::vector<std::vector<uint8_t>> SockDiag::Query(uint64_t key, const std::string& nsPath,
                                                  const std::vector<std::vector<uint8_t>>& requests) {
  std::shared_ptr<Entry> e;
  {
    // Opening (a thread and setns for another namespace) happens under mu_: opens take turns,
    // queries do not.
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) throw SysError(EBADF, "sock_diag", -1, -1, "closed");
    e = EntryFor(key, nsPath);
  }
  std::vector<std::vector<uint8_t>> replies(requests.size());
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> turn(e->busy);
    // Forgotten, closed or failed while this query waited for its turn.
    if (e->fd < 0) throw SysError(EBADF, "sock_diag", -1, -1, "closed");
    try {
      for (size_t i = 0; i < requests.size(); ++i) RunOne(*e, requests[i], replies[i]);
    } catch (...) {
      // A socket that failed mid-dump may hold a half-read reply: start afresh next time.
      close(e->fd);
      e->fd = -1;
      failure = std::current_exception();
    }
  }
  if (failure) {
    // busy is released first: Forget and CloseAll take mu_, then busy.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second == e) entries_.erase(it);
    std::rethrow_exception(failure);
  }
  return replies;
}

void SockDiag::Forget(uint64_t key) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    e = std::move(it->second);
    entries_.erase(it);
  }
  // Outside mu_: wait for a query in flight on it, then close.
  std::lock_guard<std::mutex> turn(e->busy);
  if (e->fd >= 0) close(e->fd);
  e->fd = -1;
}

void SockDiag::CloseAll() {
  std::map<uint64_t, std::shared_ptr<Entry>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    gone.swap(entries_);
  }
  for (auto& [key, e] : gone) {
    std::lock_guard<std::mutex> turn(e->busy);
    if (e->fd >= 0) close(e->fd);
    e->fd = -1;
  }
}

size_t SockDiag::OpenCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace rxtrace
