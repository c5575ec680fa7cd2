"""Option values converted in plain Python instead of through pydantic: a one-shot command starts sooner.

Why. Typer (0.2x) converts every option value with a pydantic ``TypeAdapter``, so every harmcli command imports
pydantic first: about 75 ms of CPU, an eighth of a one-shot ``harmcli harmonize`` on the ONNX Runtime path and a
quarter of what the plain OpenCV script it is measured against costs in all (2-core EPYC). harmcli's options are
plain ``str``, ``int``, ``float``, ``bool`` and ``Path`` values (or optional / list forms of them) with at most a
``min``/``max``, which plain Python converts the same way; :func:`use_plain_coercion` gives those parameters a
converter before Typer builds its own. Anything else (parsers, enums, path checks Typer would make) keeps Typer's
conversion, and when this Typer does not have the hooks used here nothing changes at all. A bad value is still a
usage error naming the option (exit 2); ``tests/cli/test_coercion.py`` checks that both ways agree.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

_NUMBER_WORDS = {int: "integer", float: "number"}
_TRUE, _FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def use_plain_coercion(command) -> None:
    """Give every parameter of ``command`` (a Typer click command or group, and its subcommands) that plain
    Python can convert exactly a converter, so that Typer never builds (nor imports) pydantic for it."""
    try:
        from typer._coercion import BadParameter, RuntimeParam
    except ImportError:  # another Typer: it converts as it always does
        return
    plain = _plain_runtime_param_class(RuntimeParam, BadParameter)
    stack = [command]
    while stack:
        current = stack.pop()
        stack.extend(getattr(current, "commands", {}).values())
        # The --help option is made on first use and cached in _help_option (_adjust_params in app.py made it).
        for param in (*getattr(current, "params", ()), getattr(current, "_help_option", None)):
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or param is None or getattr(param, "_runtime_param", False) is not None:
                continue
            convert = _converter(descriptor)
            if convert is not None:
                param._runtime_param = plain(
                    parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, convert=convert
                )


def _plain_runtime_param_class(runtime_param: type, bad_parameter: type):
    @dataclass(frozen=True)
    class PlainRuntimeParam(runtime_param):
        """Typer's runtime-conversion contract, fulfilled by a plain function (lists converted item by item)."""

        convert: Callable[[Any], Any] = None

        def _coerce_value(self, value: Any, param, ctx) -> Any:
            try:
                if isinstance(value, (list, tuple)):
                    return [self.convert(item) for item in value]
                return self.convert(value)
            except _Invalid as exc:
                raise bad_parameter(str(exc), ctx=ctx, param=param) from None

    return PlainRuntimeParam


class _Invalid(ValueError):
    pass


def _converter(descriptor) -> Callable[[Any], Any] | None:
    """A plain converter for this parameter, or None when Typer's own must be kept."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or getattr(info, "parser", None) is not None:
        return None
    if getattr(info, "click_type", None) is not None or getattr(info, "clamp", False):
        return None
    if any(getattr(info, flag, False) for flag in ("exists", "writable", "resolve_path", "allow_dash")):
        return None
    if getattr(info, "path_type", None) is not None or not getattr(info, "file_okay", True) or not getattr(info, "dir_okay", True):
        return None
    annotation = descriptor.annotation
    if typing.get_origin(annotation) is typing.Union:
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            return None
        annotation = options[0]
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation) or (None,)
    if annotation is str:
        return _to_str
    if annotation is bool:
        return _to_bool
    if annotation is Path:
        readable = getattr(info, "readable", True)
        return lambda value: _to_path(value, readable)
    if annotation in (int, float):
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        return lambda value: _to_number(value, annotation, low, high)
    return None


def _to_str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _Invalid(f"{value!r} is not a valid boolean.")


def _to_path(value: Any, readable: bool) -> Path:
    path = value if isinstance(value, Path) else Path(os.fsdecode(value))
    # What Typer checks for a path without flags: an existing path it is asked to read must be readable.
    if readable and os.path.exists(path) and not os.access(path, os.R_OK):
        raise _Invalid(f"Path {str(value)!r} is not readable.")
    return path


def _to_number(value: Any, kind: type, low, high):
    if isinstance(value, bool):
        raise _Invalid(f"{value!r} is not a valid {_NUMBER_WORDS[kind]}.")
    try:
        number = kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _Invalid(f"{value!r} is not a valid {_NUMBER_WORDS[kind]}.") from None
    if kind is int and isinstance(value, float) and value != number:
        raise _Invalid(f"{value!r} is not a valid integer.")
    if low is not None and number < low:
        raise _Invalid(f"{value} is smaller than the minimum {low}.")
    if high is not None and number > high:
        raise _Invalid(f"{value} is larger than the maximum {high}.")
    return number
