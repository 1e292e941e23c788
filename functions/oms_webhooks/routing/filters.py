"""Payload filters: a subscription's JMESPath expression over the event's payload.

DESIGN §11. A subscription may carry ``filter``, a JMESPath expression
(https://jmespath.org, the ``jmespath`` package) evaluated on the event's
payload (the OMS object, i.e. the EventBridge ``detail``). The router creates
a delivery only when the result is *truthy in JMESPath's sense*: ``null``,
``false``, ``""``, ``[]`` and ``{}`` are false, everything else is true,
**including** ``0`` (Python's ``bool()`` disagrees; it is not used here).

Public surface:

* :func:`validate` — the API's check (create, PUT, PATCH): at most
  :data:`MAX_FILTER_CHARS` characters, compiles, at most
  :data:`MAX_FILTER_NODES` nodes once parsed, only known functions with the
  right number of arguments. Raises :class:`InvalidFilter` with the parser's
  message (a 400 naming ``filter``).
* :func:`evaluate` — the router's and recover's check on one payload; never
  raises: any error (JMESPath's own, Python's ``TypeError`` from comparing a
  string with a number, ``OverflowError`` from ``ceil(`1e400`)``, the
  evaluation budget...) is a :class:`FilterOutcome` with ``matched=False``
  and the ``error`` to log with the subscription id and count.
* :func:`matches` — ``evaluate(...).matched``.

Compiled expressions are cached per expression text (:func:`compile_filter`,
an LRU of :data:`COMPILE_CACHE_SIZE`), so a subscription's filter is parsed
once per process, not once per event.

**Evaluation budget.** A filter is a small program a partner runs inside the
router, on every event of its type, in the same invocation as everybody
else's deliveries. A few nodes can ask for a lot of work (each stage of
``[@,@][] | [@,@][] | ...`` doubles a list; ``to_string(@)`` serialises the
whole payload), so one evaluation may take at most
:data:`MAX_EVALUATION_STEPS` steps: one per node visited (a projection
visits its right side once per element), :data:`STEPS_PER_FUNCTION_CALL`
per function call, plus the size of what functions, flattens and slices
take and make (one per list element or object member, one per
:data:`CHARS_PER_STEP` characters of a string). Past it the evaluation
stops: no match, like any other error. The budget is counted, not timed, so
the same filter on the same payload always gives the same answer however
loaded the machine. ``bench/filter_cost.py`` measures what the worst case
costs (DESIGN §11's goal: ≤ 5 ms on a 256 KB payload).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.functions import Functions
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

__all__ = [
    "CHARS_PER_STEP",
    "MAX_EVALUATION_STEPS",
    "MAX_FILTER_CHARS",
    "MAX_FILTER_NODES",
    "MAX_TENANT_STEPS_PER_EVENT",
    "STEPS_PER_FUNCTION_CALL",
    "FilterOutcome",
    "InvalidFilter",
    "compile_filter",
    "count_nodes",
    "evaluate",
    "is_truthy",
    "matches",
    "validate",
]

#: Longest filter, in characters (DESIGN §11).
MAX_FILTER_CHARS: Final = 1024
#: Most nodes of a filter's parsed tree (DESIGN §11).
MAX_FILTER_NODES: Final = 64
#: Most steps one evaluation may take (see the module docstring); ~3 ms here.
MAX_EVALUATION_STEPS: Final = 10_000
#: Most steps all of one tenant's filters may take on one event (ten full
#: evaluations), so that a tenant's many subscriptions cannot make the
#: router slow for everybody (DESIGN §9); the router enforces it.
MAX_TENANT_STEPS_PER_EVENT: Final = 10 * MAX_EVALUATION_STEPS
#: Characters of a string taken or made by a function that count as one step.
CHARS_PER_STEP: Final = 32
#: Steps a function call costs besides its arguments (measured: a call of the
#: ``jmespath`` package's functions, with its type checks, costs ~8 node visits).
STEPS_PER_FUNCTION_CALL: Final = 8
#: Compiled filters kept per process (distinct expression texts).
COMPILE_CACHE_SIZE: Final = 1024
#: Longest error text an outcome carries (it is logged).
_MAX_ERROR_CHARS: Final = 200
#: Functions that serialise their whole argument, nested values included.
_SERIALISING_FUNCTIONS: Final = frozenset({"to_string"})

_FUNCTIONS: Final[dict[str, Any]] = Functions.FUNCTION_TABLE


class InvalidFilter(ValueError):
    """A filter the API refuses (400 naming ``filter``); the message says why."""


class BudgetExceeded(Exception):
    """An evaluation went past :data:`MAX_EVALUATION_STEPS`."""


@dataclass(frozen=True)
class FilterOutcome:
    """The result of a filter on one payload.

    Attributes:
        matched: whether a delivery is to be created.
        error: why the evaluation failed (then ``matched`` is False), without
            any payload value, ≤ 200 characters; None when it ran.
        steps: the steps it took (past the budget when the budget stopped
            it); not part of equality.
    """

    matched: bool
    error: str | None = None
    steps: int = field(default=0, compare=False)


def count_nodes(node: dict[str, Any]) -> int:
    """Nodes of a parsed JMESPath tree (``jmespath.compile(e).parsed``).

    Each node is a dict ``{"type", "children", "value"?}``; the children of a
    ``slice`` are its integers (not nodes) and literal values are one node.
    """
    total = 0
    stack = [node]
    while stack:
        current = stack.pop()
        total += 1
        stack.extend(child for child in current.get("children", ()) if isinstance(child, dict))
    return total


def _check_functions(node: dict[str, Any]) -> None:
    """Unknown functions and wrong argument counts, found before any event is seen.

    The ``jmespath`` package only finds them while evaluating, which would
    make such a filter silently match nothing, ever.
    """
    stack = [node]
    while stack:
        current = stack.pop()
        if current["type"] == "function_expression":
            name = current["value"]
            spec = _FUNCTIONS.get(name)
            if spec is None:
                raise jmespath_errors.UnknownFunctionError(f"Unknown function: {name}()")
            signature = spec["signature"]
            given = len(current["children"])
            if signature and signature[-1].get("variadic"):
                if given < len(signature):
                    raise jmespath_errors.VariadictArityError(len(signature), given, name)
            elif given != len(signature):
                raise jmespath_errors.ArityError(len(signature), given, name)
        stack.extend(child for child in current.get("children", ()) if isinstance(child, dict))


@lru_cache(maxsize=COMPILE_CACHE_SIZE)
def compile_filter(expression: str) -> ParsedResult:
    """The compiled ``expression`` (cached per text).

    Raises:
        jmespath.exceptions.JMESPathError: it does not compile.
        RecursionError: it nests too deeply for the parser.
    """
    return jmespath.compile(expression)


def validate(expression: str) -> str:
    """Check a filter as the API receives it; return it unchanged.

    Args:
        expression: the JMESPath text.

    Raises:
        InvalidFilter: longer than :data:`MAX_FILTER_CHARS` characters, not
            Unicode text (a lone surrogate), empty, does not compile (the
            parser's message, with the column), more than
            :data:`MAX_FILTER_NODES` nodes, an unknown function or a wrong
            number of arguments. Source: DESIGN §11.
    """
    if len(expression) > MAX_FILTER_CHARS:
        raise InvalidFilter(
            f"at most {MAX_FILTER_CHARS} characters; this filter has {len(expression)}"
        )
    try:
        expression.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFilter("must be Unicode text (no lone surrogate like \\ud800)") from None
    try:
        parsed = compile_filter(expression).parsed
        _check_functions(parsed)
    except jmespath_errors.JMESPathError as exc:
        raise InvalidFilter(str(exc)) from None
    except RecursionError:
        raise InvalidFilter("nested too deeply for the JMESPath parser") from None
    nodes = count_nodes(parsed)
    if nodes > MAX_FILTER_NODES:
        raise InvalidFilter(
            f"at most {MAX_FILTER_NODES} nodes once parsed; this filter has {nodes}"
        )
    return expression


def is_truthy(value: Any) -> bool:
    """JMESPath truthiness: false for ``null``, ``false``, ``""``, ``[]``, ``{}``; else true.

    ``0`` and ``0.0`` are true (JMESPath specification, "Truthiness").
    """
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def _size(value: Any) -> int:
    """Steps charged for a value a function, flatten or slice takes or makes."""
    if isinstance(value, list | dict):
        return len(value)
    if isinstance(value, str):
        return len(value) // CHARS_PER_STEP
    return 0


class _BudgetedInterpreter(TreeInterpreter):  # type: ignore[misc]
    """JMESPath's tree interpreter, counting steps against a budget."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self._left = budget

    def reset(self, budget: int) -> None:
        """Start a new evaluation with ``budget`` steps."""
        self._left = budget

    def used(self, budget: int) -> int:
        """Steps taken since :meth:`reset` with ``budget``."""
        return budget - self._left

    def _charge(self, steps: int) -> None:
        self._left -= steps
        if self._left < 0:
            raise BudgetExceeded

    def visit(self, node: dict[str, Any], value: Any) -> Any:
        # Visitor.visit inlined (this runs once per node per element: keep it lean).
        self._left -= 1
        if self._left < 0:
            raise BudgetExceeded
        node_type = node["type"]
        method = self._method_cache.get(node_type)
        if method is None:
            method = getattr(self, f"visit_{node_type}", self.default_visit)
            self._method_cache[node_type] = method
        return method(node, value)

    def visit_function_expression(self, node: dict[str, Any], value: Any) -> Any:
        resolved = [self.visit(child, value) for child in node["children"]]
        self._charge(STEPS_PER_FUNCTION_CALL + sum(_size(arg) for arg in resolved))
        if node["value"] in _SERIALISING_FUNCTIONS:
            # Charged for everything it will write (keys, values, nested
            # ones), before writing it, instead of for its result: the
            # argument may hold one large value many times over (``to_string([@,
            # @, ...])``), and serialising it first would cost what the budget
            # is there to refuse.
            for arg in resolved:
                self._charge_deep(arg)
        result = self._functions.call_function(node["value"], resolved)
        if node["value"] not in _SERIALISING_FUNCTIONS:
            self._charge(_size(result))
        return result

    def _charge_deep(self, value: Any) -> None:
        """Charge the size of every value inside ``value``, stopping once over the budget."""
        stack = [value]
        while stack:
            current = stack.pop()
            self._charge(_size(current))
            if isinstance(current, dict):
                stack.extend(current.keys())
                stack.extend(current.values())
            elif isinstance(current, list):
                stack.extend(current)

    def visit_flatten(self, node: dict[str, Any], value: Any) -> Any:
        result = super().visit_flatten(node, value)
        self._charge(_size(result))
        return result

    def visit_slice(self, node: dict[str, Any], value: Any) -> Any:
        result = super().visit_slice(node, value)
        self._charge(_size(result))
        return result


_local = threading.local()


def _interpreter() -> _BudgetedInterpreter:
    """This thread's interpreter (its method cache kept between evaluations)."""
    interpreter: _BudgetedInterpreter | None = getattr(_local, "interpreter", None)
    if interpreter is None:
        interpreter = _local.interpreter = _BudgetedInterpreter(MAX_EVALUATION_STEPS)
    return interpreter


def _describe(exc: BaseException, budget: int) -> str:
    """An error's text for the log, without payload values."""
    if isinstance(exc, BudgetExceeded):
        return f"evaluation budget exceeded ({budget} steps; see README)"
    if isinstance(exc, jmespath_errors.JMESPathTypeError):
        # Its own message quotes the offending value, which is payload data.
        return (
            f"JMESPathTypeError: invalid type for {exc.function_name}(): "
            f"got {exc.actual_type}, expected one of {exc.expected_types}"
        )[:_MAX_ERROR_CHARS]
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]


