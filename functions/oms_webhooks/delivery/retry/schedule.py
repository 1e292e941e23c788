"""A subscription's retry schedule as the API takes it: validation and error wording.

DESIGN §3: ``retry_countdown_config`` is ``{"choice": C, "kwargs": {...}}``
(default ``{"choice": "exponential", "kwargs": {"base": 2}}``) and
``max_retries`` is 0-50 (default 18). The choices and their formulas are
:mod:`oms_webhooks.delivery.retry.policies`.

Every kwarg is an integer ≥ 0 (booleans are not integers), ``factor`` ≥ 1,
and at most :data:`~oms_webhooks.delivery.retry.policies.MAX_INT`. The worst
case of the whole schedule (the sum of the countdowns for n = 0..max_retries-1,
``random`` at its max, each at least 1 s) must not exceed the delivery
retention (exponential with no limit and 50 retries is a clean
:class:`CountdownConfigError`).

The shape is validated by pydantic: a discriminated union on ``choice``
whose branches are built from each registered policy's ``fields`` (strict
integers with their bounds), so the OpenAPI document gets the same schema
(:func:`config_json_schema`); pydantic's errors are reworded to name the
field path and the reason. Nothing here touches AWS.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import ErrorDetails

from oms_webhooks.delivery.retry.policies import (
    MAX_INT,
    CountdownPolicy,
    registered_policies,
    schedule_total,
)
from oms_webhooks.errors import ValidationFailed

CONFIG_FIELD: Final = "retry_countdown_config"
MAX_RETRIES_FIELD: Final = "max_retries"
DEFAULT_COUNTDOWN_CONFIG: Final[dict[str, Any]] = {"choice": "exponential", "kwargs": {"base": 2}}
DEFAULT_MAX_RETRIES: Final = 18
MAX_RETRIES_LIMIT: Final = 50
DEFAULT_RETENTION_SECONDS: Final = 30 * 86_400


class CountdownConfigError(ValidationFailed, ValueError):
    """A countdown configuration or ``max_retries`` breaks a rule of DESIGN §3.

    ``errors`` maps a field path (``"retry_countdown_config.kwargs.base"``,
    ``"max_retries"``, ...) to its messages; as a :class:`ValidationFailed`
    the API answers it with a 400 and that ``errors`` object.
    """

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        merged = {path: list(messages) for path, messages in errors.items()}
        detail = "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in merged.items())
        super().__init__(detail or "invalid retry schedule", merged)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


_STRICT: Final = ConfigDict(extra="forbid", strict=True)


def _kwargs_model(choice: str, cls: type[CountdownPolicy]) -> type[BaseModel]:
    """The pydantic model of one policy's kwargs, built from its ``fields`` declaration."""
    fields: dict[str, Any] = {}
    for name, spec in cls.fields.items():
        bounded = Annotated[int, Field(ge=spec.minimum, le=MAX_INT)]
        if spec.required:
            fields[name] = (bounded, ...)
        else:  # null means "not given": the default applies (see _params)
            fields[name] = (bounded | None, Field(default=spec.default))
    return create_model(f"{cls.__name__}Kwargs", __config__=_STRICT, **fields)


def _config_model(choice: str, cls: type[CountdownPolicy]) -> type[BaseModel]:
    """``{"choice": <choice>, "kwargs": {...}}`` for one policy (kwargs omitted = ``{}``)."""
    tag: Any = Literal[choice]
    kwargs = Field(default_factory=dict, validate_default=True)
    return create_model(
        f"{cls.__name__}Config",
        __config__=ConfigDict(extra="forbid", strict=True, title=f"{choice} countdown"),
        __doc__=(cls.__doc__ or choice).strip().splitlines()[0].replace("``", ""),
        choice=(tag, ...),
        kwargs=(_kwargs_model(choice, cls), kwargs),
    )


_Registry = tuple[tuple[str, type[CountdownPolicy]], ...]


def _registry() -> _Registry:
    """The registered policies, sorted by choice: the key of :func:`_config_adapter`."""
    return tuple(sorted(registered_policies().items()))


@functools.cache
def _config_adapter(policies: _Registry) -> TypeAdapter[Any]:
    """The discriminated union on ``choice`` of ``policies`` (built on first use).

    Keyed on the registry, so a policy registered later gets its own adapter;
    built lazily so that importing this module costs nothing at a cold start.
    """
    models = tuple(_config_model(choice, cls) for choice, cls in policies)
    union = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 - built at run time
    tagged: Any = Annotated[union, Field(discriminator="choice")]
    return TypeAdapter(tagged)


def config_json_schema() -> dict[str, Any]:
    """JSON Schema of ``retry_countdown_config``: one object schema per choice, inlined.

    For the OpenAPI document (no ``$defs``: the document keeps its own
    components); ``choice`` is a ``const`` in each branch of the ``oneOf``.
    """
    schema = _config_adapter(_registry()).json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items() if k != "discriminator"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return dict(inline(schema))


