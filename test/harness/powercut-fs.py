#!/usr/bin/python3
"""
powercut-fs: a FUSE pass-through file system that remembers what a disk would keep across a power cut.

    /usr/bin/python3 powercut-fs.py LOWER MOUNTPOINT

Every operation goes through to LOWER at once (so the program on top reads what it wrote), and beside it
the file system keeps its own model of what is DURABLE, the way a journalling file system with a write
cache behaves when the power goes:

- file data is durable only once that file was fsync'd (fsync or fdatasync): unsynced writes are lost;
- a directory entry (create, rename, unlink, mkdir) is durable only once its directory was fsync'd; a
  file whose entry is durable but whose data never was comes back EMPTY (ext4 delalloc after a rename);
- with a torn cut, the last unsynced write of each file lands half: its first half as NUL bytes, its
  second half as written (the case where a group write's second page reached the platter first).

Power is cut with a signal, then an unmount:  kill -USR1 <pid> (drop unsynced data and entries) or
kill -USR2 <pid> (the same, tearing the last unsynced write), then  fusermount -u MOUNTPOINT. The process
then rewrites LOWER to the durable model, prints `cut: …` and exits. An unmount without a signal keeps
everything (a clean shutdown). At mount, everything already in LOWER is durable (after the "reboot").

Written on fusepy (Debian python3-fusepy, libfuse2): a synchronous high-level binding small enough for a
test harness; pyfuse3 (maintained by the libfuse project) is async (trio) and would need three times the
code for the same model. fusepy's last release is 3.0.1 (2019) — it is the Debian-packaged, stable one.
"""
import errno
import os
import signal
import stat
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations

CUT = {"mode": None}


def on_signal(sig, _frame):
    CUT["mode"] = "tear" if sig == signal.SIGUSR2 else "drop"


signal.signal(signal.SIGUSR1, on_signal)
signal.signal(signal.SIGUSR2, on_signal)


