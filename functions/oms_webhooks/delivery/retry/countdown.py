"""Retry countdown policies: a subscription's schedule as data plus pure functions.

DESIGN §3: ``retry_countdown_config`` is ``{"choice": C, "kwargs": {...}}``
(default ``{"choice": "exponential", "kwargs": {"base": 2}}``) and
``max_retries`` is 0-50 (default 18). For retry number ``n`` (0 for the first
retry) the built-in choices give:

- ``fixed`` {seconds} → seconds
- ``linear`` {base, limit?} → min(base·n, limit)
- ``exponential`` {base, factor=1, limit?} → min(base^n·factor, limit)
- ``random`` {min_value < max_value} → uniform integer in [min_value, max_value]

Every kwarg is an integer ≥ 0 (booleans are not integers), ``factor`` ≥ 1,
and at most :data:`MAX_INT`. Whatever the formula gives, a retry never comes
sooner than :data:`MIN_COUNTDOWN_SECONDS` (1 s) after the attempt before it:
:func:`countdown_for` raises a smaller countdown (0 from ``fixed`` 0, ``linear``
at n = 0, ``exponential`` base 0) to 1 s, and the worst case counts it so
(issue 13: ``exponential`` base 0 with 50 retries made 51 POSTs in 2.6 s).
The worst case of the whole schedule (the sum of the countdowns for
n = 0..max_retries-1, ``random`` at its max) must not exceed the delivery
retention. Countdowns are computed with clamping, so no
configuration builds a huge integer (exponential with no limit and 50 retries
is a clean :class:`CountdownConfigError`).

The shape is validated by pydantic: a discriminated union on ``choice``
whose branches are built from each policy's ``fields`` (strict integers with
their bounds), so the OpenAPI document gets the same schema
(:func:`config_json_schema`); pydantic's errors are reworded to name the
field path and the reason. More choices are added with :func:`register_policy`
and a :class:`CountdownPolicy` subclass that declares its kwargs in ``fields``.
Nothing here touches AWS; the dispatcher calls :func:`countdown_for`.
"""

from __future__ import annotations

import functools
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import ErrorDetails

from oms_webhooks.errors import ValidationFailed

CONFIG_FIELD: Final = "retry_countdown_config"
MAX_RETRIES_FIELD: Final = "max_retries"
DEFAULT_COUNTDOWN_CONFIG: Final[dict[str, Any]] = {"choice": "exponential", "kwargs": {"base": 2}}
DEFAULT_MAX_RETRIES: Final = 18
MAX_RETRIES_LIMIT: Final = 50
DEFAULT_RETENTION_SECONDS: Final = 30 * 86_400
#: Largest value of any kwarg and of any countdown (fits a signed 64-bit integer).
MAX_INT: Final = 2**63 - 1
#: The shortest countdown, in seconds: no schedule retries faster than once a second.
MIN_COUNTDOWN_SECONDS: Final = 1

_rng: Final = random.Random()  # noqa: S311 - retry jitter, not cryptography


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


@dataclass(frozen=True)
class IntField:
    """One integer kwarg of a policy: required or with a default, and its minimum."""

    required: bool = True
    default: int | None = None
    minimum: int = 0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


class CountdownPolicy(ABC):
    """A retry countdown policy: validated integer kwargs and a pure countdown function.

    Subclasses declare ``fields`` (kwarg name → :class:`IntField`), implement
    :meth:`countdown`, and may override :meth:`worst_case` (when countdowns
    are random) and :meth:`check` (rules between kwargs). Instances are built
    by :func:`parse_countdown_config`; ``params`` holds every kwarg that was
    given or has a default.
    """

    fields: ClassVar[Mapping[str, IntField]] = {}

    def __init__(self, choice: str, params: Mapping[str, int]) -> None:
        self.choice = choice
        self.params = dict(params)

    @classmethod
    def check(cls, params: Mapping[str, int]) -> dict[str, list[str]]:
        """Errors between kwargs (kwarg name → messages); none by default."""
        return {}

    @abstractmethod
    def countdown(self, n: int, rng: random.Random | None = None) -> int:
        """Seconds to wait before retry ``n`` (0-based), clamped to :data:`MAX_INT`."""

    def worst_case(self, n: int) -> int:
        """The longest countdown retry ``n`` can get (the countdown itself unless random)."""
        return self.countdown(n)

    def as_config(self) -> dict[str, Any]:
        """The normalised config: ``{"choice", "kwargs"}`` with defaults filled in."""
        return {"choice": self.choice, "kwargs": dict(self.params)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.choice!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CountdownPolicy) and self.as_config() == other.as_config()

    def __hash__(self) -> int:
        return hash((self.choice, tuple(sorted(self.params.items()))))


