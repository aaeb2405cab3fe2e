"""Public packages loaded the way the tests need them (shared by test_conformance and
test_shipped_ports)."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest


def timm_adamw():
    """timm's AdamWLegacy from the installed package, without ``timm/__init__``."""
    return timm_optimizer("adamw", "AdamWLegacy")


def timm_optimizer(module: str, attr: str):
    """``timm.optim.<module>.<attr>`` from the installed package, without ``timm/__init__``."""
    spec = importlib.util.find_spec("timm")
    if spec is None:
        pytest.skip("timm is optional (extra refopt[conformance]; make test installs it)")
    try:
        return getattr(importlib.import_module(f"timm.optim.{module}"), attr)
    except ImportError:
        pass  # timm/__init__ needs torchvision: load the optimizer module on its own
    root = Path(spec.origin).parent
    saved = {k: sys.modules.get(k) for k in ("timm", "timm.optim")}
    try:
        for name, path in (("timm", root), ("timm.optim", root / "optim")):
            stub = types.ModuleType(name)
            stub.__path__ = [str(path)]
            sys.modules[name] = stub
        return getattr(importlib.import_module(f"timm.optim.{module}"), attr)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
