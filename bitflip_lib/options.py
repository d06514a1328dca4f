"""Command-line options derived from a settings dataclass: one option per field, its help the
field's docstring, its value checked by the dataclass itself.

A new setting needs one edit, in its dataclass: the field, its type, its default and its
docstring. ``bitflip train``/``sweep`` (:class:`~bitflip_lib.lab.studies.StudyConfig`, that is
every :class:`~bitflip_lib.config.TrainConfig` field and the study settings) and
``bitflip generate`` (:class:`~bitflip_lib.generation.training.GenerateConfig`) are built this way.

The option of field ``some_field`` is ``--some-field``; a bool is ``--x`` / ``--no-x``; a field
that may be ``None`` also takes the word ``none``; a tuple takes several values. Options the
user did not give stay unset, so the preset's value applies. Values are only parsed here (an
integer, a number); whether they are allowed is the dataclass's ``validate`` to say, and
:func:`refusal` rewrites its message in terms of the options.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["OptionSpec", "add_options", "field_docs", "given_options", "refusal"]


def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of a dataclass and its bases (the string literal under each field)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (a frozen build): options without help
            continue
        body = tree.body[0].body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _plain(text: str) -> str:
    """Docstring markup as a terminal shows it: ``x`` -> x, :class:`~a.B` -> B."""
    text = re.sub(r":(?!mod)\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r":mod:`~?([\w.]+)`", r"\1", text)
    return text.replace("``None``", "none").replace("``", "").replace("%", "%%")


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """How one field appears on the command line."""

    field: str
    flag: str
    kind: str
    """``bool``, ``int``, ``float``, ``str`` or ``ints`` (a tuple of integers)."""
    optional: bool
    """Whether ``none`` (the field's None) is accepted."""


def _kind(annotation: object) -> tuple[str, bool]:
    args = typing.get_args(annotation)
    optional = type(None) in args
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in args if a is not type(None)]
    if typing.get_origin(annotation) is tuple:
        return "ints", optional
    return {bool: "bool", int: "int", float: "float", str: "str"}[annotation], optional


def _parse(kind: str, optional: bool):
    def parse(text: str):
        if optional and text.lower() == "none":
            return None
        try:
            value = int(text) if kind in ("int", "ints") else float(text)
        except ValueError:
            expected = "an integer" if kind in ("int", "ints") else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}{' or none' if optional else ''}, got {text!r}") from None
        return value  # whether it is allowed (finite, in range) is the dataclass's to say
    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def add_options(parser: argparse.ArgumentParser, cls: type, skip: Iterable[str] = (), flags: Mapping[str, str] = {},
                choices: Mapping[str, Sequence[str]] = {}, many: Iterable[str] = (),
                defaults: object | None = None) -> dict[str, OptionSpec]:
    """Add one option per field of dataclass ``cls`` (except ``skip``) to ``parser``.

    Args:
        flags: another flag for a field (``{"num_eval_agents": "--eval-agents"}``).
        choices: the allowed values of a string field.
        many: fields that take several values (a grid).
        defaults: an instance whose values the help shows as defaults.
    Returns ``{field: OptionSpec}``. Every option defaults to unset (``None`` in the namespace).
    """
    docs, hints, specs = field_docs(cls), typing.get_type_hints(cls), {}
    many = set(many)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind, optional = _kind(hints[f.name])
        flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
        help_text = _plain(docs.get(f.name, ""))
        if defaults is not None:
            value = getattr(defaults, f.name)
            shown = "none" if value is None else " ".join(map(str, value)) if isinstance(value, tuple) else value
            help_text += f" (default: {shown})"
        kwargs: dict = {"dest": f.name, "default": None, "help": help_text}
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            if f.name in choices:
                kwargs["choices"] = tuple(choices[f.name])
            elif kind == "str":
                kwargs["metavar"] = "TEXT"
            else:
                kwargs["type"] = _parse(kind, optional)
                kwargs["metavar"] = {"int": "N", "ints": "N", "float": "X"}.get(kind, "TEXT")
            if kind == "ints" or f.name in many:
                kwargs["nargs"] = "+"
            parser.add_argument(flag, **kwargs)
        specs[f.name] = OptionSpec(f.name, flag, kind, optional)
    return specs


def given_options(args: argparse.Namespace, specs: Mapping[str, OptionSpec]) -> dict:
    """The fields the user gave on the command line, as the dataclass wants them."""
    out = {}
    for name, spec in specs.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if spec.kind == "ints":
            value = None if None in value else tuple(value)
        out[name] = value
    return out


def refusal(message: str, specs: Mapping[str, OptionSpec], extra: Mapping[str, str] = {}) -> str:
    """A settings error in the options' words: the field that opens the message (``gamma must
    be ...``) and every ``field=value`` in it become flags (``--gamma must be ...``)."""
    flags = {**{name: spec.flag for name, spec in specs.items()}, **extra}
    if not flags:
        return " ".join(message.split())
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    message = " ".join(message.split())
    message = re.sub(rf"^({names})(?=[ =])", lambda m: flags[m.group(1)], message)
    return re.sub(rf"(?<![\w-])({names})=", lambda m: flags[m.group(1)] + "=", message)
