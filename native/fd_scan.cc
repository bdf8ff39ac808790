#include "fd_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"

namespace rxtrace {

namespace {

// "socket:[12345]" → 12345; 0 for any other link (files, pipes, anon inodes).
uint64_t SocketInode(const char* link, size_t n) {
  static constexpr char kPrefix[] = "socket:[";
  constexpr size_t kLen = sizeof(kPrefix) - 1;
  if (n < kLen + 2 || std::memcmp(link, kPrefix, kLen) != 0 || link[n - 1] != ']') return 0;
  uint64_t v = 0;
  for (size_t i = kLen; i < n - 1; ++i) {
    if (link[i] < '0' || link[i] > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(link[i] - '0');
  }
  return v;
}

}  // namespace

SocketFds ReadSocketFds(const std::string& fdDir) {
  const int dfd = open(fdDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw SysError(errno, "opendir", -1, -1, fdDir);
  DIR* dir = fdopendir(dfd);
  if (dir == nullptr) {
    const int err = errno;
    close(dfd);
    throw SysError(err, "opendir", -1, -1, fdDir);
  }
  SocketFds out;
  char link[64];
  for (;;) {
    errno = 0;
    const dirent* e = readdir(dir);
    if (e == nullptr) {
      const int err = errno;
      if (err == 0) break;
      closedir(dir);
      throw SysError(err, "readdir", -1, -1, fdDir);
    }
    if (e->d_name[0] == '.') continue;
    ++out.fds;
    const ssize_t n = readlinkat(dfd, e->d_name, link, sizeof(link));
    if (n < 0) {
      const int err = errno;
      if (err == ENOENT) continue;  // closed since the listing
      closedir(dir);
      throw SysError(err, "readlinkat", -1, -1, fdDir + "/" + e->d_name);
    }
    // A link that fills the buffer is no socket link (those are at most 30 bytes).
    if (static_cast<size_t>(n) < sizeof(link)) {
      const uint64_t inode = SocketInode(link, static_cast<size_t>(n));
      if (inode != 0) out.inodes.push_back(inode);
    }
  }
  closedir(dir);
  return out;
}

}  // namespace rxtrace