def _capped_product(start: int, multiplier: int, times: int, cap: int) -> int:
    """``min(start · multiplier^times, cap)`` without building numbers much larger than cap."""
    value = min(start, cap)
    for _ in range(times):
        if value == 0 or multiplier == 1:
            break
        value *= multiplier
        if value >= cap:
            return cap
    return min(value, cap)


class FixedPolicy(CountdownPolicy):
    """``fixed`` {seconds}: every retry waits ``seconds``."""

    fields: ClassVar[Mapping[str, IntField]] = {"seconds": IntField()}

    def countdown(self, n: int, rng: random.Random | None = None) -> int:
        _check_n(n)
        return self.params["seconds"]


class LinearPolicy(CountdownPolicy):
    """``linear`` {base, limit?}: retry n waits min(base·n, limit)."""

    fields: ClassVar[Mapping[str, IntField]] = {
        "base": IntField(),
        "limit": IntField(required=False),
    }

    def countdown(self, n: int, rng: random.Random | None = None) -> int:
        _check_n(n)
        return min(self.params["base"] * n, self.params.get("limit", MAX_INT), MAX_INT)


class ExponentialPolicy(CountdownPolicy):
    """``exponential`` {base, factor=1, limit?}: retry n waits min(base^n·factor, limit)."""

    fields: ClassVar[Mapping[str, IntField]] = {
        "base": IntField(),
        "factor": IntField(required=False, default=1, minimum=1),
        "limit": IntField(required=False),
    }

    def countdown(self, n: int, rng: random.Random | None = None) -> int:
        _check_n(n)
        cap = self.params.get("limit", MAX_INT)
        return _capped_product(self.params["factor"], self.params["base"], n, cap)


class RandomPolicy(CountdownPolicy):
    """``random`` {min_value, max_value}: retry n waits a uniform integer in [min, max]."""

    fields: ClassVar[Mapping[str, IntField]] = {
        "min_value": IntField(),
        "max_value": IntField(),
    }

    @classmethod
    def check(cls, params: Mapping[str, int]) -> dict[str, list[str]]:
        if params["min_value"] >= params["max_value"]:
            return {"min_value": ["must be less than max_value"]}
        return {}

    def countdown(self, n: int, rng: random.Random | None = None) -> int:
        _check_n(n)
        return (rng or _rng).randint(self.params["min_value"], self.params["max_value"])

    def worst_case(self, n: int) -> int:
        _check_n(n)
        return self.params["max_value"]


_POLICIES: dict[str, type[CountdownPolicy]] = {}


def register_policy(name: str, cls: type[CountdownPolicy], *, replace: bool = False) -> None:
    """Make ``cls`` available as ``{"choice": name}``.

    Raises ``TypeError`` if ``cls`` is not a :class:`CountdownPolicy` subclass
    and ``ValueError`` if ``name`` is empty or already taken (unless
    ``replace``).
    """
    if not (isinstance(cls, type) and issubclass(cls, CountdownPolicy)):
        raise TypeError(f"{cls!r} is not a CountdownPolicy subclass")
    if not isinstance(name, str) or not name:
        raise ValueError("a policy name must be a non-empty string")
    if name in _POLICIES and not replace:
        raise ValueError(f"countdown policy {name!r} is already registered")
    _POLICIES[name] = cls
    _config_adapter.cache_clear()


def registered_policies() -> dict[str, type[CountdownPolicy]]:
    """A copy of the registry: choice name → policy class."""
    return dict(_POLICIES)


def _check_n(n: int) -> None:
    if not _is_int(n) or n < 0:
        raise ValueError(f"retry number must be an integer >= 0, got {n!r}")


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


