"""Same answers, less CPU: patches to moto's server for the local stack's AWS process.

A profile of the local AWS server under ``bench/throughput.py`` (py-spy, moto
5.2.5) showed most of its CPU going to bookkeeping whose cost grows with the
queue's depth or the number of moto's services, not to the requests' work:

* **routing each request** (``DomainDispatcherApplication.get_application``,
  under one lock for all requests): ``backends.list_of_moto_modules()``
  lists moto's package directory (``os.listdir`` and ``os.path.isdir`` of
  ~150 entries) on every request, then hundreds of URL patterns are tried in
  turn. Both depend only on the host name: the directory listing is cached
  once and the host → backend answer per host.
* **SQS queue attributes**: ``SendMessage`` reads ``queue.attributes`` (for
  one FIFO flag), ``ReceiveMessage`` checks each message's retention through
  ``get_queue_attributes``, which computes every attribute three times per
  name asked; each computation walks every message of the queue three times
  (the approximate counts), reading the clock twice per message. Here the
  attributes are computed once per call, the three counts in one walk at one
  instant, the retention read directly, and the visible messages listed in
  one walk at one instant.
* **dispatching each request** (``BaseResponse.call_action``):
  ``method_names_from_class`` lists the response class's methods with
  ``inspect.getmembers`` on every request (~0.5 ms), and
  ``camelcase_to_underscores`` converts the same few names again and again
  (a dozen calls a request). The first is cached per class (classes do not
  change while the server runs), the second per string (a pure function).
* **SendMessage** reads ``queue.attributes`` only for its
  ``ContentBasedDeduplication`` flag, and the attributes include the
  approximate counts, a walk over every message of the queue: a deep
  ingress queue made each send slower. Inside ``send_message`` the counts
  are left out of that read (nothing there reads them).
* **EventBridge targets**: every ``PutEvents`` entry routed to a target
  parses the same eight JSONPath expressions of moto's default input
  template (``jsonpath_ng.ext.parse`` builds a new parser each time); the
  parsed expressions are cached by their text (they are not changed by use).

Nothing else changes: the same responses, the same SQS semantics (visibility,
delays, receive counts, redrive to the DLQ, retention). :func:`install` is
idempotent and applies to the process it runs in (the AWS server's).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Any

_installed = False
_lock = threading.Lock()


def _now_millis() -> float:
    """The current Unix time in milliseconds, as moto's ``unix_time_millis()`` reads it."""
    return time.time() * 1000.0


def install() -> None:
    """Apply the patches (module docstring) once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        _patch_routing()
        _patch_dispatch()
        _patch_sqs()
        _patch_jsonpath()
        _installed = True


def _patch_routing() -> None:
    import moto.backends as backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules

    original = DomainDispatcherApplication.get_backend_for_host
    cache: dict[str | None, Any] = {}  # the URL patterns are moto's, the same for every app

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in cache:
            cache[host] = original(self, host)
        return cache[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _patch_dispatch() -> None:
    import sys

    import moto.core.responses as responses
    import moto.core.utils as utils

    original_names = utils.method_names_from_class
    names: dict[object, tuple[str, ...]] = {}

    @functools.wraps(original_names)
    def method_names_from_class(clazz: object) -> list[str]:
        if clazz not in names:
            names[clazz] = tuple(original_names(clazz))
        return list(names[clazz])

    original_camel = utils.camelcase_to_underscores
    camel = functools.wraps(original_camel)(functools.lru_cache(maxsize=8192)(original_camel))
    # Modules imported later bind the cached ones; those already imported are patched here.
    utils.method_names_from_class = method_names_from_class
    utils.camelcase_to_underscores = camel
    responses.method_names_from_class = method_names_from_class  # type: ignore[attr-defined]
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.") or module is None:
            continue
        if getattr(module, "camelcase_to_underscores", None) is original_camel:
            module.camelcase_to_underscores = camel  # type: ignore[attr-defined]
        if getattr(module, "method_names_from_class", None) is original_names:
            module.method_names_from_class = method_names_from_class  # type: ignore[attr-defined]


def _patch_jsonpath() -> None:
    import jsonpath_ng.ext

    parse = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]
    jsonpath_ng.ext.parse = parse  # type: ignore[attr-defined]


def _patch_sqs() -> None:
    from moto.core.utils import camelcase_to_underscores
    from moto.sqs.exceptions import InvalidAttributeName
    from moto.sqs.models import Queue, SQSBackend

    counted = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    )

    def counts(queue: Any) -> dict[str, int]:
        now = _now_millis()
        available = delayed = hidden = 0
        for message in list(queue._messages):
            is_delayed = now < message.delayed_until
            is_visible = now > message.visible_at
            delayed += is_delayed
            hidden += not is_visible
            available += is_visible and not is_delayed
        return {counted[0]: available, counted[1]: delayed, counted[2]: hidden}

    sending = threading.local()

    def attributes(self: Any) -> dict[str, Any]:
        # SendMessage reads only ContentBasedDeduplication: no need to walk the queue.
        numbers = dict.fromkeys(counted, 0) if getattr(sending, "now", False) else counts(self)
        result: dict[str, Any] = {}
        for attribute in self.BASE_ATTRIBUTES:
            if attribute in numbers:
                result[attribute] = numbers[attribute]
            else:
                result[attribute] = getattr(self, camelcase_to_underscores(attribute))
        if self.fifo_queue:
            for attribute in self.FIFO_ATTRIBUTES:
                result[attribute] = getattr(self, camelcase_to_underscores(attribute))
        if self.kms_master_key_id:
            for attribute in self.KMS_ATTRIBUTES:
                result[attribute] = getattr(self, camelcase_to_underscores(attribute))
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy)
        for key in result:
            if isinstance(result[key], bool):
                result[key] = str(result[key]).lower()
        return result

    def messages(self: Any) -> list[Any]:
        now = _now_millis()
        return [m for m in list(self._messages) if now > m.visible_at and not now < m.delayed_until]

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]

    def get_queue_attributes(
        self: Any, queue_name: str, attribute_names: list[str]
    ) -> dict[str, Any]:
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid_names = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        invalid_name = next((name for name in attribute_names if name not in valid_names), None)
        if invalid_name or invalid_name == "":
            raise InvalidAttributeName(invalid_name)
        everything: dict[str, Any] = queue.attributes
        if "All" in attribute_names:
            return everything
        return {
            name: everything[name]
            for name in attribute_names
            if name in everything and everything[name] is not None
        }

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > time.time())

    original_send = SQSBackend.send_message

    @functools.wraps(original_send)
    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.now = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            sending.now = False

    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


__all__ = ["install"]
