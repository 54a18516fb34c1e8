"""A run folder is written as one transaction.

Every command that writes a run folder (training, retraining, sweeps, the inpainter,
the report) goes through :func:`run_transaction`:

1. **Lock.** ``.<name>.lock`` next to the folder is created with ``O_CREAT | O_EXCL``
   and holds the owner's PID, host and start time. A second run into the same folder
   fails at once with a :class:`~common.errors.UserError` naming the holder. A lock
   left by a dead process on this host is taken over (with a warning); a lock of
   another host is never guessed at.
2. **Private build folder.** The run is written into ``.<name>.partial-<pid>``, which
   no other process touches; partial folders of dead processes are removed by the
   next run that holds the lock.
3. **Swap.** Only when the block finishes without an exception, an existing run is
   moved aside to ``<name>.previous`` (an older ``.previous`` is dropped) and the new
   run is renamed to ``<name>``. A finished run is never deleted before the new one
   is whole.
4. **Failure.** On an exception the existing run is left untouched; whatever the
   failed attempt wrote is kept as ``<name>.failed`` (replacing an older one) for
   inspection, and the exception propagates. Ctrl-C and SIGTERM (``common.cli.run_main``
   turns it into an exception) become ``Interrupted`` with a message saying where the
   attempt is.

Renames within one folder are atomic on POSIX file systems, so at every instant
``<name>`` is either the old finished run or the new finished run (a crash between
the two renames leaves the old run in ``<name>.previous`` and the new one complete
in its partial folder).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

from common.cluster import local_path
from common.errors import Interrupted, UserError, interruption_text
from common.io import ensure_dir

log = logging.getLogger(__name__)

#: locks this process holds: lock path -> (token, depth); a nested ``run_lock`` on a
#: folder this process already holds is a no-op (the retraining CLI locks before it
#: loads the model, the runner locks again when it writes).
_HELD: dict[str, list] = {}


def lock_path(run_dir: str | os.PathLike) -> Path:
    """The lock file of ``run_dir``: ``.<name>.lock`` in the same parent folder."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


def _host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # "pid (comm) S ...": a killed but not yet reaped process is 'Z' and holds nothing
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _read_holder(path: Path) -> dict | None:
    """The lock's JSON, or None while it is missing; waits briefly for a lock whose
    owner has created but not yet filled it."""
    for _ in range(40):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        with contextlib.suppress(json.JSONDecodeError):
            holder = json.loads(text)
            if isinstance(holder, dict) and "pid" in holder and "host" in holder:
                return holder
        time.sleep(0.05)
    raise UserError(f"lock file '{path}' is unreadable; if no run is writing '{path.parent}', delete it")


def _describe(holder: dict) -> str:
    return f"process {holder['pid']} on host {holder['host']} (started {holder.get('started', '?')})"