def _message(error: ErrorDetails, raw: Mapping[Any, Any] | None) -> tuple[str, str]:
    """(field path, message) of one pydantic error, in the words of DESIGN §3's fields."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    path = ".".join([CONFIG_FIELD, *(str(part) for part in loc[1:])])
    policies = registered_policies()
    cls = policies.get(str(loc[0])) if loc else None
    name = str(loc[-1]) if loc else ""
    if not loc:
        if kind == "union_tag_not_found":
            return f"{CONFIG_FIELD}.choice", "this field is required"
        if kind == "union_tag_invalid" and raw is not None:
            choice = raw.get("choice")
            shown = repr(choice) if isinstance(choice, str) else _type_name(choice)
            expected = ", ".join(sorted(policies))
            return f"{CONFIG_FIELD}.choice", f"unknown choice {shown}; expected one of: {expected}"
        shape = '{"choice": ..., "kwargs": {...}}'
        return CONFIG_FIELD, f"must be an object {shape}, not {_type_name(value)}"
    if kind in ("extra_forbidden", "invalid_key"):
        if len(loc) == 2:
            return path, "unknown field; expected choice and kwargs"
        known = ", ".join(cls.fields) if cls is not None and cls.fields else "none"
        return path, f"unknown field; expected one of: {known}"
    if kind == "model_type":
        return path, f"must be an object, not {_type_name(value)}"
    if kind == "missing" or (kind == "int_type" and value is None):
        return path, "this field is required"
    if kind == "int_type":
        return path, f"must be an integer, not {_type_name(value)}"
    spec = cls.fields.get(name) if cls is not None else None
    return path, f"must be an integer from {spec.minimum if spec else 0} to {MAX_INT}"


def _params(cls: type[CountdownPolicy], kwargs: BaseModel) -> dict[str, int]:
    """The validated kwargs with each absent or null optional kwarg at its default (if any)."""
    params: dict[str, int] = {}
    for name, spec in cls.fields.items():
        value = getattr(kwargs, name)
        value = spec.default if value is None else value
        if value is not None:
            params[name] = value
    return params


def parse_countdown_config(raw: object) -> CountdownPolicy:
    """Validate a ``retry_countdown_config`` value and build its policy.

    ``raw`` is the JSON value; None means the default config. The shape is a
    pydantic discriminated union on ``choice`` with strict integer kwargs
    (:func:`config_json_schema`); ``kwargs`` may be omitted (then every
    required kwarg is reported missing) and an optional kwarg may be null
    (= not given). Raises :class:`CountdownConfigError` naming each bad field
    (all of one choice at once).
    """
    if raw is None:
        raw = DEFAULT_COUNTDOWN_CONFIG
    try:
        model = _config_adapter(_registry()).validate_python(raw)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        given = raw if isinstance(raw, Mapping) else None
        for error in exc.errors():
            path, message = _message(error, given)
            errors.setdefault(path, []).append(message)
        raise CountdownConfigError(errors) from None
    cls = registered_policies()[model.choice]
    params = _params(cls, model.kwargs)
    checked = cls.check(params)
    if checked:
        raise CountdownConfigError(
            {f"{CONFIG_FIELD}.kwargs.{name}": messages for name, messages in checked.items()}
        )
    return cls(model.choice, params)


def parse_max_retries(raw: object) -> int:
    """Validate ``max_retries`` (an integer 0-50; None means the default 18).

    Raises :class:`CountdownConfigError` for anything else (booleans, strings
    and floats included).
    """
    if raw is None:
        return DEFAULT_MAX_RETRIES
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise CountdownConfigError(
            {MAX_RETRIES_FIELD: [f"must be an integer, not {_type_name(raw)}"]}
        )
    if not 0 <= raw <= MAX_RETRIES_LIMIT:
        raise CountdownConfigError(
            {MAX_RETRIES_FIELD: [f"must be an integer from 0 to {MAX_RETRIES_LIMIT}"]}
        )
    return raw


def _policy_of(config: object) -> CountdownPolicy:
    return config if isinstance(config, CountdownPolicy) else parse_countdown_config(config)


def worst_case_total(config: object, max_retries: object, *, cap: int) -> int:
    """The longest the whole schedule can take: sum of worst countdowns, n = 0..max_retries-1.

    Stops adding as soon as the sum exceeds ``cap``, so the result is exact
    when it is ≤ ``cap`` and merely some value > ``cap`` otherwise (never a
    huge integer). ``config`` is a raw config or a :class:`CountdownPolicy`.
    Raises :class:`CountdownConfigError` for a bad config or ``max_retries``,
    and nothing else.
    """
    errors: dict[str, list[str]] = {}
    policy: CountdownPolicy | None = None
    retries = 0
    try:
        policy = _policy_of(config)
    except CountdownConfigError as exc:
        errors.update(exc.errors)
    try:
        retries = parse_max_retries(max_retries)
    except CountdownConfigError as exc:
        errors.update(exc.errors)
    if errors or policy is None:
        raise CountdownConfigError(errors)
    return schedule_total(policy, retries, cap=cap)


def validate_schedule(
    raw_config: object, max_retries: object, *, retention_seconds: int = DEFAULT_RETENTION_SECONDS
) -> tuple[dict[str, Any], int]:
    """Validate a subscription's retry schedule against DESIGN §3.

    Returns ``(normalised config, max_retries)``: the config with defaults
    filled in (``factor=1`` for exponential), None for either input meaning
    its default. Raises :class:`CountdownConfigError` for a bad field, and
    one naming both ``max_retries`` and ``retry_countdown_config`` when the
    worst-case schedule ends after ``retention_seconds``.
    """
    policy_errors: dict[str, list[str]] = {}
    policy: CountdownPolicy | None = None
    try:
        policy = parse_countdown_config(raw_config)
    except CountdownConfigError as exc:
        policy_errors = exc.errors
    try:
        retries = parse_max_retries(max_retries)
    except CountdownConfigError as exc:
        raise CountdownConfigError({**policy_errors, **exc.errors}) from None
    if policy is None:
        raise CountdownConfigError(policy_errors)
    total = worst_case_total(policy, retries, cap=retention_seconds)
    if total > retention_seconds:
        message = (
            f"the worst case of {retries} retries with this countdown takes more than "
            f"{retention_seconds} seconds, the delivery retention; lower max_retries or "
            "add a limit to retry_countdown_config"
        )
        raise CountdownConfigError({MAX_RETRIES_FIELD: [message], CONFIG_FIELD: [message]})
    return policy.as_config(), retries