def evaluate(
    expression: str | None, payload: Any, *, budget: int = MAX_EVALUATION_STEPS
) -> FilterOutcome:
    """Run a subscription's filter on an event's payload; never raises.

    Args:
        expression: the subscription's ``filter`` (None or ``""``: no filter,
            every event matches).
        payload: the event's payload (the decoded OMS object; not modified).
        budget: the most steps it may take (at most
            :data:`MAX_EVALUATION_STEPS`; the router gives less when the
            tenant's other filters used most of
            :data:`MAX_TENANT_STEPS_PER_EVENT`).

    Returns:
        ``FilterOutcome(matched=True)`` when the result is truthy in
        JMESPath's sense (:func:`is_truthy`); ``matched=False`` when it is
        not, and also, with ``error`` set, when the evaluation failed for any
        reason (DESIGN §11: an error is no match). Log such an error with the
        subscription id and count it; never fail the event for it.
    """
    if not expression:
        return FilterOutcome(True)
    budget = min(budget, MAX_EVALUATION_STEPS)
    interpreter = _interpreter()
    interpreter.reset(budget)
    try:
        result = interpreter.visit(compile_filter(expression).parsed, payload)
        return FilterOutcome(is_truthy(result), steps=interpreter.used(budget))
    except Exception as exc:  # DESIGN §11: any error while evaluating is no match
        return FilterOutcome(False, _describe(exc, budget), interpreter.used(budget))


def matches(expression: str | None, payload: Any) -> bool:
    """Whether ``payload`` passes ``expression`` (no filter: True); never raises.

    Errors count as no match; use :func:`evaluate` to see (and log) them.

    >>> matches("stock_location.id == `12`", {"stock_location": {"id": 12}})
    True
    >>> matches("items", {"items": []}), matches("count", {"count": 0})
    (False, True)
    """
    return evaluate(expression, payload).matched