@contextlib.contextmanager
def _folder_mutex(folder: Path) -> Iterator[None]:
    """Serialises stale-lock takeovers in ``folder`` (a ``flock`` on the folder itself)."""
    try:

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _try_create(path: Path, token: str) -> bool:
    record = {"pid": os.getpid(), "host": _host(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "command": " ".join(sys.argv)[:300], "token": token}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise UserError(f"cannot create lock file '{path}': {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _acquire(run_dir: Path) -> str:
    path = lock_path(run_dir)
    ensure_dir(path.parent)
    token = uuid.uuid4().hex
    for _ in range(5):
        if _try_create(path, token):
            return token
        holder = _read_holder(path)
        if holder is None:  # released between our attempt and the read
            continue
        same_host = holder["host"] == _host()
        ours = int(holder["pid"]) == os.getpid()
        if not same_host or (not ours and pid_alive(int(holder["pid"]))):
            where = "" if same_host else " (another host: this cannot tell whether it still runs)"
            raise UserError(f"run folder '{run_dir}' is in use by {_describe(holder)}{where}; wait for it to "
                            f"finish, or delete '{path}' if that run is gone")
        with _folder_mutex(path.parent):
            # someone else may have taken it over meanwhile: only remove the lock we judged stale
            if _read_holder(path) == holder:
                log.warning("taking over the stale lock '%s' of %s, which no longer runs", path, _describe(holder))
                path.unlink(missing_ok=True)
    raise UserError(f"cannot lock run folder '{run_dir}': lock file '{path}' keeps changing")


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Holds the exclusive lock of ``run_dir`` for the block (re-entrant in one process).

    Yields:
        The lock file's path.

    Raises:
        UserError: another live process (or another host) holds the lock.
    """
    run_dir = local_path(run_dir)
    path = lock_path(run_dir)
    key = str(path.resolve()) if path.parent.exists() else str(path.absolute())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    # folders the lock file needed that did not exist: removed again if the run left them empty
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    token = _acquire(run_dir)
    key = str(path.resolve())
    _HELD[key] = [token, 1]
    try:
        yield path
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError, UserError):
            holder = _read_holder(path)
            if holder is not None and holder.get("token") == token:
                path.unlink()
        for folder in created:  # innermost first; stops at the first one that holds something
            try:
                folder.rmdir()
            except OSError:
                break


def _pid_of(folder: Path, marker: str) -> int | None:
    with contextlib.suppress(ValueError):
        return int(folder.name.rsplit(marker, 1)[1])
    return None


def remove_leftovers(run_dir: str | os.PathLike) -> list[Path]:
    """Removes partial/trash folders of ``run_dir`` left by other processes (call with the
    lock held: then none of them is still being written). Returns what was removed."""
    run_dir = Path(run_dir)
    removed = []
    for marker in (".partial-", ".trash-"):
        for folder in sorted(run_dir.parent.glob(f".{run_dir.name}{marker}*")):
            if marker == ".partial-" and _pid_of(folder, marker) == os.getpid():
                continue  # ours: the transaction clears it itself
            log.warning("removing '%s', left by an interrupted run", folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """The folders of one transaction.

    Attributes:
        final: where the finished run will be (``<name>``).
        path: the private build folder to write into (``.<name>.partial-<pid>``).
        previous: where an existing finished run is moved on success (``<name>.previous``).
        failed: where the build folder is kept when the run fails (``<name>.failed``).
    """

    final: Path
    path: Path
    previous: Path
    failed: Path


def _rename_replacing(src: Path, dst: Path) -> None:
    """Renames folder ``src`` to ``dst``; an existing ``dst`` is moved to a trash name
    first and deleted only afterwards."""
    trash = None
    if dst.exists():
        trash = dst.parent / f".{dst.name}.trash-{os.getpid()}"
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(dst, trash)
    os.rename(src, dst)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _commit(run: RunFolder) -> None:
    replaced = run.final.exists()
    if replaced:
        _rename_replacing(run.final, run.previous)
    os.rename(run.path, run.final)
    if replaced:
        log.warning("replaced the run in '%s'; the previous one is kept in '%s'", run.final, run.previous)


def _keep_failed(run: RunFolder) -> None:
    if not run.path.exists():
        return
    if not any(run.path.iterdir()):
        run.path.rmdir()
        return
    with contextlib.suppress(OSError):
        _rename_replacing(run.path, run.failed)


@contextlib.contextmanager
def run_transaction(run_dir: str | os.PathLike) -> Iterator[RunFolder]:
    """Locks ``run_dir`` and yields a :class:`RunFolder` whose ``path`` the caller writes
    the whole run into; swaps it in when the block ends normally.

    On an exception the finished run at ``run_dir`` (if any) is untouched, the attempt
    is kept as ``RunFolder.failed`` (unless it wrote nothing) and the exception propagates.

    Raises:
        UserError: the folder is locked by a live run, or ``run_dir`` is a file.

    On a worker other than the chief of a multi-worker cluster (``common.cluster``) the
    whole transaction happens in that worker's private temporary folder.
    """
    run_dir = local_path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder '{run_dir}' exists and is a file")
    if run_dir.name in ("", ".", ".."):
        raise UserError(f"run folder '{run_dir}' must name a folder of its own (not '.' or '..')")
    with run_lock(run_dir):
        remove_leftovers(run_dir)
        run = RunFolder(final=run_dir, path=run_dir.parent / f".{run_dir.name}.partial-{os.getpid()}",
                        previous=run_dir.parent / f"{run_dir.name}.previous",
                        failed=run_dir.parent / f"{run_dir.name}.failed")
        if run.path.exists():
            shutil.rmtree(run.path)
        try:
            run.path.mkdir()
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise
            raise UserError(f"cannot create folder '{run.path}': {exc.strerror or exc}") from exc
        try:
            yield run
        except BaseException as exc:
            wrote = run.path.exists() and any(run.path.iterdir())
            _keep_failed(run)
            wrote = wrote and run.failed.exists() and not run.path.exists()
            kept = f"the attempt is kept in '{run.failed}'" if wrote else "nothing was written"
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(f"{interruption_text(exc)}; {kept}; '{run.final}' is unchanged",
                                  exit_code=getattr(exc, "exit_code", 130)) from exc
            if isinstance(exc, UserError) and wrote and str(run.failed) not in str(exc):
                exc.args = (f"{exc}; {kept}",)  # the same error (and type), saying where the attempt is
            elif not isinstance(exc, UserError):  # a bug: its traceback follows; say where the attempt is
                log.error("%s failed (%s: %s); %s", run.final, type(exc).__name__, exc, kept)
            raise
        _commit(run)
