"""Rendering ahead of the person: the pairs still to be shown are rendered in the
background, so the next one is on screen as soon as a key is pressed.

:class:`RenderAhead` takes render requests (a query id and the snapshots of its two clips)
and hands back the rendered frames (:class:`RenderedPair`) without ever blocking the
caller. It renders in one of two backends:

- ``"process"`` (the default): a spawned process with its own render env. Frames come
  back through shared memory (one block per pair, copied out and freed by a receiver
  thread), so nothing large crosses a pipe and the window's thread never copies frames.
  MuJoCo's EGL context and pygame's surfaces then live in a process of their own, away
  from the window's display, and a crash of the renderer cannot take the window down.
  It never outlives the window: closing stops it (terminated if it does not stop within a
  second), SIGTERM ends it, and it exits by itself within :data:`PARENT_POLL_S` (plus a
  frame) once the window's process is gone, even killed with SIGKILL; multiprocessing's
  resource tracker, which the window's process started, then exits too and frees what
  was left in shared memory.
- ``"thread"``: a thread of the calling process. No start-up cost and no copies, but
  it shares the GIL (and pygame) with the window.

Frames are rendered at ``frame_stride`` (every ``frame_stride``-th snapshot), still played
in real time: a window redrawing at most ~60 times a second cannot show more, and
MuJoCo's frames, drawn in software without a GPU (~40 ms each at 480x480 on llvmpipe),
are shown at most 25 times a second, as film is: Hopper's 125 fps clips cost a fifth to
render with stride 5.
"""

from __future__ import annotations

import collections
import contextlib
import math
import multiprocessing as mp
import os
import queue
import secrets
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from prefrl.errors import RenderError

BACKENDS = ("process", "thread")
MAX_DISPLAY_FPS = {"mujoco": 25.0, "other": 40.0}
"""the display rate the frame stride aims for, per env family: smooth to the eye, and for
MuJoCo (a frame costs ~40 ms in software) low enough that a Hopper pair renders in well
under the 3 s a person takes to answer one"""
_JOIN_S = 5.0
_STOP_WAIT_S = 1.0
PARENT_POLL_S = 0.5
"""how often the render process looks whether the window's process is still there"""


@dataclass
class RenderedPair:
    """The frames of one query, ready to show.

    Attributes:
        query_id: the query the two clips belong to.
        left, right: uint8 RGB frames ``(T, H, W, 3)``: every ``frame_stride``-th frame
            of the left and the right clip.
        fps: playback speed of these frames in frames per second (the env's
            ``render_fps / frame_stride``: real time).
        frame_stride: snapshots per rendered frame.
        render_s: seconds spent rendering the left and the right clip.
    """

    query_id: int
    left: np.ndarray
    right: np.ndarray
    fps: float
    frame_stride: int
    render_s: tuple[float, float]


def frame_stride_for(render_fps: float, max_display_fps: float) -> int:
    """Snapshots per shown frame so that playback needs at most ~``max_display_fps`` frames/s
    (at 40: 1 for CartPole's 50 fps and Pendulum's 30; at 25: 5 for Hopper's 125)."""
    return max(1, round(render_fps / max_display_fps))


