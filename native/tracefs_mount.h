// A private tracefs mount, free of N-API: fsopen/fsconfig/fsmount (5.2+) make a detached mount
// that no mount table lists and no other process can reach or unmount. It lives as long as the
// returned fd: closing it (or the process dying, however it dies) drops the mount.
#pragma once

namespace rxtrace {

/** The fd of a new detached tracefs mount (read it as /proc/self/fd/N/...); throws SysError. */
int OpenDetachedTracefs();

}  // namespace rxtrace
