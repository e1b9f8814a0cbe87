"""Where graded code runs: a bubblewrap sandbox that sees no file of the service.

The grading kernel is started through `bwrap` (bubblewrap, the sandbox Flatpak is
built on: small, setuid-free, packaged by every distribution) in new PID, network, IPC
and mount namespaces. Its filesystem holds only the operating system (`/usr`, read
only), the Python installation the grader runs (read only: its `lib` and `bin`, not
its `share`), the launcher module, a folder for the kernel's sockets and two small
tmpfs (its HOME and /tmp). So no data dir, DuckDB file, secrets folder, Jupyter runtime
dir, /root or other session is there to read, its /proc shows only its own processes,
and it has no network.

- Run as root (the service, or a hub as root): the kernel also drops to a dedicated
  unprivileged user (`ib-grader`, created if missing) with `setpriv`, so even what is
  mapped in is read with no privilege.
- Run as another user: bubblewrap makes the namespaces through an unprivileged user
  namespace; the kernel keeps that user's id but sees nothing outside the sandbox.

`prepare()` checks all this once and raises SandboxUnavailable with the reason when it
cannot work: the service then refuses to grade rather than grade unsafely.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_USER = "ib-grader"
LAUNCHER_PATH = "/opt/ib-grading/ib_grading_kernel.py"  # where the sandbox sees kernel.py
TMPFS_BYTES = 64 * 1024 * 1024  # each of the kernel's HOME and /tmp
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")


class SandboxUnavailable(RuntimeError):
    """Graded code cannot be isolated here; the message says why and what to install."""


@dataclass(frozen=True)
class Sandbox:
    bwrap: str
    launcher: str  # the host path of the kernel launcher (grading/kernel.py)
    uid: int | None = None  # the user the kernel runs as, when we are root
    gid: int | None = None
    setpriv: str | None = None
    python: tuple[str, ...] = ()  # what to map of the Python installation (default: ours)

    def __post_init__(self) -> None:
        object.__setattr__(self, "python", tuple(self.python or python_paths()))

    def wrap(self, argv: list[str], *, shared: Path, home: Path) -> list[str]:
        """`argv` (a kernel command naming `shared` files) as run inside the sandbox;
        `shared` is the one host folder mapped in, writable (the kernel's sockets)."""
        cmd = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-pid",
               "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if self.uid is None:
            cmd.append("--unshare-user")  # unprivileged: namespaces through a user namespace
        made: set[str] = {"/"}
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                cmd += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                cmd += ["--ro-bind", path, path]
            made.add(path)
        for path in SYSTEM_FILES:
            cmd += [*_parents(path, made), "--ro-bind-try", path, path]
        for path in self.python:
            cmd += [*_parents(path, made), "--ro-bind", path, path]
        cmd += [*_parents(LAUNCHER_PATH, made), "--ro-bind", self.launcher, LAUNCHER_PATH,
                "--proc", "/proc", "--dev", "/dev",
                "--size", str(TMPFS_BYTES), "--perms", "1777", "--tmpfs", "/tmp"]
        made.add("/tmp")
        cmd += [*_parents(str(home), made),
                "--size", str(TMPFS_BYTES), "--perms", "1777", "--tmpfs", str(home),
                *_parents(str(shared), made), "--bind", str(shared), str(shared),
                "--chdir", str(home), "--"]
        if self.uid is not None:
            cmd += [self.setpriv or "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                    "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
        return cmd + argv

    def hand_over(self, path: Path) -> None:
        """Let the kernel's user own `path` (its sockets folder, its connection file)."""
        if self.uid is not None:
            os.chown(path, self.uid, self.gid)


def _parents(path: str, made: set[str]) -> list[str]:
    """Arguments making each missing ancestor of `path` a 0755 folder (bubblewrap would
    make them 0700, which the kernel's user could not pass through)."""
    args: list[str] = []
    for parent in reversed(Path(path).parents):
        if str(parent) not in made:
            made.add(str(parent))
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def python_paths() -> list[str]:
    """What the kernel needs of this Python: each prefix's bin and lib (and a venv's
    pyvenv.cfg), never the prefix's share/ or anything beside it."""
    paths: list[str] = []
    for prefix in dict.fromkeys((sys.base_prefix, sys.prefix)):
        for part in ("bin", "lib", "lib64", "pyvenv.cfg"):
            path = os.path.join(prefix, part)
            if os.path.exists(path) and not os.path.islink(path) and path not in paths:
                paths.append(path)
    real = os.path.dirname(os.path.realpath(sys.executable))
    if not any(real == p or real.startswith(p + "/") for p in [*paths, "/usr"]):
        paths.append(real)
    return paths


def _sandbox_user(name: str, create: bool) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not create:
            raise SandboxUnavailable(f"The grading user '{name}' does not exist.") from None
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        done = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--comment", "Interview Buddy grading", name],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SandboxUnavailable(f"Could not create the grading user '{name}': "
                                     f"{done.stderr.strip() or done.returncode}.") from None
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise SandboxUnavailable(f"The grading user '{name}' is root; it must be unprivileged.")
    return entry.pw_uid, entry.pw_gid


@functools.lru_cache(maxsize=8)  # a failure is not cached: installing bwrap fixes it
def prepare(user: str = DEFAULT_USER, *, create_user: bool = True) -> Sandbox:
    """A working sandbox, or SandboxUnavailable saying why there is none."""
    from . import kernel

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap is not installed (`apt-get install bubblewrap`, "
                                 "or `make sandbox`); graded code would run unisolated.")
    sandbox = Sandbox(bwrap=bwrap, launcher=kernel.__file__)
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxUnavailable("setpriv (util-linux) is not installed; it drops the "
                                     "grading kernel to an unprivileged user.")
        uid, gid = _sandbox_user(user, create_user)
        sandbox = Sandbox(bwrap=bwrap, launcher=kernel.__file__, uid=uid, gid=gid,
                          setpriv=setpriv)
    probe(sandbox)
    return sandbox


def probe(sandbox: Sandbox) -> None:
    """Start this Python in the sandbox once; raise SandboxUnavailable if it cannot run."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ib-sandbox-probe-") as folder:
        shared, home = Path(folder, "shared"), Path(folder, "home")
        shared.mkdir()
        home.mkdir()
        argv = [sys.executable, "-I", "-c", "import os; print(os.getuid())"]
        try:
            done = subprocess.run(sandbox.wrap(argv, shared=shared, home=home),
                                  capture_output=True, text=True, timeout=30, check=False,
                                  env={"PATH": os.defpath})
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SandboxUnavailable(f"bubblewrap could not start: {e}.") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SandboxUnavailable(f"bubblewrap cannot make a sandbox here ({why}); unprivileged "
                                 "user namespaces may be disabled.")
