// SockDiag: NETLINK_SOCK_DIAG sockets, one per network namespace, and dump requests over them.
// It knows nothing of inet_diag: TypeScript builds the request bytes and decodes the replies
// (src/sockdiag/); this side only opens (after setns() on a thread of its own), sends and reads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rxtrace {

class SockDiag {
 public:
  SockDiag() = default;
  ~SockDiag();
  SockDiag(const SockDiag&) = delete;
  SockDiag& operator=(const SockDiag&) = delete;

  /**
   * Send each request (one whole netlink message; its nlmsg_seq is overwritten) on the socket of
   * namespace `key` and gather its replies up to NLMSG_DONE or NLMSG_ERROR, one buffer per
   * request. The socket is opened on first use: in our own namespace when `nsPath` is empty,
   * else on a short-lived thread that setns()es into `nsPath` (/proc/PID/ns/net), so no JS
   * thread ever changes namespace. Blocks (call it off the JS thread). Throws SysError.
   */
  std::vector<std::vector<uint8_t>> Query(uint64_t key, const std::string& nsPath,
                                          const std::vector<std::vector<uint8_t>>& requests);

  /** Close the socket of one namespace (it holds the namespace alive while open); waits for its query in flight. */
  void Forget(uint64_t key);
  /** Close every socket; later queries fail with EBADF. Waits for the queries in flight. */
  void CloseAll();
  size_t OpenCount();

 private:
  /**
   * One namespace's socket. Queries on different namespaces run at once (each dump walks the
   * kernel's global hash, so a read of 50 namespaces is 50 walks: on several CPUs they overlap);
   * queries on one socket take turns, since replies on a socket must not interleave.
   */
  struct Entry {
    std::mutex busy;  // held for a whole query, and to close fd
    int fd = -1;      // -1 once closed (by Forget, CloseAll or a failed query)
    uint32_t seq = 0;
    ~Entry();
  };

  std::shared_ptr<Entry> EntryFor(uint64_t key, const std::string& nsPath);
  static void RunOne(Entry& e, const std::vector<uint8_t>& request, std::vector<uint8_t>& out);

  std::mutex mu_;  // guards entries_ and closed_ only; never held across a query
  std::map<uint64_t, std::shared_ptr<Entry>> entries_;
  bool closed_ = false;
};

}  // namespace rxtrace
