// See tracefs_mount.h. Why a detached mount: two rxtrace processes that mount tracefs at
// /sys/kernel/tracing for a moment race (one unmounts under the other, or both mount and
// stack), and a SIGKILL between mount and umount leaves a mount behind. A detached mount is
// owned by its fd, so none of that can happen.
#include "tracefs_mount.h"

#include <linux/mount.h>  // not <sys/mount.h>: glibc 2.36's copy clashes with it
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "perf_session.h"  // UniqueFd

// Old headers: these numbers are the same on every architecture (the unified table from 424 on).
#ifndef __NR_fsopen
#define __NR_fsopen 430
#endif
#ifndef __NR_fsconfig
#define __NR_fsconfig 431
#endif
#ifndef __NR_fsmount
#define __NR_fsmount 432
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#define FSCONFIG_CMD_CREATE 6
#define FSMOUNT_CLOEXEC 0x00000001
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

namespace rxtrace {

int OpenDetachedTracefs() {
  UniqueFd fs(static_cast<int>(syscall(__NR_fsopen, "tracefs", FSOPEN_CLOEXEC)));
  if (!fs) throw SysError(errno, "fsopen");
  if (syscall(__NR_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    throw SysError(errno, "fsconfig");
  }
  // Read-only: rxtrace only reads ids and formats, and must never write a tracing knob.
  const int mnt = static_cast<int>(syscall(__NR_fsmount, fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY));
  if (mnt < 0) throw SysError(errno, "fsmount");
  return mnt;
}

}  // namespace rxtrace
