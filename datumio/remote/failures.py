"""What a failed request to object storage means: a network failure (which one, at which
host), or an answer that refuses access, or neither (a missing object, another error).

fsspec wraps the transport's exceptions (its HTTP filesystem turns *any* failure of a
size request into ``FileNotFoundError``; s3fs raises botocore's errors), so the whole chain
(``__cause__``, else ``__context__``) is searched. Exceptions are classified by type: the
standard library's (``ConnectionRefusedError``, ``ssl.SSLError``, ``socket.gaierror``,
``TimeoutError``, ...) and those of aiohttp and botocore, looked up only when their package
is already imported (an exception of a package nobody imported cannot occur). The text is
read only when no type matched.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass

REFUSED = "connection refused"
RESET = "connection reset"
TLS = "TLS failure"
DNS = "DNS failure"
TIMEOUT = "timed out"
DENIED = "access denied"
HTTP_STATUS = "HTTP error"

_ADVICE = {
    REFUSED: "nothing listens at that address: check the host and the port, and that the "
    "server is running",
    RESET: "the server closed the connection before its answer was whole: a server or proxy "
    "that drops connections, or an http:// URL to a TLS port (try https://); reading again "
    "may succeed",
    TLS: "the TLS handshake failed: an https:// URL to a plain-http port (use http://), or a "
    "certificate this machine does not trust",
    DNS: "the host name does not resolve: check its spelling and this machine's DNS",
    TIMEOUT: "no answer in time: check the network and the server; the timeout is a storage "
    "option (http(s): {'timeout': SECONDS}; s3: {'config_kwargs': {'connect_timeout': "
    "SECONDS, 'read_timeout': SECONDS}})",
    DENIED: "check the credentials, or the token in the URL's query string (it may have expired)",
    HTTP_STATUS: "the server could not answer; try again later",
}
#: errno values of a bare OSError, when no more specific type says it.
_ERRNO = {
    errno.ECONNREFUSED: REFUSED,
    errno.ECONNRESET: RESET,
    errno.EPIPE: RESET,
    errno.ECONNABORTED: RESET,
    errno.ETIMEDOUT: TIMEOUT,
}
#: Lower-case phrases of an exception's text, read only when no type matched.
_PHRASES = (
    (REFUSED, ("connection refused", "connect call failed")),
    (RESET, ("reset by peer", "server disconnected", "connection aborted")),
    (TLS, ("wrong version number", "certificate verify failed", "ssl validation failed")),
    (DNS, ("name or service not known", "nodename nor servname", "name resolution")),
    (TIMEOUT, ("timed out", "timeout")),
)


@dataclass(frozen=True)
class Failure:
    """A request that failed on the way: ``kind`` (one of this module's phrases), the host
    (``host:port`` without credentials; "" when nothing names it) and the HTTP status."""

    kind: str
    host: str
    status: int | None = None

    @property
    def advice(self) -> str:
        return _ADVICE[self.kind]

    def describe(self) -> str:
        """``connection refused by 127.0.0.1:8000``, ``access denied by h (HTTP 403)``."""
        preposition = {TLS: "with", DNS: "for", TIMEOUT: "waiting for", HTTP_STATUS: "from"}
        where = f" {preposition.get(self.kind, 'by')} {self.host}" if self.host else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.kind}{where}{status}"


def classify(exc: BaseException, host: str) -> Failure | None:
    """The network failure or refusing answer in ``exc``'s chain; None: neither (a missing
    object, HTTP 404, or another error). ``host``: named when the chain names none."""
    found = list(chain(exc))
    named = next((h for h in map(_host_of, found) if h), host)
    kind = _by_type(found)
    if kind is not None:
        return Failure(kind, named)
    for e in found:
        status = getattr(e, "status", None)  # aiohttp's ClientResponseError
        if isinstance(status, int) and status >= 400 and status not in (404, 410):
            return Failure(DENIED if status in (401, 403) else HTTP_STATUS, named, status)
    if any(isinstance(e, PermissionError) for e in found):  # s3fs's AccessDenied
        return Failure(DENIED, named)
    kind = _by_text(found)
    return None if kind is None else Failure(kind, named)


def summary(exc: BaseException) -> str:
    """``Type: text`` of the exception that says what happened (fsspec's HTTP filesystem
    wraps any failure of a size request in a ``FileNotFoundError`` of the URL alone)."""
    if isinstance(exc, FileNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its cause (else its context), and so on."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _by_type(found: list[BaseException]) -> str | None:
    aiohttp = "aiohttp.client_exceptions"
    botocore = "botocore.exceptions"
    kinds: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
        (
            TLS,
            (
                *_types("ssl", "SSLError"),  # not imported here: ssl is not light
                *_types(aiohttp, "ClientSSLError"),
                *_types(botocore, "SSLError"),
            ),
        ),
        (DNS, (socket.gaierror, *_types(aiohttp, "ClientConnectorDNSError"))),
        (REFUSED, (ConnectionRefusedError,)),
        (
            RESET,
            (
                ConnectionResetError,
                ConnectionAbortedError,
                BrokenPipeError,
                *_types(aiohttp, "ServerDisconnectedError", "ClientPayloadError"),
                *_types(botocore, "ConnectionClosedError"),
            ),
        ),
        (TIMEOUT, (TimeoutError, *_types(botocore, "ConnectTimeoutError", "ReadTimeoutError"))),
    )
    for kind, types in kinds:
        if any(isinstance(e, types) for e in found):
            return kind
    for e in found:
        if isinstance(e, OSError) and e.errno in _ERRNO:
            return _ERRNO[e.errno]
    return None


def _by_text(found: list[BaseException]) -> str | None:
    texts = [str(e).lower() for e in found if not isinstance(e, FileNotFoundError)]
    for kind, phrases in _PHRASES:
        if any(p in text for text in texts for p in phrases):
            return kind
    return None


def _types(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """The exception classes ``names`` of ``module`` if it is imported (nothing is imported
    here: ``import datumio`` stays light, and a class never loaded was never raised)."""
    loaded = sys.modules.get(module)
    found = (getattr(loaded, name, None) for name in names)
    return tuple(t for t in found if isinstance(t, type) and issubclass(t, BaseException))


def _host_of(exc: BaseException) -> str:
    """``host:port`` the exception names: aiohttp's connector errors carry them, botocore's
    the endpoint URL."""
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    if isinstance(host, str) and host:
        return f"{host}:{port}" if isinstance(port, int) else host
    kwargs = getattr(exc, "kwargs", None)
    endpoint = kwargs.get("endpoint_url") if isinstance(kwargs, dict) else None
    if isinstance(endpoint, str) and "://" in endpoint:
        return endpoint.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    return ""
