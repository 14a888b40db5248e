"""Checking config values against type hints, so a function's signature is its config schema.

Block factories and the experiment dataclasses declare their parameters with ordinary type
hints (`int`, `Literal[...]`, `X | Y`, `tuple[int, int]`) and constraints in `Annotated`
metadata (`Min`, `Max`). `check` validates one value against such a hint and returns it
normalised (lists become tuples, ints become floats where floats are expected); `describe`
says in words what a hint accepts, for error messages.
"""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Annotated, Any, Callable, Literal, Mapping, Union

from zoo.common.errors import ConfigError, did_you_mean, unknown


@dataclasses.dataclass(frozen=True)
class Min:
    value: float
    exclusive: bool = False


@dataclasses.dataclass(frozen=True)
class Max:
    value: float
    exclusive: bool = False


@dataclasses.dataclass(frozen=True)
class Odd:
    pass


PositiveInt = Annotated[int, Min(1)]
OddPositiveInt = Annotated[int, Min(1), Odd()]
NonNegativeInt = Annotated[int, Min(0)]
PositiveFloat = Annotated[float, Min(0, exclusive=True)]
NonNegativeFloat = Annotated[float, Min(0)]
Fraction = Annotated[float, Min(0), Max(1, exclusive=True)]
Probability = Annotated[float, Min(0), Max(1)]
OpenFraction = Annotated[float, Min(0, exclusive=True), Max(1, exclusive=True)]
Size = Union[PositiveInt, tuple[PositiveInt, PositiveInt]]
Padding = Union[Literal["same", "valid"], NonNegativeInt, tuple[NonNegativeInt, NonNegativeInt]]
Activation = Literal["relu", "relu6", "gelu", "swish", "silu", "elu", "selu", "tanh", "sigmoid", "none"]


def _origin(hint: Any) -> Any:
    return typing.get_origin(hint)


def describe(hint: Any) -> str:
    """What a hint accepts, in words: 'a positive integer', "one of 'same', 'valid'", ..."""
    origin = _origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        bounds = {type(m): m for m in meta}
        noun = {int: "integer", float: "number"}.get(base, describe(base))
        low, high = bounds.get(Min), bounds.get(Max)
        if low and low.value == 0 and not high:
            return f"a {'positive' if low.exclusive else 'non-negative'} {noun}"
        if low and low.value == 1 and base is int and not high:
            return f"a positive {'odd ' if Odd in bounds else ''}{noun}"
        parts = []
        if low:
            parts.append(f"{'>' if low.exclusive else '>='} {low.value:g}")
        if high:
            parts.append(f"{'<' if high.exclusive else '<='} {high.value:g}")
        return f"a {noun} {' and '.join(parts)}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        text = " or ".join(describe(a) for a in options)
        return text + (" or null" if len(options) < len(typing.get_args(hint)) else "")
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0]))}"
        return f"a list of {len(args)} {_plural(describe(args[0]))}"
    if origin is list:
        return f"a list of {_plural(describe(typing.get_args(hint)[0]))}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))


def _plural(text: str) -> str:
    for article in ("a ", "an "):
        if text.startswith(article):
            text = text[len(article):]
    return text if text.endswith("s") else text + "s"


def _received(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


def check(value: Any, hint: Any, key: str | None = None) -> Any:
    """`value` checked against `hint` and normalised; a ConfigError at `key` when it does not fit."""
    try:
        return _check(value, hint)
    except _Mismatch as mismatch:
        raise ConfigError(mismatch.message or f"expected {describe(hint)}, received {_received(value)}",
                          key=key) from None


class _Mismatch(Exception):
    def __init__(self, message: str = ""):
        self.message = message


def _check(value: Any, hint: Any) -> Any:
    origin = _origin(hint)
    if hint is Any:
        return value
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        value = _check(value, base)
        for bound in meta:
            if isinstance(bound, Min) and (value < bound.value or (bound.exclusive and value == bound.value)):
                raise _Mismatch(f"expected {describe(hint)}, received {_received(value)}")
            if isinstance(bound, Odd) and value % 2 == 0:
                raise _Mismatch(f"expected {describe(hint)}, received {_received(value)}")
            if isinstance(bound, Max) and (value > bound.value or (bound.exclusive and value == bound.value)):
                raise _Mismatch(f"expected {describe(hint)}, received {_received(value)}")
        return value
    if origin is Literal:
        options = typing.get_args(hint)
        if value in options and type(value) in {type(o) for o in options}:
            return value
        if isinstance(value, str):
            raise _Mismatch(f"expected {describe(hint)}, received {value!r}"
                            f"{did_you_mean(value, [str(o) for o in options])}")
        raise _Mismatch()
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check(value, option)
            except _Mismatch:
                continue
        words = [str(w) for a in typing.get_args(hint) if _origin(a) is Literal for w in typing.get_args(a)]
        hint_text = did_you_mean(value, words) if isinstance(value, str) else ""
        raise _Mismatch(f"expected {describe(hint)}, received {_received(value)}{hint_text}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise _Mismatch()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch()
        return tuple(_check(v, a) for v, a in zip(value, args))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch()
        return [_check(v, typing.get_args(hint)[0]) for v in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch()
        return dict(value)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise _Mismatch()
        return build_dataclass(hint, value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch()
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch()
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch()
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch()
    raise TypeError(f"schema cannot check values against {hint!r}")


def build_dataclass(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of dataclass `cls` from a mapping: unknown keys and bad values are errors."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(unknown("key", key, fields), key=str(key))
        try:
            kwargs[key] = check(value, hints[key])
        except ConfigError as error:
            raise error.located(key_prefix=key) from None
    missing = [name for name, f in fields.items() if name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing required key (expected {describe(hints[missing[0]])})", key=missing[0])
    return cls(**kwargs)


def signature_hints(function: Callable) -> dict[str, tuple[Any, Any]]:
    """The keyword-only parameters of `function`: name -> (type hint, default or REQUIRED)."""
    hints = typing.get_type_hints(function, include_extras=True)
    return {
        name: (hints[name], REQUIRED if p.default is inspect.Parameter.empty else p.default)
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