@functools.cache
def _config_adapter() -> TypeAdapter[Any]:
    """The discriminated union on ``choice`` of every registered policy (built on first use).

    Rebuilt after :func:`register_policy`; built lazily so that importing this
    module costs nothing at a cold start.
    """
    models = tuple(_config_model(choice, cls) for choice, cls in sorted(_POLICIES.items()))
    union = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 - built at run time
    tagged: Any = Annotated[union, Field(discriminator="choice")]
    return TypeAdapter(tagged)


def config_json_schema() -> dict[str, Any]:
    """JSON Schema of ``retry_countdown_config``: one object schema per choice, inlined.

    For the OpenAPI document (no ``$defs``: the document keeps its own
    components); ``choice`` is a ``const`` in each branch of the ``oneOf``.
    """
    schema = _config_adapter().json_schema()
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
    cls = _POLICIES.get(str(loc[0])) if loc else None
    name = str(loc[-1]) if loc else ""
    if not loc:
        if kind == "union_tag_not_found":
            return f"{CONFIG_FIELD}.choice", "this field is required"
        if kind == "union_tag_invalid" and raw is not None:
            choice = raw.get("choice")
            shown = repr(choice) if isinstance(choice, str) else _type_name(choice)
            expected = ", ".join(sorted(_POLICIES))
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
        model = _config_adapter().validate_python(raw)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        given = raw if isinstance(raw, Mapping) else None
        for error in exc.errors():
            path, message = _message(error, given)
            errors.setdefault(path, []).append(message)
        raise CountdownConfigError(errors) from None
    cls = _POLICIES[model.choice]
    params = _params(cls, model.kwargs)
    checked = cls.check(params)
    if checked:
        raise CountdownConfigError(
            {f"{CONFIG_FIELD}.kwargs.{name}": messages for name, messages in checked.items()}
        )
    return cls(model.choice, params)


register_policy("fixed", FixedPolicy)
register_policy("linear", LinearPolicy)
register_policy("exponential", ExponentialPolicy)
register_policy("random", RandomPolicy)


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
    total = 0
    for n in range(retries):
        total += max(MIN_COUNTDOWN_SECONDS, policy.worst_case(n))
        if total > cap:
            break
    return total


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


def _saved_policy(config: object) -> CountdownPolicy | None:
    """The policy of a config as :func:`validate_schedule` saved it, without pydantic.

    The dispatcher reads configs that were validated when they were saved (the
    worker never validates input), so it does not build the validator (tens of
    ms once per process). None when ``config`` does not have a saved config's
    shape (a known choice, integer kwargs it declares, the required ones there);
    the caller then validates it fully.
    """
    if not isinstance(config, Mapping) or set(config) != {"choice", "kwargs"}:
        return None
    choice, kwargs = config["choice"], config["kwargs"]
    cls = _POLICIES.get(choice) if isinstance(choice, str) else None
    if cls is None or not isinstance(kwargs, Mapping) or not set(kwargs) <= set(cls.fields):
        return None
    params = {name: spec.default for name, spec in cls.fields.items() if spec.default is not None}
    params.update(kwargs)
    if not all(_is_int(value) for value in params.values()) or any(
        spec.required and name not in params for name, spec in cls.fields.items()
    ):
        return None
    return cls(choice, params)


def countdown_for(config: object, n: int, rng: random.Random | None = None) -> int:
    """Seconds to wait before retry ``n`` (0 for the first retry) under ``config``.

    The policy's countdown, raised to :data:`MIN_COUNTDOWN_SECONDS` (1 s).
    ``config`` is a stored config (validated when it was saved, so not again:
    see :func:`_saved_policy`), or a :class:`CountdownPolicy`; ``rng`` drives
    ``random`` (default: a module-level generator). Raises
    :class:`CountdownConfigError` for a config that is not a saved one's shape
    and ``ValueError`` for a negative or non-integer ``n``.
    """
    policy = _saved_policy(config) if not isinstance(config, CountdownPolicy) else config
    return max(MIN_COUNTDOWN_SECONDS, (policy or _policy_of(config)).countdown(n, rng))
