// One process's socket fds, free of N-API: the socket inodes behind /proc/PID/fd. The owner
// scan (src/procnet/owners.ts) reads every fd link of every process; 100,000 links cost Node's
// readlinkSync a path walk from / and a JS string each. Here the fd directory is opened once and
// each link is read relative to it (readlinkat), so the kernel walks one component per fd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rxtrace {

struct SocketFds {
  /** Entries in the fd directory (0 for a zombie, whose fd table is empty). */
  uint32_t fds = 0;
  /** The inode of each `socket:[N]` link, in directory order (duplicates kept: two fds on one socket). */
  std::vector<uint64_t> inodes;
};

/**
 * Lists `fdDir` (/proc/PID/fd) and reads each link. An fd closed between the listing and its
 * readlinkat (ENOENT) is skipped. Throws SysError for any other failure: syscall "opendir" for
 * the directory (ENOENT/ESRCH: the process exited; EACCES/EPERM: not ours to read), "readlinkat"
 * for a link.
 */
SocketFds ReadSocketFds(const std::string& fdDir);

}  // namespace rxtrace
