"""One family of exceptions for everything that can go wrong talking to a cluster.

The kubernetes client raises `ApiException`, urllib3 raises its own tree, sockets raise
`OSError`; nothing above `aifactory.clusters` should have to know that (httpx does the same at
its transport boundary). `classify` maps any of them to a `ClusterError` whose `reason` is a
CamelCase condition reason and whose `permanent` flag says whether retrying the same request can
help: a member's 422 will fail again until the spec changes, a timeout may not.

Messages carry what the member said (its `Status.message`), never request bodies or
credentials: an apiserver's validation message names fields and values of our own objects, but
kubeconfigs and tokens never reach this module.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

#: Reasons, CamelCase so they go straight into conditions and Events.
REASON_UNREACHABLE = "ClusterUnreachable"
REASON_REJECTED = "MemberRejected"
REASON_FORBIDDEN = "MemberForbidden"
REASON_CONFLICT = "MemberConflict"
REASON_THROTTLED = "MemberThrottled"
REASON_SERVER_ERROR = "MemberServerError"
REASON_NOT_FOUND = "NotFound"

#: Longest member message kept: enough for a validation error, bounded for status.
MAX_MESSAGE = 512


class ClusterError(Exception):
    """A request to a cluster failed.

    `reason`: CamelCase condition reason; `message`: what happened, safe to show;
    `status`: the HTTP status when the cluster answered (None when it did not);
    `permanent`: True when repeating the same request cannot succeed (bad object, forbidden).
    """

    def __init__(
        self, reason: str, message: str, *, status: int | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.permanent = permanent


class ClusterAccessError(ClusterError):
    """The cluster behind a module cannot be used at all (its kubeconfig Secret is missing,
    unreadable or invalid). Permanent until someone fixes the Secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message, permanent=True)


def _member_message(exc: ApiException) -> str:
    body: Any = exc.body
    try:
        data = json.loads(body) if isinstance(body, str | bytes) and body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        text = str(data["message"])
    else:
        text = (exc.reason or "").strip() or "no message"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def classify(exc: BaseException, *, what: str = "request") -> ClusterError:
    """Map any client-side exception to a ClusterError (itself when it already is one).

    `what` names the operation for the message, e.g. "apply Deployment ns/name".
    """
    if isinstance(exc, ClusterError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        if status == 0:  # raised without a response: the client gave up before an answer
            return ClusterError(REASON_UNREACHABLE, f"{what}: no answer", status=None)
        detail = _member_message(exc)
        msg = f"{what}: HTTP {status}: {detail}"
        if status == 404:
            return ClusterError(REASON_NOT_FOUND, msg, status=status, permanent=True)
        if status == 409:
            return ClusterError(REASON_CONFLICT, msg, status=status)
        if status == 429:
            return ClusterError(REASON_THROTTLED, msg, status=status)
        if status in (401, 403):
            return ClusterError(REASON_FORBIDDEN, msg, status=status, permanent=True)
        if 400 <= status < 500:
            return ClusterError(REASON_REJECTED, msg, status=status, permanent=True)
        return ClusterError(REASON_SERVER_ERROR, msg, status=status)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError | socket.timeout | TimeoutError):
        return ClusterError(REASON_UNREACHABLE, f"{what}: no answer ({type(exc).__name__})")
    raise TypeError(f"not a cluster error: {type(exc).__name__}") from exc


#: What `classify` understands; callers catch exactly these at the boundary.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    ClusterError,
    ApiException,
    urllib3.exceptions.HTTPError,
    OSError,
)

__all__ = [
    "CLIENT_ERRORS",
    "MAX_MESSAGE",
    "REASON_CONFLICT",
    "REASON_FORBIDDEN",
    "REASON_NOT_FOUND",
    "REASON_REJECTED",
    "REASON_SERVER_ERROR",
    "REASON_THROTTLED",
    "REASON_UNREACHABLE",
    "ClusterAccessError",
    "ClusterError",
    "classify",
]
