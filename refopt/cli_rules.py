"""``refopt rules [NAME]``: the rules, their sources, every hyperparameter's default, and the
options that select a variant (with their allowed values)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("rules", help="list the rules, their sources, defaults and variant options")
    p.add_argument("name", nargs="?", help="one rule (or alias) to show; default: all")
    from ._cliutil import add_json, add_quiet

    add_quiet(p)
    add_json(p, "each rule's source, aliases, defaults and variant options")
    p.set_defaults(func=run)


def run(args) -> int:
    from .registry import RULES, canonical_name

    import sys

    try:
        names = [canonical_name(args.name)] if args.name else list(RULES)
    except ValueError as exc:
        print(f"refopt rules: {exc}", file=sys.stderr)
        return 2
    from ._cliutil import json_problem, write_json

    problem = json_problem(args.json)
    if problem:
        print(f"refopt rules: {problem}", file=sys.stderr)
        return 2
    doc = {}
    for name in names:
        info = RULES[name]
        doc[name] = {"source": info.source, "aliases": list(info.aliases),
                     "defaults": {k: repr(v) for k, v in info.cls.defaults.items()},
                     "variants": {k: [repr(c) for c in v] for k, v in info.variants.items()}}
    write_json(args.json, doc)
    if args.json == "-":
        return 0
    for name in names:
        info = RULES[name]
        alias = f" (alias: {', '.join(info.aliases)})" if info.aliases else ""
        print(f"{info.name}{alias}: {info.source}")
        resolved = info.cls().hyper  # defaults that depend on other options, filled in
        for key, value in info.cls.defaults.items():
            shown = repr(value)
            if value is None and resolved[key] is not None:
                shown += f" (= {resolved[key]!r} with the default options)"
            choices = info.variants.get(key)
            allowed = f"  [variants: {' | '.join(map(repr, choices))}]" if choices else ""
            print(f"    {key} = {shown}{allowed}")
    return 0
