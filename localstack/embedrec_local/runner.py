"""Run Lambda handlers in-process, looked up by their real handler strings.

Only the compute substrate is swapped: the local stack invokes
``functions.ingestion.drop_folder.handle_s3_event`` exactly as Lambda would, with a JSON-round-tripped
event and a context object of the same shape.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from functions.common import deployment

Handler = Callable[[dict[str, Any], Any], Any]

# Function name → handler string, exactly as the CDK app declares them.
LOCAL_FUNCTIONS: dict[str, str] = {spec.name: spec.handler for spec in deployment.FUNCTIONS}


class Invoker(Protocol):
    """What invokes a function by name: this in-process runner or the Lambda-faithful fleet."""

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Invoke synchronously; the result crosses a JSON boundary."""


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    timeout_s: float = 900.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (emulated) timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaRunner:
    """Invokes registered handlers by function name; imports each handler once."""

    def __init__(self, functions: dict[str, str] | None = None) -> None:
        self._functions = dict(functions or LOCAL_FUNCTIONS)
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def handler_string(self, function_name: str) -> str:
        """The registered handler string of a function."""
        try:
            return self._functions[function_name]
        except KeyError:
            raise KeyError(f"no local function named '{function_name}'") from None

    def _resolve(self, handler_string: str) -> Handler:
        with self._lock:
            if handler_string not in self._handlers:
                module_name, _, attribute = handler_string.rpartition(".")
                self._handlers[handler_string] = getattr(importlib.import_module(module_name), attribute)
            return self._handlers[handler_string]

    def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Invoke synchronously (RequestResponse); the event and result cross a JSON boundary like Lambda."""
        return self.invoke_handler(self.handler_string(function_name), function_name, event)

    def invoke_handler(self, handler_string: str, function_name: str, event: dict[str, Any]) -> Any:
        """Invoke a handler by its handler string (what moto's Lambda backend knows of a function)."""
        handler = self._resolve(handler_string)
        payload = json.loads(json.dumps(event))
        result = handler(payload, LocalLambdaContext(function_name=function_name))
        return json.loads(json.dumps(result)) if result is not None else None
