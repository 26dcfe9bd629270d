"""The HTTP seam of the carbon feeds: a request value, a response value, and a getter.

Adapters only build `HttpRequest`s and parse bodies; whoever polls passes a getter, so tests
answer with recorded bodies and the operator with `urllib_get` (or its own client). A
request's headers carry credentials, so they are left out of its repr: a request that ends up
in a log line or a traceback shows no token.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: Bodies larger than this are refused: every answer used here is a few KiB.
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A GET request: URL (never holds credentials), headers (may), timeout in seconds."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status code and raw body of an answer (any status: non-2xx answers are data too)."""

    status: int
    body: bytes = field(repr=False)


#: Performs one GET. Answers with any HTTP status as an HttpResponse; raises OSError (which
#: includes TimeoutError and urllib's URLError) when no answer arrived.
HttpGet = Callable[[HttpRequest], HttpResponse]


def urllib_get(request: HttpRequest) -> HttpResponse:
    """An HttpGet on the standard library (blocking: call it from a thread or executor)."""
    req = urllib.request.Request(request.url, headers=dict(request.headers), method="GET")
    try:
        with urllib.request.urlopen(req, timeout=request.timeout) as response:
            return HttpResponse(int(response.status), response.read(MAX_BODY_BYTES + 1))
    except urllib.error.HTTPError as err:
        try:
            body = err.read(64 * 1024)
        except OSError:
            body = b""
        return HttpResponse(int(err.code), body)
    except http.client.HTTPException as err:  # e.g. IncompleteRead: no usable answer
        raise OSError(f"incomplete HTTP answer ({type(err).__name__})") from None


__all__ = ["MAX_BODY_BYTES", "HttpGet", "HttpRequest", "HttpResponse", "urllib_get"]
