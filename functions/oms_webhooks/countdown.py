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

More choices are added with :func:`register_policy` and a
:class:`CountdownPolicy` subclass that declares its kwargs in ``fields``.
Nothing here touches AWS; the dispatcher calls :func:`countdown_for`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

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


def registered_policies() -> dict[str, type[CountdownPolicy]]:
    """A copy of the registry: choice name → policy class."""
    return dict(_POLICIES)


register_policy("fixed", FixedPolicy)
register_policy("linear", LinearPolicy)
register_policy("exponential", ExponentialPolicy)
register_policy("random", RandomPolicy)


def _check_n(n: int) -> None:
    if not _is_int(n) or n < 0:
        raise ValueError(f"retry number must be an integer >= 0, got {n!r}")


def _parse_kwargs(
    cls: type[CountdownPolicy], raw: Mapping[Any, Any], path: str
) -> tuple[dict[str, int], dict[str, list[str]]]:
    params: dict[str, int] = {}
    errors: dict[str, list[str]] = {}
    known = ", ".join(cls.fields) or "none"
    for key in raw:
        if not isinstance(key, str) or key not in cls.fields:
            errors[f"{path}.{key}"] = [f"unknown field; expected one of: {known}"]
    for name, spec in cls.fields.items():
        value = raw.get(name)
        if value is None:
            if spec.required:
                errors[f"{path}.{name}"] = ["this field is required"]
            elif spec.default is not None:
                params[name] = spec.default
        elif not _is_int(value):
            errors[f"{path}.{name}"] = [f"must be an integer, not {_type_name(value)}"]
        elif not spec.minimum <= value <= MAX_INT:
            errors[f"{path}.{name}"] = [f"must be an integer from {spec.minimum} to {MAX_INT}"]
        else:
            params[name] = value
    if not errors:
        for name, messages in cls.check(params).items():
            errors[f"{path}.{name}"] = messages
    return params, errors


def parse_countdown_config(raw: object) -> CountdownPolicy:
    """Validate a ``retry_countdown_config`` value and build its policy.

    ``raw`` is the JSON value; None means the default config. ``kwargs`` may
    be omitted (then every required kwarg is reported missing) and an
    optional kwarg may be null (= not given). Raises
    :class:`CountdownConfigError` naming each bad field (all at once).
    """
    if raw is None:
        raw = DEFAULT_COUNTDOWN_CONFIG
    path = CONFIG_FIELD
    if not isinstance(raw, Mapping):
        raise CountdownConfigError(
            {
                path: [
                    f'must be an object {{"choice": ..., "kwargs": {{...}}}}, not {_type_name(raw)}'
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    for key in raw:
        if key not in ("choice", "kwargs"):
            errors[f"{path}.{key}"] = ["unknown field; expected choice and kwargs"]
    choice = raw.get("choice")
    kwargs = raw.get("kwargs", {})
    cls: type[CountdownPolicy] | None = None
    params: dict[str, int] = {}
    if choice is None:
        errors[f"{path}.choice"] = ["this field is required"]
    elif not isinstance(choice, str) or choice not in _POLICIES:
        shown = repr(choice) if isinstance(choice, str) else _type_name(choice)
        errors[f"{path}.choice"] = [
            f"unknown choice {shown}; expected one of: {', '.join(sorted(_POLICIES))}"
        ]
    else:
        cls = _POLICIES[choice]
    if not isinstance(kwargs, Mapping):
        errors[f"{path}.kwargs"] = [f"must be an object, not {_type_name(kwargs)}"]
    elif cls is not None:
        params, kwarg_errors = _parse_kwargs(cls, kwargs, f"{path}.kwargs")
        errors.update(kwarg_errors)
    if errors or cls is None or not isinstance(choice, str):
        raise CountdownConfigError(errors)
    return cls(choice, params)


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


def countdown_for(config: object, n: int, rng: random.Random | None = None) -> int:
    """Seconds to wait before retry ``n`` (0 for the first retry) under ``config``.

    The policy's countdown, raised to :data:`MIN_COUNTDOWN_SECONDS` (1 s).
    ``config`` is a stored (validated) config, or a :class:`CountdownPolicy`;
    ``rng`` drives ``random`` (default: a module-level generator). Raises
    :class:`CountdownConfigError` for a bad config and ``ValueError`` for a
    negative or non-integer ``n``.
    """
    return max(MIN_COUNTDOWN_SECONDS, _policy_of(config).countdown(n, rng))
