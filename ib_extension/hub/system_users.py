"""A system user per candidate, when the hub runs as root (LocalProcessSpawner runs each
server as the system user of the same name). Made when the hub user is added, removed
with its home when the service deletes the hub user after the retention period."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import signal
from pathlib import Path

log = logging.getLogger("ib_extension.hub.system_users")
SHARED_TEMP = ("/tmp", "/var/tmp", "/dev/shm")


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                           f"{out.decode(errors='replace').strip()}")


async def ensure(name: str, home_base: str) -> None:
    """Create the unprivileged user `name` with a private home, unless it exists."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    home = Path(home_base) / name
    await _run("useradd", "--create-home", "--home-dir", str(home), "--user-group",
               "--shell", "/usr/sbin/nologin", "--comment", "Interview Buddy candidate", name)
    os.chmod(home, 0o700)
    log.info("made system user %s (home %s, mode 700)", name, home)


SERVICE_HOME = "/var/lib/interview-buddy"


def ensure_service_user(name: str, home: str = SERVICE_HOME) -> pwd.struct_passwd:
    """The unprivileged system user the ib service runs as (made if missing)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    import subprocess

    done = subprocess.run(["useradd", "--system", "--create-home", "--home-dir", home,
                           "--user-group", "--shell", "/usr/sbin/nologin", "--comment",
                           "Interview Buddy service", name], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"useradd {name} failed: {done.stderr.strip()}")
    os.chmod(home, 0o700)
    return pwd.getpwnam(name)


async def remove(name: str) -> None:
    """Stop whatever still runs as `name`, delete its files in the shared temporary
    folders (a later user may get the same uid), then the user and its home."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for pid in _pids_of(uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for folder in SHARED_TEMP:
        _remove_owned(Path(folder), uid)
    await _run("userdel", "--remove", name)
    log.info("removed system user %s and its home", name)


def _pids_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _remove_owned(folder: Path, uid: int) -> None:
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if entry.lstat().st_uid != uid:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError as e:
            log.warning("could not remove %s: %s", entry, e)
