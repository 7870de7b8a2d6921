"""What a dataset URL means: where each of its objects lives, which schemes take a query
string, and the URL's public form (what messages and the cache may show).

For ``http://`` and ``https://`` a query string is part of how the server authorises a
request (a token, a signed parameter): the dataset's objects (``manifest.json``,
``index/...``, ``shards/...``) are joined onto the URL's *path*, and every request carries
the same query. A fragment is never sent to an HTTP server (RFC 3986, section 3.5), so it
is dropped. Every other scheme (``s3://``, ``gs://``, ``file://``, ...) names objects by
path alone: s3fs and gcsfs would read ``?versionId=`` or ``?generation=`` as the version of
one object, which a dataset of many objects has no use for, so a ``?`` or ``#`` there is
refused before anything is read.
"""

from __future__ import annotations

import urllib.parse

from datumio.errors import OptionError

#: The schemes whose URLs may carry a query string (sent with every object's request).
QUERY_SCHEMES = frozenset({"http", "https"})
#: What stands for a query value in messages, the cache's ``source.json`` and ``repr``.
MASK = "***"


def is_url(path: object) -> bool:
    """Whether ``path`` names a remote dataset (``scheme://...``; ``file://`` included)."""
    return isinstance(path, str) and "://" in path


def public(url: str) -> str:
    """``url`` as messages may show it: no user or password, every query value masked
    (``?token=***``), no fragment."""
    parts = urllib.parse.urlsplit(url)
    query = "&".join(_masked(item) for item in parts.query.split("&") if item)
    return urllib.parse.urlunsplit((parts.scheme, _netloc(parts), parts.path, query, ""))


def identity(url: str) -> str:
    """What names ``url``'s dataset: scheme, host and path, without credentials, query or
    fragment (URLs that differ only in their token are one dataset)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, _netloc(parts), parts.path, "", ""))


def check_url(url: str) -> str:
    """``url`` ready to read: for http(s) without its fragment; checked up front.

    Raises:
        OptionError: a query string or fragment on a scheme that names objects by path
            alone, or a port that is no number (the message says what to give instead).
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        raise OptionError(
            f"{public(url)}: the port of {_netloc(parts)!r} is not a number; give the URL "
            "as scheme://host:PORT/path"
        ) from exc
    if scheme in QUERY_SCHEMES:
        return url.partition("#")[0]
    if "?" in url or "#" in url:
        raise OptionError(
            f"{public(url)}: {scheme}:// URLs name objects by path alone and take no query "
            "string or fragment ('?' or '#'; only http:// and https:// URLs take a query, "
            f"sent with every request). Give the dataset's URL without them ({identity(url)}) "
            "and pass endpoints and credentials as storage_options (on the command line, "
            "through the environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)"
        )
    return url


def split_query(url: str) -> tuple[str, str]:
    """(``url`` without its query string and fragment, the query string or "")."""
    base, _, query = url.partition("#")[0].partition("?")
    return base, query


def object_url(url: str, relative: str) -> str:
    """The URL of the dataset's object ``relative``: joined onto ``url``'s path, with
    ``url``'s query string carried over."""
    base, query = split_query(url)
    joined = f"{base.rstrip('/')}/{relative}"
    return f"{joined}?{query}" if query else joined


def netloc(url: str) -> str:
    """``url``'s host and port, without user or password."""
    return _netloc(urllib.parse.urlsplit(url))


def query_values(url: str) -> list[str]:
    """The values of ``url``'s query string, as written and decoded (what to mask)."""
    values = []
    for item in split_query(url)[1].split("&"):
        name, eq, value = item.partition("=")
        raw = value if eq else name  # a bare item (``?abcdef``) may be the token itself
        values += [raw, urllib.parse.unquote_plus(raw)]
    return [v for v in dict.fromkeys(values) if v]


def _masked(item: str) -> str:
    name, eq, _ = item.partition("=")
    return f"{name}={MASK}" if eq else MASK


def _netloc(parts: urllib.parse.SplitResult) -> str:
    return parts.netloc.rpartition("@")[2]
