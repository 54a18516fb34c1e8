"""Atomic writes and careful reads.

Every file the project writes goes through a temporary file in the same folder
followed by ``os.replace``, so an interrupted run never leaves a half-written file
where a complete one is expected. The file gets the mode the umask gives a new file
(0644 under umask 022), like files written directly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from common.errors import UserError

#: errno values of a write that found no space (a full disk, an exhausted quota)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def disk_full(path: str | os.PathLike, *, needed: int | None = None, written: int = 0) -> UserError:
    """The one-line error of a write that ran out of space: the file, the free space left
    there and what the file needed (or had written when the space ran out)."""
    path = Path(path)
    try:
        free = _size(shutil.disk_usage(path.parent).free)
    except OSError:
        free = "?"
    need = f"it needed {_size(needed)}" if needed else f"{_size(written)} of it were written when space ran out"
    return UserError(f"cannot write '{path}': no space left on the disk ({free} free in '{path.parent}'; {need}); "
                     "free some space or write elsewhere (--output-dir, $VF_RESULTS_ROOT, $VF_DATA_ROOT)")


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``; elsewhere
    set and restored at once)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; renames it onto ``path`` on success.

    Use for writers that need a file name (``model.save``, ``Image.save``). On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    ensure_dir(path.parent)
    suffix = suffix if suffix is not None else "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files: give the file the mode any new file gets under the umask
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except OSError as exc:
        written = tmp_path.stat().st_size if tmp_path.exists() else 0
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if exc.errno in _DISK_FULL:
            raise disk_full(path, needed=getattr(exc, "needed", None), written=written) from exc
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def ensure_dir(path: str | os.PathLike) -> Path:
    """Creates ``path`` (and parents); a UserError if that is not possible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # a file where a folder is needed (the path itself or a parent): name that file
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise UserError(f"cannot create folder '{path}': '{blocking}' is a file, not a folder") from None
        raise UserError(f"cannot create folder '{path}': {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise UserError(f"folder '{path}' is not writable")
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> Path:
    """Writes ``data`` to ``path`` atomically (temporary file, fsync, rename). ``sync=False``
    skips the fsync: for the many small files of a folder that is itself written as one
    transaction (``common.runs.run_transaction``) and becomes visible only when whole, and
    for small state files rewritten on every user action (the rename still makes a killed
    process leave the old or the new file, never a torn one)."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    if sync:
                        os.fsync(fh.fileno())
            except OSError as exc:
                exc.needed = len(data)  # for the disk-full message
                raise
    except PermissionError as exc:
        raise UserError(f"cannot write '{path}': permission denied") from exc
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, sync: bool = True) -> Path:
    """Writes UTF-8 ``text`` to ``path`` atomically (``sync``: see ``atomic_write_bytes``)."""
    return atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays appear in metrics; convert without importing numpy here.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json_text(obj: Any) -> str:
    """Serialises ``obj`` (numpy values allowed) as indented JSON; NaN becomes null."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
            return clean(value.tolist())
        return value

    return json.dumps(clean(obj), indent=2, sort_keys=False, default=_json_default) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any, *, sync: bool = True) -> Path:
    """Writes ``obj`` as JSON to ``path`` atomically (``sync``: see ``atomic_write_bytes``)."""
    return atomic_write_text(path, to_json_text(obj), sync=sync)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Appends one JSON line (history files; a torn last line is ignored by readers)."""
    path = Path(path)
    ensure_dir(path.parent)
    line = json.dumps(record, default=_json_default) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise disk_full(path, needed=len(line.encode("utf-8"))) from exc
        raise


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Reads a JSON-lines file, skipping a torn (incomplete) final line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"file '{path}' does not exist")
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise UserError(f"'{path}' line {number} is not valid JSON: {exc.msg}") from exc
    return rows


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """An object's pairs as a dict; a key given twice raises (``json`` would keep the last silently)."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def parse_json_text(text: str, where: str) -> Any:
    """The one JSON parser of user files and options: a UTF-8 byte-order mark (Windows editors
    write one) is ignored; a key given twice in one object, comments and malformed JSON are
    a one-line UserError starting with ``where``.

    Args:
        text: the JSON text.
        where: names the source in errors (``config file '…/run.json'``).

    Returns:
        The decoded value.
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise UserError(f"{where} is empty (a JSON file holds at least {{}})")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise UserError(f"{where} gives the key '{exc.args[0]}' twice in one object (JSON keeps only the last "
                        "value); remove one") from None
    except json.JSONDecodeError as exc:
        comment = text[exc.pos:exc.pos + 2] in ("//", "/*") or text[exc.pos:exc.pos + 1] == "#"
        hint = "; JSON allows no comments" if comment else ""
        raise UserError(f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}{hint})") from None


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Reads a JSON file (:func:`parse_json_text`); a missing or unreadable file or malformed
    JSON is a one-line UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist")
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a folder, expected a JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {what} '{path}': it is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                        "save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} '{path}': {exc}") from exc
    return parse_json_text(text, f"{what} '{path}'")


def replace_section(path, section: str, *, begin: str, end: str, title: str) -> str:
    """Writes ``section`` (which starts with ``begin`` and ends with ``end``) into the text
    file ``path`` in place of the part between those markers, or appends it (a new file
    starts with ``title``); everything else in the file is kept. Returns the new text."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else title + "\n"
    if begin in old and end in old:
        text = old[: old.index(begin)] + section + old[old.index(end) + len(end):]
    else:
        text = old.rstrip("\n") + "\n\n" + section + "\n"
    atomic_write_text(path, text)
    return text
