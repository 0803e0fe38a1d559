"""A DAG run's conf, checked before a step runs: it is untrusted input (anyone allowed to
trigger the DAG writes it), and each value must reach Metaflow as an environment variable.

What cannot reach a step is refused with one line naming the key and the limit, instead of the
step failing inside Metaflow with an OS error (``embedded null byte``, ``Argument list too
long``); a key that is no Parameter (a typo such as ``cout`` for ``count``) is refused rather
than silently ignored, unless the ``unknown_run_conf`` setting says ``warn``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metaflow_airflow.manifest.base import check_json_depth
from metaflow_airflow.manifest.models import ParameterSpec
from metaflow_airflow.runtime.invocation import encode_parameter

# Linux refuses a single environment string longer than 128 KiB (MAX_ARG_STRLEN) when it
# starts a process: the step's own process.
MAX_VALUE_BYTES = 128 * 1024 - 1024


def run_conf_problems(
    parameters: Sequence[ParameterSpec], conf: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """(values that cannot reach the step, keys that are no Parameter), each a phrase."""
    known = {spec.name: spec for spec in parameters}
    unknown = [
        f"{key!r} is not a parameter of this flow "
        f"(its parameters: {', '.join(sorted(known)) or 'none'})"
        for key in sorted(conf, key=str)
        if key not in known
    ]
    refused = []
    for name, spec in sorted(known.items()):
        if name in conf and not (conf[name] is None and not spec.required):  # None: default
            problem = _value_problem(spec, conf[name])
            if problem:
                refused.append(f"parameter {name!r}: {problem}")
    return refused, unknown


# The parameter types of a manifest in words, as a message names what was expected.
_KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "json": "a JSON value",
}


def _value_problem(spec: ParameterSpec, value: Any) -> str | None:
    try:
        check_json_depth(value)
    except ValueError as exc:
        return f"is {exc} (Airflow walks such values recursively)"
    try:
        text = encode_parameter(spec, value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return f"expects {_KINDS.get(spec.type, spec.type)}, got {shown} ({type(value).__name__})"
    if "\x00" in text:
        return "contains a NUL character, which no environment variable can hold"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate)"
    if size > MAX_VALUE_BYTES:
        return f"is {size} bytes; a parameter value may have at most {MAX_VALUE_BYTES}"
    return None
