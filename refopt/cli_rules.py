"""``refopt rules``: list the rules, their sources, variant options and defaults."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("rules", help="list the rules, their sources and variant options")
    p.set_defaults(func=run)


def run(args) -> int:
    from .registry import RULES

    for info in RULES.values():
        alias = f" (alias: {', '.join(info.aliases)})" if info.aliases else ""
        print(f"{info.name}{alias}: {info.source}")
        for option, values in info.variants.items():
            print(f"    {option}: {' | '.join(map(repr, values))} "
                  f"(default {info.cls.defaults[option]!r})")
    return 0
