"""A run is a directory: everything a run produces, and everything needed to resume it.

::

    RUN_DIR/
      config.json         what was asked for (env, steps, seed, hyperparameters, ...)
      metrics.csv         one row per logging point (prefrl.metrics)
      summary.json        the final numbers
      learning_curve.png  true return against env steps
      checkpoints/        agent (and reward model) checkpoints
      videos/             mp4s of the policy (and of queries, in preference runs)
      prefs.sqlite        the preference store (preference runs only)
      status.json         the live state of a running preference run (for the labelling window)
      window.json         the labelling window's heartbeat (pid, updated_at, sessions, open)
      run.lock            held (flock) by the process running the run, for as long as it runs
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefrl.errors import EXIT_FAILED, MissingFileError, PrefrlError, os_refusal
from prefrl.status import RunStatus
from prefrl.utils.config_fields import json_kind, wrong_config_field
from prefrl.utils.io import atomic_write
from prefrl.utils.json_text import json_text
from prefrl.utils.locking import LockBusy, exclusive, lock_held, lock_holder

RUN_FORMAT_VERSION = 1
"""the version of the run-directory format this prefrl writes (``config.json``'s
``format_version``; a config without one is format 0, written by an older prefrl whose
checkpoints ``prefrl upgrade RUN_DIR`` converts)"""


class RunFormatError(PrefrlError):
    """A run directory written by a newer prefrl."""


class RunExistsError(PrefrlError, ValueError):
    """The run directory a new run was to use already holds one."""


class RunDirError(PrefrlError, OSError):
    """The OS refused to read or write a file of a run directory (disk full, read-only file
    system, permissions, a file in the way); the message names the path, the reason in
    plain words and how to go on. An :class:`OSError` too, with the original ``errno``."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, errno_: int | None = None, path: str | Path | None = None):
        super().__init__(message)
        self.message = message
        self.errno = errno_
        self.filename = None if path is None else str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.errno, self.filename))

    def __str__(self) -> str:
        return self.message


class RunFileError(PrefrlError, ValueError):
    """A file of a run directory (``config.json``, ``summary.json``) that prefrl cannot
    use: not JSON, not an object, a field of the wrong type; the message names the file
    and the field."""


class RunBusyError(PrefrlError):
    """The run is being run by another process (it holds the run's ``run.lock``)."""


