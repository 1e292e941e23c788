"""The REQUEST authorizer's answer as API Gateway reads it: does its IAM policy allow the call?"""

from __future__ import annotations

import re
from typing import Any


def _arn_pattern(resource: str) -> re.Pattern[str]:
    """An IAM resource pattern (``*`` and ``?`` wildcards) as a regular expression."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource)
    return re.compile("".join(parts), re.DOTALL)


def policy_allows(policy: Any, method_arn: str) -> bool:
    """Whether an authorizer's IAM policy document allows ``execute-api:Invoke`` on ``method_arn``.

    An explicit Deny wins; otherwise an Allow is needed (IAM's evaluation).
    A malformed document raises ``ValueError``.
    """
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), list):
        raise ValueError("policyDocument without a Statement list")
    allowed = False
    for statement in policy["Statement"]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_arn_pattern(a).fullmatch("execute-api:Invoke") for a in actions):
            continue
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_arn_pattern(r).fullmatch(method_arn) for r in resources):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return False
        if effect == "Allow":
            allowed = True
    return allowed


__all__ = ["policy_allows"]
