"""Linux inotify, just enough for the mirror's live set (vouch.backups.mirror_scale).

One watch on a directory reports every write to every file in it, so the mirror learns
that a company database was written the moment SQLite appends to its WAL, without
polling 10,000 files. Python has no inotify in its standard library; this is the
three libc calls and the event layout from inotify(7), read without blocking. A
library (watchdog) would add a thread and an object per event and does not report a
queue overflow (IN_Q_OVERFLOW), which the live set must see to look at every file
again."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import sys
from dataclasses import dataclass

IN_MODIFY = 0x00000002
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name, NUL-padded)


class InotifyUnavailable(OSError):
    """Not Linux, or no inotify instance left (fs.inotify.max_user_instances)."""


@dataclass(frozen=True)
class Event:
    wd: int
    mask: int
    name: str


def _libc():
    if not sys.platform.startswith("linux"):
        raise InotifyUnavailable("inotify is Linux only")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if not hasattr(libc, "inotify_init1"):
        raise InotifyUnavailable("this C library has no inotify")
    return libc


class Inotify:
    """An inotify instance: :meth:`watch` directories, :meth:`read` their events."""

    def __init__(self) -> None:
        self._lib = _libc()
        self.fd = self._lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            errno = ctypes.get_errno()
            raise InotifyUnavailable(errno, f"inotify_init1: {os.strerror(errno)}")

    def watch(self, directory: os.PathLike | str, mask: int) -> int:
        wd = self._lib.inotify_add_watch(self.fd, os.fsencode(directory), mask | IN_ONLYDIR)
        if wd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_add_watch {directory}: {os.strerror(errno)}")
        return wd

    def read(self, timeout: float) -> list[Event]:
        """The events pending, waiting up to ``timeout`` seconds for the first."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return []
        events: list[Event] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                events.append(Event(wd, mask, os.fsdecode(name)))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
