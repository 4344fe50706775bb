"""The oracle interface: whatever answers "which of these two clips is better?".

An oracle is a person (answering in a window) or a synthetic teacher computed from the
env's true reward (:mod:`prefrl.oracles.synthetic`). Both look the same to the code that
asks: ``oracle.answer(left, right) -> Answer``, with ``oracle.name`` stored next to each
answer, and ``oracle.close()`` (or ``with oracle: ...``) when no more questions will come.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from types import TracebackType

from prefrl.prefs.clips import Answer, Clip


class OracleClosed(Exception):
    """Raised by :meth:`Oracle.answer` when the oracle can answer no more questions.

    For example, the person closed the answering window. The caller should stop asking
    and keep the answers it already has; the pair being asked about gets no answer.
    """


class Oracle(abc.ABC):
    """Answers which of two clips is better.

    Attributes:
        name: identifies the oracle and its parameters, e.g. ``"perfect"`` or
            ``"mistake(eps=0.1)"``; recorded in the preference store with every answer.

    Subclasses implement :meth:`answer` and, if they hold resources (a window, a
    process), :meth:`close`.
    """

    name: str

    @abc.abstractmethod
    def answer(self, left: Clip, right: Clip) -> Answer:
        """Compare two clips and return which one is better.

        May block for as long as it takes (a person watching both clips). Must not
        modify the clips. Synthetic oracles read only ``clip.true_rewards``; a person sees
        the clips rendered from their snapshots (or observations) and never their rewards.

        Returns:
            ``LEFT`` or ``RIGHT`` (that clip is better), ``EQUAL`` (equally good),
            ``CANT_TELL`` (incomparable, e.g. a person who cannot judge) or ``SKIPPED``
            (no answer, e.g. B-Pref's skip teacher). Only the first three are trained on.

        Raises:
            OracleClosed: the oracle can answer no more questions.
            ValueError: a clip cannot be judged (for synthetic oracles: ``true_rewards``
                is not one-dimensional or its sum is not finite).
        """

    def recall(self, returns: Sequence[tuple[float, float]]) -> None:  # noqa: B027 (optional hook)
        """Take the state the oracle was in after answering pairs of clips with these true
        returns ``(left, right)``, in this order, without answering them again: a labeler
        that starts again (after a crash, or ``prefrl resume``) asks the oracle that
        answered the run's stored labels, and a teacher whose answers depend on what it was
        asked before (the range of returns it has seen, its random numbers) must go on as
        if it had never stopped. Does nothing by default (an oracle without such state)."""

    def close(self) -> None:  # noqa: B027 (optional hook: synthetic oracles hold nothing)
        """Release what the oracle holds (a window, a process). Does nothing by default; idempotent."""

    def __enter__(self) -> Oracle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