class RunDir:
    """Paths and small readers/writers of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path | None, kind: str, env_id: str, seed: int) -> RunDir:
        """Make a new run directory (default ``runs/<kind>-<env>-s<seed>-<time>``).

        Raises:
            RunExistsError: ``path`` already holds a run (its ``config.json``), which a new
                run must not overwrite.
        """
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = re.sub(r"[^\w.=-]+", "_", env_id).strip("_")  # "Hopper-v5(a=1)": "Hopper-v5_a=1"
            path = Path("runs") / f"{kind}-{name}-s{seed}-{stamp}"
        run = cls(path)
        if run.config_path.is_file():
            kind = run_kind(run.path)
            if kind == "train":
                raise RunExistsError(
                    f"{run.path} already holds a run; continue it with: {resume_command(run.path)}"
                )
            raise RunExistsError(
                f"{run.path} already holds a {kind or 'prefrl'} run; choose another --run-dir "
                "(or remove that directory to make this run there)"
            )
        try:
            run.path.mkdir(parents=True, exist_ok=True)
            run.checkpoints.mkdir(exist_ok=True)
            run.videos.mkdir(exist_ok=True)
        except OSError as err:
            words = mkdir_refusal(err)
            if words is None:
                raise
            if err.errno in (errno.EEXIST, errno.ENOTDIR):
                words = "a file is in the way (a run directory must be a directory)"
            fix = {
                errno.ENOSPC: "free some space or choose another --run-dir",
                errno.EDQUOT: "free some space or choose another --run-dir",
            }.get(err.errno or 0, "choose another --run-dir")
            raise RunDirError(
                f"cannot create the run directory {run.path}: {words}; {fix}", err.errno, run.path
            ) from None
        return run

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.csv")
    summary_path = property(lambda self: self.path / "summary.json")
    plot_path = property(lambda self: self.path / "learning_curve.png")
    checkpoints = property(lambda self: self.path / "checkpoints")
    videos = property(lambda self: self.path / "videos")
    store_path = property(lambda self: self.path / "prefs.sqlite")
    reused_store_path = property(lambda self: self.path / "reused.sqlite")
    """the labels of other runs this run trains on too (``prefrl train --labels-from``)"""
    agent_checkpoint = property(lambda self: self.checkpoints / "agent.pt")
    reward_checkpoint = property(lambda self: self.checkpoints / "reward_model.pt")
    trainer_checkpoint = property(lambda self: self.checkpoints / "reward_trainer.pt")
    status_path = property(lambda self: self.path / "status.json")
    window_path = property(lambda self: self.path / "window.json")
    errors_path = property(lambda self: self.path / "errors.log")
    """the tracebacks of the roles' errors (each also said in one line as it happened)"""
    lock_path = property(lambda self: self.path / "run.lock")
    """locked (``flock``) by the process that runs the run (:meth:`claim`), as long as it
    runs: the kernel lets go of it when that process ends, however it ends"""

    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json``, stamped with the run-directory format version."""
        write_json(self.config_path, {**config, "format_version": RUN_FORMAT_VERSION})

    def read_config(self) -> dict[str, Any]:
        """``config.json``, checked: a JSON object whose known fields have their types.

        Raises:
            MissingFileError (a FileNotFoundError): no ``config.json`` (not a run directory).
            RunFileError: not JSON, not an object, or a field of the wrong type.
            RunDirError: the OS refused to read it.
            RunFormatError: written by a newer prefrl.
        """
        if not self.config_path.exists():
            raise MissingFileError(
                f"{self.path} is not a prefrl run directory (no config.json). "
                "Pass the directory a `prefrl train` or `prefrl baseline` run created."
            )
        fix = "repair it (prefrl writes it as a JSON object of settings) or start a new run"
        config = _read_json_object(self.config_path, fix)
        check_config_fields(config, self.config_path)
        version = config.get("format_version", 0)
        if version > RUN_FORMAT_VERSION:
            raise RunFormatError(
                f"{self.path} was written by a newer prefrl (run format {version}; this prefrl "
                f"reads up to {RUN_FORMAT_VERSION}): upgrade prefrl to open it"
            )
        return config

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)

    def read_summary(self) -> dict[str, Any]:
        """``summary.json``.

        Raises:
            FileNotFoundError: there is none (the run has not ended).
            RunFileError: it is not a JSON object.
            RunDirError: the OS refused to read it.
        """
        fix = "delete it: it is written again when the run ends (prefrl resume, or run it again)"
        return _read_json_object(self.summary_path, fix)

    def check_writable(self) -> None:
        """Fail now, in one line, when a file cannot be written in the run directory
        (read-only file system, permissions, disk full), not later in a child process.

        Raises:
            RunDirError: the OS refused.
        """
        probe = self.path / f".prefrl-write-test-{os.getpid()}"
        try:
            with probe.open("wb") as f:
                f.write(b"prefrl")
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise refused(err, probe, "writing in", shown=self.path) from None
        finally:
            try:
                probe.unlink(missing_ok=True)
            except OSError:
                pass

    @contextlib.contextmanager
    def claim(self, then: str | None = None) -> Iterator[None]:
        """Hold the run's lock (``run.lock``) for the ``with`` block: the one process that
        runs the run (``prefrl train``, ``prefrl resume``) or changes its labels (``prefrl
        import``, ``prefrl repair``). Taken at once or refused; the kernel lets go of it
        when this process ends, a ``kill -9`` or a power loss too. Where the file system
        has no ``flock``, ``status.json``'s pid tells whether another process runs it.
        Once held, a run whose process was killed (``status.json`` still says running)
        is given up to :data:`ROLES_GONE_WAIT_S` for the roles it started to end.
        ``then``: the command to run once the run is stopped (for the refusal).

        Raises:
            RunBusyError: another process holds it (runs the run).
            RunDirError: the lock file cannot be written (read-only, disk full, ...).
        """
        with contextlib.ExitStack() as held:
            try:
                locked = held.enter_context(exclusive(self.lock_path))
            except LockBusy as busy:
                raise RunBusyError(_busy_message(self.path, busy.pid, then)) from None
            except OSError as err:
                raise refused(err, self.lock_path, "writing in", shown=self.path, then=then) from None
            status = read_run_status(self.status_path)
            if not locked:  # no flock on this file system: status.json's pid tells
                pid = _live_runner(status)
                if pid is not None:
                    raise RunBusyError(_busy_message(self.path, pid, then))
            _wait_for_roles(status)
            yield

    def claim_if_run(self, then: str | None = None) -> contextlib.AbstractContextManager[None]:
        """:meth:`claim`, for a command that changes the labels of a store in this
        directory (``prefrl import``, ``prefrl repair``): when it is a run's (its
        ``config.json``, or a ``run.lock`` a run made); any other directory (a store file's
        own, an export's, a new one) has no run to refuse and is left without a lock file.
        """
        if self.config_path.exists() or self.lock_path.exists():
            return self.claim(then)
        return contextlib.nullcontext()

    def running(self) -> bool:
        """Whether another process runs the run now: it holds ``run.lock``. Where locks
        cannot be told (a file system without ``flock``), ``status.json``'s pid tells."""
        held = lock_held(self.lock_path)
        if held is not None:
            return held
        return _live_runner(read_run_status(self.status_path)) is not None

    def check_not_running(self, then: str | None = None) -> None:
        """Refuse a run that another process is running (it holds ``run.lock``; a
        ``status.json`` that says running without it is from a process that is gone).
        ``then``: the command to run once it is stopped (one that changes the run's
        labels, which must not change under it).

        Raises:
            RunBusyError: it is running.
        """
        held = lock_held(self.lock_path)
        if held is None:  # no flock on this file system: status.json's pid tells
            pid = _live_runner(read_run_status(self.status_path))
            if pid is None:
                return
        elif held:
            pid = lock_holder(self.lock_path)
        else:
            return
        raise RunBusyError(_busy_message(self.path, pid, then))


ROLES_GONE_WAIT_S = 5.0
"""how long :meth:`RunDir.claim` waits for the roles of a run whose process was killed to
end (each ends itself within 3 s of losing it); a pid alive after that is taken for
another process's (reused since)"""


def _live_runner(status: RunStatus | None) -> int | None:
    """The pid of the process ``status`` says runs the run, when it is alive and not this
    one; else None."""
    if status is None or not status.running or status.pid is None or status.pid == os.getpid():
        return None
    return status.pid if pid_alive(status.pid) else None


def _wait_for_roles(status: RunStatus | None) -> None:
    """Wait (up to :data:`ROLES_GONE_WAIT_S`) until the roles of a run whose process was
    killed are gone: ``status.json`` still says running and names their pids."""
    if status is None or not status.running or not status.role_pids:
        return
    pids = [pid for pid in status.role_pids.values() if pid != os.getpid()]
    deadline = time.monotonic() + ROLES_GONE_WAIT_S
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _busy_message(path: Path, pid: int | None, then: str | None = None) -> str:
    fix = (
        f"stop it first (Ctrl-C), then run: {then}"
        if then
        else "stop it first (Ctrl-C) or wait for it to finish"
    )
    who = f" (pid {pid})" if pid else ""
    return f"{path} is being run by another prefrl process{who}; {fix}"


def write_json(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    """Write ``data`` as indented JSON atomically (a crash or a power loss never leaves
    half a file, or an empty one). ``durable=False`` for a heartbeat (``status.json``,
    ``window.json``, rewritten every second): whole or not at all, but not flushed to
    the disk (worthless after a power loss).

    Raises:
        RunDirError: the OS refused (disk full, read-only, ...): the message names the file.
    """
    try:
        atomic_write(path, json_text(data) + "\n", durable=durable)
    except OSError as err:
        raise refused(err, path, "writing") from None


def mkdir_refusal(err: OSError) -> str | None:
    """:func:`prefrl.errors.os_refusal` of a failed ``mkdir(parents=True)``, where "no
    such file or directory" can only be a file system that makes no directories there
    (``/proc``)."""
    if err.errno == errno.ENOENT:
        return "the file system there does not allow creating directories"
    if err.errno == errno.EEXIST:  # exist_ok=True: a file where a directory should be
        return os_refusal(NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
    return os_refusal(err)


def refused(
    err: OSError, path: str | Path, doing: str, *, shown: str | Path | None = None, then: str | None = None
) -> OSError:
    """``err`` as a one-line :class:`RunDirError` naming ``path`` when it is the OS refusing
    for a reason the user can fix (see :func:`prefrl.errors.os_refusal`), else ``err``
    itself. ``doing``: ``"writing"`` or ``"reading"``; ``shown``: the path the message
    names (default ``path``). For a file of a preference run being written the
    message says that the labels are safe and how to continue the run; ``then``: the
    command to run again instead (one that changes another's run: ``prefrl import``)."""
    words = os_refusal(err)
    if words is None:
        return err
    path = Path(path)
    code = err.errno or 0
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free some space"
    elif code == errno.EROFS:
        fix = "copy the run directory to a writable disk"
    elif code in (errno.EACCES, errno.EPERM):
        fix = f"give your user {'read' if doing == 'reading' else 'write'} access to {path.parent}"
    else:
        fix = f"move what is in the way of {path}"
    run = run_of(path)
    if doing != "reading" and run is not None and run_kind(run) == "train":
        # a preference run's file: resumed, also before it has a store (`prefrl train`
        # again is refused); an export or a fit-reward is not asked to resume another's run
        where = "the copy" if code == errno.EROFS else str(run)
        how = f"{labels_kept(run)}{fix} and " + (
            f"run again: {then}" if then else f"continue with: {resume_command(where)}"
        )
    else:
        how = f"{fix} and try again"
    return RunDirError(f"{words} {doing} {shown or path}; {how}", err.errno, path)


def labels_kept(run: Path) -> str:
    """``"every label given so far is in RUN/prefs.sqlite: "`` when the run has its store
    (the start of a refusal's advice), else ``""``."""
    store = run / "prefs.sqlite"
    return f"every label given so far is in {store}: " if store.exists() else ""


def resume_command(run: str | Path) -> str:
    """``prefrl resume RUN``, with ``--trust-task-file`` when the run's task is a task file
    (resume would ask for it: loading the file runs its code; the user who is told this
    has just run it)."""
    task = str(_config_of(Path(run)).get("task") or "")
    return f"prefrl resume {run}" + (" --trust-task-file" if ".py:" in task else "")


def run_kind(run: str | Path) -> str:
    """The ``kind`` in a run's config.json (``train``, ``baseline``, ``fit-reward``; or ``""``)."""
    return str(_config_of(Path(run)).get("kind", ""))


def run_of(path: str | Path) -> Path | None:
    """The run directory ``path`` is in (its own directory or the one above, e.g. for a
    checkpoint), or None; None too where the OS cannot look (a path too long)."""
    path = Path(path)
    for folder in (path.parent, path.parent.parent):
        try:
            if (folder / "config.json").is_file():
                return folder
        except OSError:
            return None
    return None


def run_holding(path: str | Path) -> Path | None:
    """The run directory ``path`` is, or is inside (absolute), or None. A run directory
    holds a preference store (``prefs.sqlite``), or a ``config.json`` that prefrl wrote
    (it names the ``prefrl_version``) and a ``checkpoints/`` directory."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if (folder / "prefs.sqlite").is_file() and (folder == path or (folder / "config.json").is_file()):
            return folder
        if (folder / "checkpoints").is_dir() and "prefrl_version" in _config_of(folder):
            return folder
    return None


def _config_of(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _read_json_object(path: Path, fix: str) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise refused(err, path, "reading") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not text (not UTF-8): {fix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFileError(f"{path} is not valid JSON ({err}; cut short or edited?): {fix}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path} holds a JSON {json_kind(data)}, not an object: {fix}")
    return data


def check_config_fields(config: dict[str, Any], path: str | Path) -> None:
    """Refuse a ``config.json`` field of the wrong JSON type (``"steps": "lots"``).

    Raises:
        RunFileError: names the file, the field, its value and the type it needs.
    """
    wrong = wrong_config_field(config)
    if wrong is not None:
        raise RunFileError(f"{path}: {wrong}: repair it or start a new run")


# ------------------------------------------------------------------ a run's live state
def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is alive on this machine (a zombie, exited but not yet
    reaped by its parent, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): os.kill said it exists
    fields = stat.rpartition(")")[2].split()
    return not fields or fields[0] not in ("Z", "X")


def read_status_json(path: str | Path) -> dict[str, Any] | None:
    """``status.json`` as a dict, or None when it is missing, half-written or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_run_status(path: str | Path) -> RunStatus | None:
    """``status.json`` as a :class:`~prefrl.status.RunStatus`, or None when it is missing,
    half-written or unreadable."""
    data = read_status_json(path)
    return None if data is None else RunStatus.from_dict(data)


WINDOW_MAX_AGE_S = 5.0
"""a ``window.json`` heartbeat older than this is from a window that is gone"""


def read_window(run_dir: str | Path) -> dict[str, Any] | None:
    """The labelling window's heartbeat, ``RUN_DIR/window.json``, or None when it is missing,
    half-written or unreadable. The window (:mod:`prefrl.ui.heartbeat`) rewrites it about
    once a second while open: ``{"pid", "updated_at", "sessions", "open"}``, ``sessions``
    counting the windows opened on the run so far, ``open`` false once it has closed."""
    return read_status_json(RunDir(run_dir).window_path)


def window_open(run_dir: str | Path, max_age_s: float = WINDOW_MAX_AGE_S, now: float | None = None) -> bool:
    """Whether a labelling window is open on the run: its heartbeat says open, was written
    within ``max_age_s`` (``now``: Unix time, default ``time.time()``) and its process is alive."""
    data = read_window(run_dir)
    if data is None or data.get("open") is False:
        return False
    pid, updated = data.get("pid"), data.get("updated_at")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if not isinstance(updated, (int, float)) or isinstance(updated, bool):
        return False
    now = time.time() if now is None else now
    return now - float(updated) <= max_age_s and pid_alive(pid)


def mark_stopped_if_dead(run_dir: str | Path) -> bool:
    """When ``status.json`` says running but no process runs the run (none holds its
    ``run.lock``: the one that did was killed, crashed, or the machine restarted, its pid
    perhaps another process's by now), rewrite it: ``"running": false`` and ``"stopped":
    "the run's process (pid N) was gone"``. Returns whether it found the run dead. The
    process holding the lock may call it, before it runs the run.

    A run directory that cannot be written (a read-only copy) is left as it is: True is
    still returned.
    """
    run = RunDir(run_dir)
    status = read_run_status(run.status_path)
    if status is None or not status.running or run.running():
        return False
    pid = status.pid
    gone = "the run's process was gone" if pid is None else f"the run's process (pid {pid}) was gone"
    try:
        write_json(run.status_path, replace(status, running=False, stopped=gone).to_dict())
    except OSError:
        pass  # read-only: the staleness of status.json still tells
    return True
