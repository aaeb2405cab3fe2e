"""The ``refopt`` command: one subcommand per job, each registered by the module that owns it.

Every module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
subcommands and sets ``func`` (``args -> exit status``). Modules import their heavy or optional
dependencies (numba, CuPy, torch, jax, dask) inside ``func``, so ``refopt --help`` is cheap.
"""
from __future__ import annotations

import argparse
import importlib
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