class RenderAhead:
    """Renders query pairs in the background, in the order they are submitted.

    Args:
        env_id: the env the clips come from.
        fixed_length: the run's ``fixed_length`` setting (passed to the render env).
        backend: ``"process"`` or ``"thread"`` (see the module docstring).
        max_display_fps: frames per second to show at most (sets the frame stride);
            default: ``MAX_DISPLAY_FPS`` of the env's family.

    Use from one thread (the window's); :meth:`close` when done (also on errors).

    Raises:
        ValueError: an unknown ``backend``.
    """

    def __init__(
        self,
        env_id: str,
        fixed_length: bool | int = False,
        *,
        backend: str = "process",
        max_display_fps: float | None = None,
        task: str | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.env_id = env_id
        self.backend = backend
        self.in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._done: collections.deque[RenderedPair] = collections.deque()
        self._error: str | None = None
        self._closed = False
        args = (env_id, fixed_length, max_display_fps, task)
        self._proc: Any = None  # process backend: the render process, once started
        self._requests: Any = None
        self._results: Any = None
        self._worker: threading.Thread | None = None
        self._blocks: set[str] = set()  # process backend: shared-memory blocks asked for, not yet freed
        self._sent = 0
        # unique to this renderer (a name /dev/shm already holds is not ours to reuse): at
        # most 31 characters with the count, as macOS allows
        self._block_prefix = f"prefrl{os.getpid()}_{secrets.token_hex(4)}"
        if backend == "process":
            ctx = mp.get_context("spawn")
            try:
                # A Ctrl-C raised half-way through starting the render process would leave
                # it unknown to multiprocessing (never stopped, its semaphores reported
                # leaked): one that comes meanwhile is held until all is started, then
                # stops it.
                with _ctrl_c_held() as ctrl_c:
                    self._requests = ctx.Queue()
                    self._results = ctx.Queue()
                    proc = ctx.Process(
                        target=_process_main,
                        args=(*args, self._requests, self._results, os.getpid()),
                        name="prefrl-render",
                        daemon=True,
                    )
                    # multiprocessing's resource tracker, when it has to be started (the
                    # first queue of a process; again if it died), unblocks SIGINT after:
                    # started here, and SIGINT blocked again, for the render process to
                    # inherit it blocked
                    resource_tracker.ensure_running()
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                    proc.start()
                    self._proc = proc
                    worker = threading.Thread(
                        target=self._receive, name="prefrl-render-receiver", daemon=True
                    )
                    worker.start()
                    self._worker = worker
                if ctrl_c:
                    raise KeyboardInterrupt
            except BaseException:
                self.close()
                raise
        else:
            self._requests = queue.Queue()
            self._worker = threading.Thread(
                target=self._render_here, args=args, name="prefrl-render", daemon=True
            )
            self._worker.start()

    # -- the caller's side ------------------------------------------------------------

    def submit(self, query_id: int, left_snapshots: np.ndarray, right_snapshots: np.ndarray) -> None:
        """Queue the pair for rendering (returns at once).

        Args:
            query_id: the query; the rendered pair carries it.
            left_snapshots, right_snapshots: ``(L, S)`` snapshots of the two clips.
        """
        self.check()
        self.in_flight.add(query_id)
        request: tuple[Any, ...] = (query_id, np.asarray(left_snapshots), np.asarray(right_snapshots))
        if self._proc is not None:  # the name of the shared-memory block its frames will come in
            name = f"{self._block_prefix}r{self._sent}"
            self._sent += 1
            self._blocks.add(name)
            request += (name,)
        self._requests.put(request)

    def poll(self) -> list[RenderedPair]:
        """The pairs finished since the last call (never waits).

        Raises:
            RenderError: the renderer failed (the message says why).
        """
        with self._lock:
            done = list(self._done)
            self._done.clear()
        for pair in done:
            self.in_flight.discard(pair.query_id)
        self.check()
        return done

    def check(self) -> None:
        """Raise :class:`RenderError` if the renderer has failed."""
        if self._error is not None:
            raise RenderError(f"cannot render the clips of {self.env_id}: {self._error}")

    def close(self) -> None:
        """Stop the renderer and free what it holds (idempotent; pending requests are dropped)."""
        if self._closed:
            return
        self._closed = True
        if self._requests is None:  # the render process's start failed before its queues were made
            return
        self._requests.put(None)
        if self._proc is not None:
            # A pair being rendered is not waited for (Hopper: seconds): closing the window must be quick.
            self._proc.join(_STOP_WAIT_S)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(_JOIN_S)
        if self._worker is not None:
            self._worker.join(_JOIN_S)
        if self.backend == "process":
            # Blocks the receiver did not take: the render process made them, and stopped
            # before or after it said so
            for name in list(self._blocks):
                _unlink(name)
            # Never wait at exit for a request the stopped process will not read.
            self._requests.cancel_join_thread()
            self._requests.close()
            if self._results is not None:
                self._results.close()
        with self._lock:
            self._done.clear()

    def __enter__(self) -> RenderAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends ---------------------------------------------------------------------

    def _receive(self) -> None:
        """Process backend, receiver thread: shared-memory frames -> arrays of this process."""
        while not self._closed:
            try:
                message = self._results.get(timeout=0.1)
            except queue.Empty:
                if not self._proc.is_alive() and not self._closed and self._error is None:
                    self._error = f"the render process stopped (exit code {self._proc.exitcode})"
                continue
            except (OSError, EOFError, ValueError):
                return
            if message[0] == "pair":
                _, query_id, name, left_shape, right_shape, fps, stride, render_s = message
                left, right = _take_shared(name, left_shape, right_shape)
                self._blocks.discard(name)
                with self._lock:
                    self._done.append(RenderedPair(query_id, left, right, fps, stride, render_s))
            else:
                self._error = message[1]

    def _render_here(
        self, env_id: str, fixed_length: bool | int, max_display_fps: float | None, task: str | None
    ) -> None:
        """Thread backend: render in this thread (its render env is made and used only here)."""
        try:
            renderer, stride, fps = _make_renderer(env_id, fixed_length, max_display_fps, task)
        except Exception as err:
            self._error = _describe(err)
            return
        try:
            while True:
                request = self._requests.get()
                if request is None or self._closed:
                    return
                query_id, left_snaps, right_snaps = request
                try:
                    left, right, render_s = _render_pair(renderer, left_snaps, right_snaps, stride)
                except Exception as err:
                    self._error = _describe(err)
                    return
                with self._lock:
                    self._done.append(RenderedPair(query_id, left, right, fps, stride, render_s))
        finally:
            renderer.close()


def _make_renderer(
    env_id: str, fixed_length: bool | int, max_display_fps: float | None, task: str | None = None
) -> tuple[Any, int, float]:
    """``(SnapshotRenderer, frame_stride, playback fps)`` for ``env_id``; a behaviour
    task's env (``task``: its name or ``FILE.py:NAME``) is registered first."""
    # here, not at the top: this module stays light (gymnasium loads with the renderer)
    from prefrl.envs.snapshot import env_family
    from prefrl.render.frames import SnapshotRenderer
    from prefrl.tasks import get_task

    if task is not None:
        get_task(task)  # registers its env id in this process (a task file: only if trusted)

    renderer = SnapshotRenderer(env_id, fixed_length)
    if max_display_fps is None:
        family = "mujoco" if env_family(renderer.env) == "mujoco" else "other"
        max_display_fps = MAX_DISPLAY_FPS[family]
    stride = frame_stride_for(renderer.fps, max_display_fps)
    return renderer, stride, renderer.fps / stride


def _render_pair(
    renderer: Any, left_snaps: np.ndarray, right_snaps: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    started = time.perf_counter()
    left = renderer.render(left_snaps[::stride])
    middle = time.perf_counter()
    right = renderer.render(right_snaps[::stride])
    return left, right, (middle - started, time.perf_counter() - middle)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[list[int]]:
    """Hold back a Ctrl-C (SIGINT) that comes inside the block: the list it gives is empty
    unless one came, for the caller to act on after the block (raise KeyboardInterrupt).

    Ctrl-C reaches the terminal's whole process group, so a process started inside the
    block would die of it while its interpreter starts, with a traceback: SIGINT is
    blocked here, the process inherits the mask and ignores SIGINT from then on
    (:func:`_process_main`). The mask alone does not hold it back from this process: the
    kernel hands a signal this thread blocks to another of its threads, and Python raises
    it in the main thread all the same; a handler catches it meanwhile. It is set only
    where Python's own is (the main thread, SIGINT neither ignored nor handled by the
    program): elsewhere the mask alone applies."""
    came: list[int] = []
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if ours:
        signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield came
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _process_main(
    env_id: str,
    fixed_length: bool | int,
    max_display_fps: float | None,
    task: str | None,
    requests: Any,
    results: Any,
    parent: int,
) -> None:
    """Process backend: the render process's loop (``parent``: the window's pid)."""
    # This process never opens a window or plays sound: pygame (which classic-control envs
    # draw with) must not reach for the person's display or audio device.
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["SDL_AUDIODRIVER"] = "dummy"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # SDL would otherwise turn SIGTERM into a quit event that nobody here reads: the
    # renderer would ignore it.
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the window's process to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent(parent)
    try:
        renderer, stride, fps = _make_renderer(env_id, fixed_length, max_display_fps, task)
    except Exception as err:
        results.put(("error", _describe(err)))
        return
    try:
        while True:
            request = requests.get()
            if request is None:
                return
            query_id, left_snaps, right_snaps, name = request
            try:
                left, right, render_s = _render_pair(renderer, left_snaps, right_snaps, stride)
            except Exception as err:
                results.put(("error", _describe(err)))
                return
            _put_shared(left, right, name)
            results.put(("pair", query_id, name, left.shape, right.shape, fps, stride, render_s))
    finally:
        renderer.close()


def _exit_with_parent(parent: int) -> None:
    """Exit this process as soon as its parent (the window's process, pid ``parent``) is
    gone: a thread polls the parent's pid every :data:`PARENT_POLL_S` (when the parent
    dies, this process is handed to another one, and ``os.getppid()`` changes). The pid
    comes from the parent itself: one read here could be read after the parent died
    while this process was still starting."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)  # nothing here is worth saving: the window is gone

    threading.Thread(target=watch, name="prefrl-render-parent-watch", daemon=True).start()


def _put_shared(left: np.ndarray, right: np.ndarray, name: str) -> None:
    """Copy both arrays into a new shared-memory block ``name`` (the receiver frees it)."""
    block = shared_memory.SharedMemory(name, create=True, size=left.nbytes + right.nbytes)
    try:
        flat = np.ndarray((left.nbytes + right.nbytes,), dtype=np.uint8, buffer=block.buf)
        flat[: left.nbytes] = left.reshape(-1)
        flat[left.nbytes :] = right.reshape(-1)
        del flat  # the block cannot close while an array views it
    finally:
        block.close()


def _take_shared(
    name: str, left_shape: tuple[int, ...], right_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Copy the two arrays out of the shared-memory block ``name`` and free the block."""
    block = shared_memory.SharedMemory(name=name)
    try:
        n_left, n_right = math.prod(left_shape), math.prod(right_shape)
        flat = np.ndarray((n_left + n_right,), dtype=np.uint8, buffer=block.buf)
        left = flat[:n_left].reshape(left_shape).copy()
        right = flat[n_left:].reshape(right_shape).copy()
        del flat
    finally:
        block.close()
        block.unlink()
    return left, right


def _unlink(name: str) -> None:
    try:
        block = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    block.close()
    block.unlink()


def _describe(err: BaseException) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}{where}"
