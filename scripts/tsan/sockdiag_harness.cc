// SockDiag (native/sock_diag.cc) under ThreadSanitizer: queries on two namespace keys from four
// threads at once (each key's queries take turns on its socket, the two keys' overlap), Forget()
// of a key while its queries run, and CloseAll() with queries still in flight. Every reply must
// be a whole dump of this process's UDP sockets (NLMSG_DONE last), or EBADF once closed or
// forgotten. halt_on_error makes any race fail the run (scripts/tsan.sh).
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../native/errors.h"
#include "../../native/sock_diag.h"

namespace rxtrace {
// The one SysError constructor sock_diag.cc needs (errors.cc would pull in N-API).
SysError::SysError(int err, std::string syscall, int cpu, int64_t eventId, const std::string&, int64_t bytes)
    : std::runtime_error(syscall + ": " + std::strerror(err)), err_(err), syscall_(std::move(syscall)), cpu_(cpu), eventId_(eventId), bytes_(bytes) {}
}  // namespace rxtrace

using rxtrace::SockDiag;
using rxtrace::SysError;

static std::vector<uint8_t> UdpDump() {
  struct {
    nlmsghdr h;
    inet_diag_req_v2 r;
  } m{};
  m.h.nlmsg_len = sizeof m;
  m.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  m.r.sdiag_family = AF_INET;
  m.r.sdiag_protocol = IPPROTO_UDP;
  m.r.idiag_states = ~0u;
  std::vector<uint8_t> out(sizeof m);
  std::memcpy(out.data(), &m, sizeof m);
  return out;
}

// The last message of a whole reply is NLMSG_DONE (or NLMSG_ERROR).
static bool Whole(const std::vector<uint8_t>& reply) {
  size_t off = 0, last = 0;
  if (reply.size() < sizeof(nlmsghdr)) return false;
  while (off + sizeof(nlmsghdr) <= reply.size()) {
    nlmsghdr h;
    std::memcpy(&h, reply.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof h) return false;
    last = off;
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  nlmsghdr h;
  std::memcpy(&h, reply.data() + last, sizeof h);
  return h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR;
}

int main() {
  // A few sockets of our own, so the dumps have something in them.
  std::vector<int> held;
  for (int i = 0; i < 8; ++i) {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    held.push_back(fd);
  }
  const std::vector<std::vector<uint8_t>> req{UdpDump(), UdpDump()};
  SockDiag diag;
  std::atomic<long> whole{0}, closedErr{0}, bad{0};
  std::atomic<bool> stop{false};
  auto querier = [&](uint64_t key, const std::string& nsPath) {
    while (!stop.load()) {
      try {
        for (const auto& r : diag.Query(key, nsPath, req)) (Whole(r) ? whole : bad)++;
      } catch (const SysError& e) {
        if (e.err() == EBADF) closedErr++;
        else {
          std::fprintf(stderr, "sockdiag_harness: %s\n", e.what());
          bad++;
        }
        if (e.err() == EBADF && key == 0) return;  // closed for good
      }
    }
  };
  // Key 1 goes through setns() on a thread of its own (our own namespace, by path).
  std::vector<std::thread> ts;
  for (int i = 0; i < 2; ++i) ts.emplace_back(querier, 0, std::string());
  for (int i = 0; i < 2; ++i) ts.emplace_back(querier, 1, std::string("/proc/self/ns/net"));
  std::thread forgetter([&] {
    for (int i = 0; i < 50; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      diag.Forget(1);
      (void)diag.OpenCount();
    }
  });
  forgetter.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  diag.CloseAll();  // with queries in flight on both keys
  stop = true;
  for (auto& t : ts) t.join();
  for (const int fd : held) close(fd);
  std::printf("sockdiag_harness: %ld whole replies, %ld EBADF after close/forget, %ld bad\n", whole.load(), closedErr.load(), bad.load());
  return bad.load() == 0 && whole.load() > 0 && diag.OpenCount() == 0 ? 0 : 1;
}
