"""Configs: an experiment's variants and the ``--set`` overrides, typed against them.

``config(module, variant, overrides)`` is the config a run uses: ``module.get_config(variant)``
with each ``key=value`` override applied, every value checked against the type of the entry it
replaces (or of the same entry in the experiment's other variants) before anything runs.
"""

from __future__ import annotations

import ast
import copy
import json
import reprlib
from types import ModuleType

from . import VARIANTS

__all__ = ["ConfigError", "apply_overrides", "config"]


class ConfigError(ValueError):
    """A bad ``--set`` override."""


def _parse_value(text: str):
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            pass
    return text  # a bare string, e.g. solver=hals


# Returned by _conform when a value does not have the template's type.
_MISMATCH = object()


def _conform(value, template):
    """``value`` in the type of ``template`` (the config value it replaces), or ``_MISMATCH``.

    bool takes only a bool, int only an int (2.5 and 2.0 are refused: a count must not be
    truncated), float an int or a float (stored as float), str only a string; a list or tuple
    takes a list or tuple whose every element conforms to the template's elements. A ``None``
    template (e.g. "the benchmark's own list") says nothing about the type: anything goes.
    """
    if template is None:
        return value
    if isinstance(template, bool):  # before int: bool is an int subclass
        return value if isinstance(value, bool) else _MISMATCH
    if isinstance(template, int):
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if isinstance(template, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _MISMATCH
    if isinstance(template, str):
        return value if isinstance(value, str) else _MISMATCH
    if isinstance(template, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        element = _element_template(template)
        items = [_conform(v, element) for v in value]
        return _MISMATCH if any(v is _MISMATCH for v in items) else type(template)(items)
    return _MISMATCH  # a section (dict): its keys are set one by one


def _element_template(seq):
    """One value standing for every element of a config list (``None``: no constraint)."""
    kinds = {type(v) for v in seq}
    if kinds <= {int, float} and float in kinds:
        return 0.0  # [0.5, 1] is a list of floats
    return seq[0] if len(kinds) == 1 else None  # empty or mixed: nothing to check against


# How error messages name a type: (one value, the plural for "a list of ...").
_TYPE_NAMES = {
    bool: ("a bool (true or false)", "bools (true or false)"),
    int: ("an int", "ints"),
    float: ("a float", "floats (or ints)"),
    str: ("a string", "strings"),
    list: ("a list", "lists"),
    tuple: ("a list", "lists"),
}


def _type_name(template) -> str:
    """What ``template``'s type accepts, for error messages: "an int", "a list of floats"."""
    if template is None:
        return "null"
    if isinstance(template, dict):
        return "a section (set its keys one by one, section.key=value)"
    if isinstance(template, (list, tuple)):
        element = _element_template(template)
        if element is not None:
            return "a list of " + _TYPE_NAMES.get(type(element), ("", "values"))[1]
    return _TYPE_NAMES.get(type(template), (f"a {type(template).__name__}",))[0]


def _values_at(configs, key: str) -> list:
    """The values at the dotted ``key`` in those of ``configs`` that have it."""
    found = []
    for node in configs:
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            found.append(node)
    return found


def _typed_value(key: str, text: str, templates: list):
    """The ``--set key=text`` value, parsed and checked against the values it may replace.

    ``templates``: the config's value at ``key`` first, then the other variants'. ``None`` in
    one of them (full: ``"solvers": None``) allows null, not every type; only when all are
    ``None`` is any value accepted.
    """
    given = _parse_value(text)
    typed = [t for t in templates if t is not None]
    if given is None and len(typed) < len(templates):
        return None
    for template in typed or [None]:
        value = _conform(given, template)
        if value is not _MISMATCH:
            return value
    expected = " or ".join(dict.fromkeys(_type_name(t) for t in templates))
    hint = ""
    if any(isinstance(t, str) for t in typed) and not isinstance(given, str):
        hint = f" (for the string, quote it: --set {key}='\"{text}\"')"
    was = reprlib.repr(templates[0])
    raise ConfigError(
        f"--set {key}={text}: expected {expected} (the config's value: {was}), "
        f"got {given!r} ({type(given).__name__}){hint}"
    )


def apply_overrides(config: dict, overrides: list[str], like: tuple[dict, ...] = ()) -> dict:
    """``config`` with each ``key=value`` (dotted keys for nested dicts) applied.

    Each value is parsed (JSON, else a Python literal, else a bare string) and must have the
    type of the value it replaces (see :func:`_conform`). ``like``: other configs of the same
    experiment (its other variants); the type of the same key there is accepted too, so that
    ``--set time_to_target.solvers='["mu"]'`` works where the full variant has ``None``.

    Raises:
      ConfigError: a malformed override, a key the config does not have (so a typo never runs
        silently with the default), or a value of the wrong type (naming the key, the value
        and the type expected), all before anything runs.
    """
    config = copy.deepcopy(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"--set {key}: {p!r} is not a section of the config")
            node = node[p]
        if leaf not in node:
            raise ConfigError(
                f"--set {key}: no such config key; known here: {', '.join(sorted(node))}"
            )
        node[leaf] = _typed_value(key, text, [node[leaf], *_values_at(like, key)])
    return config


def config(module: ModuleType, variant: str, overrides: list[str] = ()) -> dict:
    """The config of ``module``'s ``variant`` with ``overrides`` applied (:func:`apply_overrides`,
    the other variants giving the types a ``None`` entry may take)."""
    others = tuple(module.get_config(v) for v in VARIANTS if v != variant)
    return apply_overrides(module.get_config(variant), list(overrides), like=others)
