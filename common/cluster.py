"""The cluster a process belongs to, from the standard ``TF_CONFIG`` environment variable.

A multi-worker run starts the same command on every worker, each with its own
``TF_CONFIG``::

    {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}

Worker 0 is the chief: only it writes files. Every other worker does the same work
(training needs it in step) but builds its run folders under a private temporary
folder, removed when the process exits (:func:`local_path`, used by ``common.runs``), so
nothing of theirs lands under the results root. Without ``TF_CONFIG``, or with a
cluster of one worker, the process is alone and every path is itself.
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from common.errors import UserError

log = logging.getLogger(__name__)

TF_CONFIG_ENV = "TF_CONFIG"
#: the task name TensorFlow's errors use for a worker: ``/job:worker/replica:0/task:1``
_TASK = re.compile(r"/job:(?:worker|chief)/replica:\d+/task:(\d+)")
_ADDRESS = re.compile(r"ipv[46]:([^\s:,\"']+:\d+)")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One worker's view of a multi-worker cluster.

    Attributes:
        workers: the workers' ``host:port`` addresses (``cluster.worker``), worker 0 first.
        index: this process's worker (``task.index``).
    """

    workers: tuple[str, ...]
    index: int

    @property
    def chief(self) -> bool:
        """Worker 0 writes the run's files."""
        return self.index == 0

    @property
    def address(self) -> str:
        return self.workers[self.index]

    def describe(self, index: int | None = None) -> str:
        """``worker 1 (host1:12345)``: a worker as messages name it (this one by default)."""
        i = self.index if index is None else index
        return f"worker {i} ({self.workers[i]})"


def _field(value, path: str, kind, what: str):
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UserError(f"${TF_CONFIG_ENV}: field '{path}' must be {what}, got {json.dumps(value)[:80]}")
    return value


def parse_tf_config(text: str) -> Cluster:
    """The :class:`Cluster` that a ``TF_CONFIG`` value describes.

    Raises:
        UserError: one line naming the variable and the field — not JSON, a missing or
            wrong-typed ``cluster`` / ``cluster.worker`` / ``task`` / ``task.type`` /
            ``task.index``, a task that is not a worker, an index out of range.
    """
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"${TF_CONFIG_ENV} is not valid JSON ({exc.msg} at character {exc.pos}): "
                        f"{text[:80]!r}") from None
    _field(spec, "(top level)", dict, "an object with 'cluster' and 'task'")
    for key in ("cluster", "task"):
        if key not in spec:
            raise UserError(f"${TF_CONFIG_ENV} lacks field '{key}' (expected "
                            "{\"cluster\": {\"worker\": [\"host:port\", ...]}, \"task\": {\"type\": \"worker\", "
                            "\"index\": N}})")
    cluster = _field(spec["cluster"], "cluster", dict, "an object")
    task = _field(spec["task"], "task", dict, "an object")
    if "worker" not in cluster:
        raise UserError(f"${TF_CONFIG_ENV} lacks field 'cluster.worker' (the workers' host:port addresses)")
    workers = _field(cluster["worker"], "cluster.worker", list, "a list of 'host:port' strings")
    if not workers or not all(isinstance(w, str) and re.fullmatch(r"[^\s:]+:\d+", w) for w in workers):
        raise UserError(f"${TF_CONFIG_ENV}: field 'cluster.worker' must be a non-empty list of 'host:port' "
                        f"strings, got {json.dumps(workers)[:120]}")
    other = sorted(set(cluster) - {"worker"})
    if other:
        raise UserError(f"${TF_CONFIG_ENV}: field 'cluster.{other[0]}' is not supported: synchronous training "
                        "uses workers only (worker 0 is the chief)")
    for key in ("type", "index"):
        if key not in task:
            raise UserError(f"${TF_CONFIG_ENV} lacks field 'task.{key}'")
    if task["type"] != "worker":
        raise UserError(f"${TF_CONFIG_ENV}: field 'task.type' must be \"worker\", got {json.dumps(task['type'])}")
    index = _field(task["index"], "task.index", int, "an integer")
    if not 0 <= index < len(workers):
        raise UserError(f"${TF_CONFIG_ENV}: field 'task.index' is {index} but 'cluster.worker' lists "
                        f"{len(workers)} worker(s) (valid: 0..{len(workers) - 1})")
    return Cluster(workers=tuple(workers), index=index)


