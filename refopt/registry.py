"""The registry of rules: names, aliases, sources and variant options, and ``get_rule``.

Generic tests iterate over :data:`RULES` (the PyTorch ``OptimizerInfo`` pattern): adding a rule
means adding an entry here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from . import rules as R
from .rules._base import Rule


@dataclass(frozen=True)
class RuleInfo:
    """What refopt knows about one rule: its class, source and the options that pick a variant."""

    name: str
    cls: type
    source: str
    variants: dict[str, tuple] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


RULES: dict[str, RuleInfo] = {
    "adamx": RuleInfo("adamx", R.AdamX, "Zhu, Xiao, Min 2025, arXiv 2511.13465 (AdamNX v3); "
                      "official code mengzhu0308/AdamNX @ b68c319",
                      {"coef_form": ("expm1", "naive"), "weight_decay_mode": ("decoupled", "l2"),
                       "state_dtype": (None, "float64", "float32", "float16", "bfloat16")},
                      aliases=("adamnx",)),
    "adams": RuleInfo("adams", R.AdamS, "Zhang, Wang, Chen 2025, arXiv 2505.16363; official code "
                      "pku-huzhang/AdamS", {"bias_correction": (False, True)}),
    "alphaadam": RuleInfo("alphaadam", R.AlphaAdam, "Chang, Li, Yuan 2025, arXiv 2501.18094 v1 "
                          "(reconstructed family; Theorem 3.5 withdrawn in v2)",
                          {"mask_source": ("m_prev", "m_t", "ones"), "strict": (True, False),
                           "alpha_rule": ("count", "count+1", "norm", "soft", "none"),
                           "first_step": ("unmasked", "cautious", "as_is"),
                           "bias_correction": ("hf", "torch")}),
    "adam": RuleInfo("adam", R.Adam, "Kingma & Ba 2015, arXiv 1412.6980; torch.optim.Adam",
                     {"bias_correction": ("torch", "hf", "none")}),
    "adamw": RuleInfo("adamw", R.AdamW, "Loshchilov & Hutter 2019, arXiv 1711.05101; "
                      "torch.optim.AdamW", {"bias_correction": ("torch", "hf", "none")}),
    "cadamw": RuleInfo("cadamw", R.CAdamW, "Liang et al. 2024, arXiv 2411.16085; "
                       "kyleliang919/C-Optim c_adamw.py", {"scaling": ("count", "count+1")},
                       aliases=("c-adamw", "cautious_adamw")),
    "adax": RuleInfo("adax", R.AdaX, "Li et al. 2020, arXiv 2004.09740; switchablenorms/AdaX",
                     {"weight_decay_mode": ("l2", "decoupled")}),
    "sgdm": RuleInfo("sgdm", R.SGDM, "Polyak 1964; torch.optim.SGD", {"nesterov": (False, True)}),
}

_ALIASES = {alias: info.name for info in RULES.values() for alias in info.aliases}

#: The rules refopt ships, with golden cases, arithmetic twins and a known-mistake catalogue;
#: any other rule (``refopt.extend``: registered, or an import path) gets the generic cases of
#: :mod:`refopt.golden.user_rules`.
BUILTIN_RULES = frozenset(RULES)

# Fast backends live in their own modules, imported only when asked for.
BACKENDS = {"numpy": None, "numba": "refopt.kernels.numba_backend",
            "cupy": "refopt.kernels.cupy_backend"}


def canonical_name(name: str) -> str:
    """The registry name of ``name`` (aliases resolved); an import path ``"module:Class"`` of a
    user rule (``refopt.extend``) is checked by importing it and returned unchanged."""
    from .extend import is_import_path, rule_class_from_path

    if is_import_path(name):
        rule_class_from_path(name)
        return name
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in RULES:
        raise ValueError(f"unknown rule {name!r}; known rules: {sorted(RULES)} "
                         f"(aliases: {sorted(_ALIASES)}), or an import path 'module:Class' "
                         f"of a refopt.extend.Rule subclass")
    return key


def rule_info(name: str) -> RuleInfo:
    """The :class:`RuleInfo` of a registered rule, or one made for an import path
    ``"module:Class"`` (source "user rule module:Class", no variant options)."""
    from .extend import is_import_path, rule_class_from_path

    if is_import_path(name):
        return RuleInfo(name, rule_class_from_path(name), f"user rule {name}")
    return RULES[canonical_name(name)]


def is_builtin(name: str) -> bool:
    """True for a rule refopt ships (:data:`BUILTIN_RULES`), by name or alias."""
    from .extend import is_import_path

    return not is_import_path(name) and canonical_name(name) in BUILTIN_RULES


def get_rule(name: str, *, backend: str = "numpy", **hyper: Any) -> Rule:
    """Build a rule from its name and hyperparameters (validated now, not at the first step).

    ``backend`` is ``"numpy"`` (the float64 reference, default), ``"numba"`` (fused CPU kernels,
    extra ``refopt[numba]``) or ``"cupy"`` (CUDA kernels, extra ``refopt[cupy]``). Every backend
    offers the same ``init``/``step`` and is tested against the NumPy reference. ``name`` may
    be an import path ``"module:Class"`` of a user rule (``refopt.extend``; numpy backend only).
    """
    from .extend import is_import_path, rule_class_from_path

    cls = rule_class_from_path(name) if is_import_path(name) else RULES[canonical_name(name)].cls
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    if is_import_path(name) and backend != "numpy":
        raise ValueError(f"backend={backend!r}: a user rule ({name!r}) has only the numpy "
                         f"reference backend")
    reference = cls(**hyper)
    if backend == "numpy":
        return reference
    module = importlib.import_module(BACKENDS[backend])
    return module.make_rule(reference)
