"""The ``refopt`` command: one subcommand per job, each registered by the module that owns it.

Every module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
subcommands and sets ``func`` (``args -> exit status``). Modules import their heavy or optional
dependencies (numba, CuPy, torch, jax, dask) inside ``func``, so ``refopt --help`` is cheap.

Ctrl-C (SIGINT) and SIGTERM end any command with one line on stderr and exit status 130 or 143
(128 + the signal number), never a traceback; what was finished before is kept (sweeps append
each run as it ends, checkpoints and golden files are written atomically). An ``OSError`` that
reaches the dispatcher (an output path that is a file or lies under one) is one line and exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys

COMMAND_MODULES = (
    "refopt.cli_rules",        # refopt rules
    "refopt.experiments.cli",  # refopt report, refopt sweep
    "refopt.golden.cli",       # refopt golden build|check
    "refopt.verify.cli",       # refopt verify, refopt compare
    "refopt.kernels.bench",    # refopt bench
    "refopt.proofs.cli",       # refopt prove
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="refopt", description="Reference, golden outputs and theory checks for AdamX/AdamNX, "
        "AdamS and AlphaAdam.")
    parser.add_argument("--version", action="version", version=f"refopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler that :func:`main` installs."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    command = " ".join(filter(None, ("refopt", getattr(args, "command", None))))
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread: leave SIGTERM alone
        pass
    try:
        if getattr(args, "json", None) != "-":
            return int(args.func(args) or 0)
        # --json -: stdout holds the JSON alone, whatever else the command prints goes to stderr.
        from . import _cliutil

        _cliutil.JSON_STREAM = sys.stdout
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return int(args.func(args) or 0)
        finally:
            _cliutil.JSON_STREAM = None
    except KeyboardInterrupt:
        _say(f"{command}: interrupted (SIGINT); finished work is kept")
        return 128 + signal.SIGINT
    except Terminated:
        _say(f"{command}: terminated (SIGTERM); finished work is kept")
        return 128 + signal.SIGTERM
    except OSError as exc:
        # A path the user gave that cannot be used (an --out that is a file or lies under one,
        # no permission, disk full): one line, not a traceback. Commands report their own
        # errors first; this is the fallback.
        where = getattr(exc, "filename", None)
        _say(f"{command}: error: {where + ': ' if where else ''}"
             f"{getattr(exc, 'strerror', None) or exc}")
        return 2
    finally:
        if previous is not None:
            try:
                signal.signal(signal.SIGTERM, previous)
            except (ValueError, OSError):  # pragma: no cover
                pass


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # pragma: no cover - stderr closed
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