def cluster_from_env(environ=None) -> Cluster | None:
    """The cluster of ``$TF_CONFIG`` when it names more than one worker, else None (a
    process alone: today's single-process path). Raises ``UserError`` as
    :func:`parse_tf_config` for a set but malformed variable."""
    text = (os.environ if environ is None else environ).get(TF_CONFIG_ENV, "")
    if not text.strip():
        return None
    cluster = parse_tf_config(text)
    return cluster if len(cluster.workers) > 1 else None


@functools.cache
def current() -> Cluster | None:
    """:func:`cluster_from_env` of this process, read once."""
    return cluster_from_env()


def record() -> dict:
    """What a run's ``config.json`` says about the cluster: ``{"workers": [addresses]}`` for a
    multi-worker run (worker 0 first), nothing for a process alone (its files stay as they were)."""
    cluster = current()
    return {} if cluster is None else {"workers": list(cluster.workers)}


def is_chief() -> bool:
    """True for a process alone and for worker 0 of a cluster."""
    cluster = current()
    return cluster is None or cluster.chief


@functools.cache
def private_root() -> Path:
    """This worker's private temporary folder (made on first use, removed at exit)."""
    cluster = current()
    root = Path(tempfile.mkdtemp(prefix=f"vf-worker{cluster.index}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def local_path(path: str | os.PathLike) -> Path:
    """Where this process writes ``path``: the path itself on the chief (or alone); on any
    other worker the same location inside a private temporary folder removed at exit."""
    path = Path(path)
    if is_chief():
        return path
    root = private_root()
    if path.absolute().is_relative_to(root):
        return path
    return root / path.absolute().relative_to(path.absolute().anchor)


def lost_worker(message: str, cluster: Cluster | None = None) -> str | None:
    """The worker a collective error ``message`` blames (``worker 1 (host1:12345)``), or
    None when it names none. TensorFlow names the peer as ``/job:worker/replica:0/task:N``
    or by its address (``ipv4:127.0.0.1:12345``)."""
    cluster = cluster or current()
    if cluster is None:
        return None
    for match in _TASK.finditer(message):
        i = int(match.group(1))
        if i != cluster.index and i < len(cluster.workers):
            return cluster.describe(i)
    others = [i for i in range(len(cluster.workers)) if i != cluster.index]
    for match in _ADDRESS.finditer(message):
        address = match.group(1)
        port = address.rsplit(":", 1)[1]
        same = [i for i in others if cluster.workers[i] == address] or [
            i for i in others if cluster.workers[i].rsplit(":", 1)[1] == port]  # a host name resolved to its IP
        if len(same) == 1:
            return cluster.describe(same[0])
    return None


def announce_worker() -> None:
    """Logs (INFO) which worker of a cluster this process is and who writes the files;
    nothing for a process alone."""
    cluster = current()
    if cluster is None:
        return
    if cluster.chief:
        log.info("multi-worker run: %s of %d, the chief: writes the run's files", cluster.describe(),
                 len(cluster.workers))
    else:
        log.info("multi-worker run: %s of %d: trains in step with the others; the chief (%s) writes the run's "
                 "files, this worker's copies go to a temporary folder removed at exit", cluster.describe(),
                 len(cluster.workers), cluster.describe(0))


def free_local_ports(n: int) -> list[int]:
    """``n`` TCP ports free on localhost right now (for a cluster of workers on one machine)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
