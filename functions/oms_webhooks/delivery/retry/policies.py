"""Retry countdown policies: a subscription's schedule as data plus pure functions.

DESIGN §3: ``retry_countdown_config`` is ``{"choice": C, "kwargs": {...}}``
(default ``{"choice": "exponential", "kwargs": {"base": 2}}``). For retry
number ``n`` (0 for the first retry) the built-in choices give:

- ``fixed`` {seconds} → seconds
- ``linear`` {base, limit?} → min(base·n, limit)
- ``exponential`` {base, factor=1, limit?} → min(base^n·factor, limit)
- ``random`` {min_value < max_value} → uniform integer in [min_value, max_value]

Whatever the formula gives, a retry never comes sooner than
:data:`MIN_COUNTDOWN_SECONDS` (1 s) after the attempt before it:
:func:`countdown_for` raises a smaller countdown (0 from ``fixed`` 0, ``linear``
at n = 0, ``exponential`` base 0) to 1 s, and the worst case counts it so
(issue 13: ``exponential`` base 0 with 50 retries made 51 POSTs in 2.6 s).
Countdowns are computed with clamping at :data:`MAX_INT`, so no
configuration builds a huge integer.

A policy declares its kwargs as data (``fields``: :class:`IntField`) and
computes countdowns with pure functions; more choices are added with
:func:`register_policy`. Validating a raw config (pydantic, the error wording,
``max_retries``, the retention rule) is :mod:`oms_webhooks.delivery.retry.schedule`;
this module imports neither pydantic nor AWS. The dispatcher calls
:func:`countdown_for`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

#: Largest value of any kwarg and of any countdown (fits a signed 64-bit integer).
MAX_INT: Final = 2**63 - 1
#: The shortest countdown, in seconds: no schedule retries faster than once a second.
MIN_COUNTDOWN_SECONDS: Final = 1

_rng: Final = random.Random()  # noqa: S311 - retry jitter, not cryptography


@dataclass(frozen=True)
class IntField:
    """One integer kwarg of a policy: required or with a default, and its minimum."""

    required: bool = True
    default: int | None = None
    minimum: int = 0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class CountdownPolicy(ABC):
    """A retry countdown policy: validated integer kwargs and a pure countdown function.

    Subclasses declare ``fields`` (kwarg name → :class:`IntField`), implement
    :meth:`countdown`, and may override :meth:`worst_case` (when countdowns
    are random) and :meth:`check` (rules between kwargs). Instances are built
    by :func:`oms_webhooks.delivery.retry.schedule.parse_countdown_config`;
    ``params`` holds every kwarg that was given or has a default.
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


def _check_n(n: int) -> None:
    if not _is_int(n) or n < 0:
        raise ValueError(f"retry number must be an integer >= 0, got {n!r}")


register_policy("fixed", FixedPolicy)
register_policy("linear", LinearPolicy)
register_policy("exponential", ExponentialPolicy)
register_policy("random", RandomPolicy)


def schedule_total(policy: CountdownPolicy, retries: int, *, cap: int) -> int:
    """Sum of the worst countdowns of retries n = 0..retries-1, each at least 1 s.

    Stops adding as soon as the sum exceeds ``cap``, so the result is exact
    when it is ≤ ``cap`` and merely some value > ``cap`` otherwise (never a
    huge integer). Seconds.
    """
    total = 0
    for n in range(retries):
        total += max(MIN_COUNTDOWN_SECONDS, policy.worst_case(n))
        if total > cap:
            break
    return total


def _saved_policy(config: object) -> CountdownPolicy | None:
    """The policy of a config as ``schedule.validate_schedule`` saved it, without pydantic.

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
    :class:`oms_webhooks.delivery.retry.schedule.CountdownConfigError` for a
    config that is not a saved one's shape and ``ValueError`` for a negative or
    non-integer ``n``.
    """
    policy = _saved_policy(config) if not isinstance(config, CountdownPolicy) else config
    if policy is None:  # not a saved config's shape: validate it (pydantic, on first use only)
        from oms_webhooks.delivery.retry.schedule import parse_countdown_config

        policy = parse_countdown_config(config)
    return max(MIN_COUNTDOWN_SECONDS, policy.countdown(n, rng))
