# A hostile native-python plugin (tests only): everything it tries outside
# its own folders must be denied, each by its errno or by the memory limit.
import ctypes
import errno
import os
import socket

import numpy as np
from imjoy import api

libc = ctypes.CDLL(None, use_errno=True)


def _errno_name(e):
    return errno.errorcode.get(e, str(e))


def _call(fn, *args):
    ctypes.set_errno(0)
    if fn(*args) == -1:
        return _errno_name(ctypes.get_errno())
    return "ok"


class Hostile:
    def whoami(self):
        return {"uid": os.getuid(), "hostname": socket.gethostname(),
                "home": os.environ.get("HOME")}

    def read(self, path):
        try:
            with open(path, "rb") as f:
                f.read(16)
            return "ok"
        except OSError as e:
            return _errno_name(e.errno)

    def socket(self, family):
        families = {"inet": socket.AF_INET, "inet6": socket.AF_INET6,
                    "netlink": socket.AF_NETLINK, "packet": socket.AF_PACKET,
                    "unix": socket.AF_UNIX}
        try:
            socket.socket(families[family], socket.SOCK_DGRAM).close()
            return "ok"
        except OSError as e:
            return _errno_name(e.errno)

    def syscall(self, what):
        if what == "ptrace":
            return _call(libc.ptrace, 16, 1, None, None)  # PTRACE_ATTACH init
        if what == "unshare":
            return _call(libc.unshare, 0x10000000)  # CLONE_NEWUSER
        if what == "mount":
            return _call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)
        if what == "setuid":
            return _call(libc.setuid, 0)
        return "unknown"

    def hog(self, mib):
        # numpy's own pages: the cgroup counts them, not the address space
        # BLAS reserved.
        blocks = []
        for _ in range(int(mib)):
            blocks.append(np.ones(1 << 20, dtype=np.uint8))
        return len(blocks)

    def fill(self, path, mib):
        written = 0
        try:
            with open(path, "wb") as f:
                chunk = b"x" * (1 << 20)
                for _ in range(int(mib)):
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
                os.fsync(f.fileno())
            return {"result": "ok", "bytes": written}
        except OSError as e:
            return {"result": _errno_name(e.errno), "bytes": written}


api.export(Hostile())
