"""Labelled progress for the command line: one redrawn line with the phase, the count, the
elapsed time and an estimate of the time left, on a terminal only and never under ``quiet``.

:func:`bar` returns a :class:`Bar`; :func:`callback` adapts one to the ``progress(done, total,
phase)`` callbacks that library functions take. Library code takes a callback (or None) from the
command; it never decides to print itself. (tqdm was tried: the tqdm 4.70.1 installed here renders
its bar but writes nothing to a pseudo-terminal, so refopt draws its own line, with no dependency.)
"""
from __future__ import annotations

import sys
import time


def wanted(stream=None, quiet: bool = False) -> bool:
    """Whether a bar should be drawn on ``stream`` (stderr by default): a terminal, not quiet."""
    stream = stream if stream is not None else sys.stderr
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


class Bar:
    """``update(n=1, phase=None)``, ``set_phase(text)``, ``close()``; a no-op when disabled.

    The text reads ``LABEL [PHASE]: DONE/TOTAL UNIT (ELAPSED, about LEFT left)``."""

    def __init__(self, total: int, label: str, *, unit: str = "", stream=None,
                 enabled: bool = True):
        self.total, self.label, self.unit = int(total), label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(enabled) and self.total > 0
        self.done, self.phase = 0, ""
        self._start = time.monotonic()
        if self.enabled:
            self._draw()

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self._draw()

    def update(self, n: int = 1, phase: str | None = None) -> None:
        self.done += n
        if phase is not None:
            self.phase = phase
        self._draw()

    def text(self) -> str:
        """The plain line (also what the tests read)."""
        elapsed = time.monotonic() - self._start
        left = (f", about {elapsed / self.done * (self.total - self.done):.0f} s left"
                if 0 < self.done < self.total else "")
        phase = f" [{self.phase}]" if self.phase else ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.label}{phase}: {self.done}/{self.total}{unit} ({elapsed:.0f} s{left})"

    def _draw(self) -> None:
        if not self.enabled:
            return
        self.stream.write("\r\033[K" + self.text())
        self.stream.flush()

    def print_above(self, line: str) -> None:
        """Print ``line`` on stdout above the bar, which then redraws under it."""
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
        print(line, flush=True)
        self._draw()

    def close(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self.stream.write("\r\033[K")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: int, label: str, *, unit: str = "", quiet: bool = False, stream=None) -> Bar:
    """A :class:`Bar`, enabled only on a terminal and without ``quiet``."""
    return Bar(total, label, unit=unit, stream=stream, enabled=wanted(stream, quiet))


def callback(label: str, *, unit: str = "cases", quiet: bool = False, stream=None):
    """A ``progress(done, total, phase)`` callback (the form ``verify_cases``, ``fuzz`` and
    ``check_report`` take) that drives one :class:`Bar`, or None where no bar is wanted."""
    if not wanted(stream, quiet):
        return None
    state: dict = {}

    def progress(done: int, total: int, phase: str) -> None:
        b = state.get("bar")
        if b is None:
            b = state["bar"] = Bar(total, label, unit=unit, stream=stream)
        if done >= total:
            b.close()
            return
        if done > b.done:
            b.update(done - b.done, phase=phase)
        else:
            b.set_phase(phase)
    return progress