class PowerCutFS(Operations):
    def __init__(self, lower):
        self.lower = os.path.realpath(lower)
        self.mu = threading.RLock()
        self.next_id = 0
        self.ids = {}  # volatile: path ("/a/b") -> file id (files only)
        self.durable_data = {}  # file id -> bytes as of its last fsync
        self.durable_dirs = {}  # dir path -> {name: ("f", id) | ("d", None)} as of its last fsync
        self.last_write = {}  # file id -> (offset, bytes) of the last write since its last fsync
        self.dirty = set()  # file ids written since their last fsync
        self.stats = {"fsync": 0, "fsyncdir": 0, "writes": 0}
        self._scan("/")

    # -- the model --------------------------------------------------------------------------------
    def _real(self, p):
        return os.path.join(self.lower, p.lstrip("/"))

    def _new_id(self):
        self.next_id += 1
        return self.next_id

    def _scan(self, d):
        entries = {}
        for name in sorted(os.listdir(self._real(d))):
            p = os.path.join(d, name)
            if os.path.isdir(self._real(p)):
                entries[name] = ("d", None)
                self._scan(p)
            else:
                fid = self._new_id()
                self.ids[p] = fid
                with open(self._real(p), "rb") as f:
                    self.durable_data[fid] = f.read()
                entries[name] = ("f", fid)
        self.durable_dirs[d] = entries

    def _entries_now(self, d):
        out = {}
        for name in os.listdir(self._real(d)):
            p = os.path.join(d, name)
            if os.path.isdir(self._real(p)):
                out[name] = ("d", None)
            elif p in self.ids:
                out[name] = ("f", self.ids[p])
        return out

    def _sync_file(self, p):
        fid = self.ids.get(p)
        if fid is None:
            return
        with open(self._real(p), "rb") as f:
            self.durable_data[fid] = f.read()
        self.dirty.discard(fid)
        self.last_write.pop(fid, None)

    def cut(self, tear):
        """Rewrite LOWER to what the disk would hold after the power went."""
        torn = 0
        lost_entries = 0

        def build(d, real):
            nonlocal torn, lost_entries
            entries = self.durable_dirs.get(d)
            if entries is None:
                return
            for name, (kind, fid) in entries.items():
                p = os.path.join(d, name)
                rp = os.path.join(real, name)
                if kind == "d":
                    os.makedirs(rp, exist_ok=True)
                    build(p, rp)
                    continue
                data = bytearray(self.durable_data.get(fid, b""))
                if tear and fid in self.last_write:
                    off, buf = self.last_write[fid]
                    half = len(buf) // 2
                    end = off + len(buf)
                    if len(data) < end:
                        data.extend(b"\0" * (end - len(data)))
                    data[off:off + half] = b"\0" * half
                    data[off + half:end] = buf[half:]
                    torn += 1
                with open(rp, "wb") as f:
                    f.write(bytes(data))
            now = set(os.listdir(self._real(d))) if os.path.isdir(self._real(d)) else set()
            lost_entries += len(now - set(entries))

        stage = self.lower + ".cut"
        if os.path.exists(stage):
            import shutil
            shutil.rmtree(stage)
        os.makedirs(stage)
        build("/", stage)
        import shutil
        shutil.rmtree(self.lower)
        os.rename(stage, self.lower)
        return {"dirty_files_lost": len(self.dirty), "torn": torn, "entries_lost": lost_entries}

    # -- pass-through operations --------------------------------------------------------------------
    def access(self, p, mode):
        if not os.access(self._real(p), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, p, mode):
        return os.chmod(self._real(p), mode)

    def chown(self, p, uid, gid):
        return os.chown(self._real(p), uid, gid)

    def getattr(self, p, fh=None):
        try:
            st = os.lstat(self._real(p))
        except OSError as e:
            raise FuseOSError(e.errno)
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")}

    def readdir(self, p, fh):
        return [".", ".."] + os.listdir(self._real(p))

    def mkdir(self, p, mode):
        return os.mkdir(self._real(p), mode)

    def rmdir(self, p):
        return os.rmdir(self._real(p))

    def statfs(self, p):
        st = os.statvfs(self._real(p))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def unlink(self, p):
        with self.mu:
            os.unlink(self._real(p))
            self.ids.pop(p, None)

    def rename(self, old, new):
        with self.mu:
            os.rename(self._real(old), self._real(new))
            if old in self.ids:
                self.ids[new] = self.ids.pop(old)
            else:  # a directory: move the paths under it
                for k in [k for k in self.ids if k.startswith(old + "/")]:
                    self.ids[new + k[len(old):]] = self.ids.pop(k)

    def utimens(self, p, times=None):
        return os.utime(self._real(p), times)

    def open(self, p, flags):
        return os.open(self._real(p), flags)

    def create(self, p, mode, fi=None):
        with self.mu:
            # read-write whatever the caller asked: the kernel reads pages of a mapped file (SQLite -shm) through this handle
            fd = os.open(self._real(p), os.O_RDWR | os.O_CREAT, mode)
            if p not in self.ids:
                self.ids[p] = self._new_id()
            return fd

    def read(self, p, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, p, data, offset, fh):
        with self.mu:
            n = os.pwrite(fh, data, offset)
            fid = self.ids.get(p)
            if fid is not None:
                self.dirty.add(fid)
                self.last_write[fid] = (offset, bytes(data))
            self.stats["writes"] += 1
            return n

    def truncate(self, p, length, fh=None):
        with self.mu:
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(self._real(p), length)
            fid = self.ids.get(p)
            if fid is not None:
                self.dirty.add(fid)
                self.last_write.pop(fid, None)

    def flush(self, p, fh):
        return 0

    def release(self, p, fh):
        return os.close(fh)

    def fsync(self, p, datasync, fh):
        with self.mu:
            os.fsync(fh)
            self._sync_file(p)
            self.stats["fsync"] += 1
            return 0

    def fsyncdir(self, p, datasync, fh):
        with self.mu:
            self.durable_dirs[p] = self._entries_now(p)
            # a new subdirectory made durable here gets an (empty) entry table until it is synced itself
            for name, (kind, _) in self.durable_dirs[p].items():
                sub = os.path.join(p, name)
                if kind == "d" and sub not in self.durable_dirs:
                    self.durable_dirs[sub] = {}
            self.stats["fsyncdir"] += 1
            return 0

    def opendir(self, p):
        return 0

    def releasedir(self, p, fh):
        return 0


def main():
    lower, mnt = sys.argv[1], sys.argv[2]
    fs = PowerCutFS(lower)
    print("mounted", flush=True)
    # attribute caching off: SQLite grows its -shm file and maps it; a cached old size means SIGBUS
    FUSE(fs, mnt, foreground=True, nothreads=True, default_permissions=True, attr_timeout=0, entry_timeout=0, negative_timeout=0)
    if CUT["mode"]:
        res = fs.cut(CUT["mode"] == "tear")
        print("cut: mode=%s dirty_files_lost=%d torn=%d entries_lost=%d fsync=%d fsyncdir=%d writes=%d" % (
            CUT["mode"], res["dirty_files_lost"], res["torn"], res["entries_lost"], fs.stats["fsync"], fs.stats["fsyncdir"], fs.stats["writes"]), flush=True)
    else:
        print("clean unmount", flush=True)


if __name__ == "__main__":
    main()
