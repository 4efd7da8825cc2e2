"""Config flags generated from the fields' metadata (help, range, choices, flag name), the forgetting-protocol group
shared by ``forget`` and ``demo``, and ``--set KEY=VALUE``: every one of them becomes a dotted override."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from know_core.common.fields import describe_range, field_of, parse_sets
from know_core.engine.protocols import DEFAULT_PROTOCOL, PROTOCOL_KEYS, PROTOCOLS

_PREFIX = "set:"  # argparse dest of a generated flag: "set:<dotted key>"


def add_field_flags(group: Any, cls: type, keys: tuple[str, ...], default: str | None = None) -> None:
    """One flag per dotted key of ``cls``, named, typed and explained by the field's metadata, its help ending in
    ``default`` (None: the field's default); the text given lands in the overrides under the key, parsed there by
    the field's type."""
    for key in keys:
        f, hint = field_of(cls, key)
        meta = f.metadata
        what = "an integer" if int in (hint, *typing.get_args(hint)) else "a number"
        bounds = f", {describe_range(meta, what)}" if meta["low"] is not None or meta["high"] is not None else ""
        if default is None:
            note = f" (default {f.default})" if f.default not in (None, dataclasses.MISSING) else ""
        else:
            note = default
        kw: dict[str, Any] = {"dest": _PREFIX + key, "default": None, "metavar": f.name.upper(),
                              "help": meta["help"] + bounds + note}
        if typing.get_origin(hint) is list:
            kw["nargs"] = "+"
        elif hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
            del kw["metavar"]
        elif meta["choices"]:
            kw["choices"] = meta["choices"]
            del kw["metavar"]
        group.add_argument(meta["flag"] or "--" + f.name.replace("_", "-"), **kw)


def add_protocol_args(p: argparse.ArgumentParser, cls: type, prefix: str = "",
                      default_protocol: str | None = DEFAULT_PROTOCOL) -> None:
    g = p.add_argument_group("forgetting protocol (a named bundle first, then any of these flags on top)")
    g.add_argument("--protocol", default=default_protocol,
                   help="; ".join(f"{k}: {v}" for k, v in PROTOCOLS.helps().items())
                   + (f" (default {default_protocol})" if default_protocol else " (default: the preset's)"))
    add_field_flags(g, cls, tuple(prefix + k for k in (*PROTOCOL_KEYS, "warm")), default="")


def add_set_arg(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--set", action="append", default=[], dest="set_items", metavar="KEY=VALUE",
                   help=f"any config key, dotted for nested ones (e.g. {example}); repeatable, applied after the flags")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted overrides the flags and ``--set`` items of ``args`` ask for (``--set`` last, so it wins)."""
    out = {k[len(_PREFIX):]: " ".join(v) if isinstance(v, list) else v
           for k, v in vars(args).items() if k.startswith(_PREFIX) and v is not None}
    return {**out, **parse_sets(args.set_items)}

