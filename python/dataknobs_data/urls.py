"""Backend URLs: one string naming a backend and its configuration.

``parse_url`` turns a URL such as ``sqlite:///tmp/people.db?table=people`` into the backend
name and the configuration dict that ``DatabaseFactory().create(backend=..., **config)``
accepts (API.md §5).

Supported forms::

    memory://
    file:///tmp/a.jsonl            file:///tmp/a.csv.gz          file:///tmp/a.dat?format=csv
    sqlite:///tmp/a.db?table=people                              sqlite://:memory:
    duckdb:///tmp/a.duckdb?table=people                          duckdb:///:memory:
    postgresql://user:pw@host:5432/db?table=t&schema=s           (also postgres://, pg://)
    postgresql://u@db.example/app?sslmode=verify-full&sslrootcert=/etc/ca.pem
    s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1
    elasticsearch://host:9200/index                              (also es://, opensearch://;
                                                                  +https for TLS)

A postgresql:// URL takes the backend's own parameters (``table``, ``schema``, pool sizes,
``command_timeout``, ``auto_create_table``, ``prepared_statements``) and libpq's connection
parameters (:data:`LIBPQ_PARAMS`: ``sslmode``, ``sslrootcert``, ``application_name``, ...;
``ssl`` is another name for ``sslmode``), which reach the server as libpq would send them.

A relative path is written after ``//`` (``file://data/a.jsonl``, ``sqlite://a.db``); an
absolute one after ``///``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .config_values import coerce_bool
from .exceptions import ConfigurationError

__all__ = ["FILE_FORMATS", "LIBPQ_PARAMS", "SCHEMES", "parse_url", "redact_url"]

FILE_FORMATS: tuple[str, ...] = ("json", "jsonl", "csv", "tsv", "parquet")

# ndjson is the other common name for JSON Lines; accepting it costs nothing.
_EXTENSION_FORMATS: dict[str, str] = {
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "csv": "csv",
    "tsv": "tsv",
    "parquet": "parquet",
    "pq": "parquet",
}


def _to_int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"invalid value for '{key}': {raw!r} is not an integer") from None


def _to_number(key: str, raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"invalid value for '{key}': {raw!r} is not a number") from None


def _to_bool(key: str, raw: str) -> bool:
    try:
        return coerce_bool(key, raw)
    except ConfigurationError:
        raise ValueError(
            f"invalid value for '{key}': {raw!r} is not a boolean (true/false, yes/no, 1/0)"
        ) from None


def _to_str(key: str, raw: str) -> str:
    return raw


_Converter = Callable[[str, str], Any]

# Per scheme: URL query parameter -> (config key, converter). Only these are accepted, so a
# typo in a URL is reported by name instead of being passed on or silently ignored.
_FILE_PARAMS: dict[str, tuple[str, _Converter]] = {
    "format": ("format", _to_str),
    "compression": ("compression", _to_str),
}
_SQLITE_PARAMS: dict[str, tuple[str, _Converter]] = {
    "table": ("table", _to_str),
    "timeout": ("timeout", _to_number),
    "journal_mode": ("journal_mode", _to_str),
    "synchronous": ("synchronous", _to_str),
    "auto_create_table": ("auto_create_table", _to_bool),
}
_DUCKDB_PARAMS: dict[str, tuple[str, _Converter]] = {
    "table": ("table", _to_str),
    "timeout": ("timeout", _to_number),
    "read_only": ("read_only", _to_bool),
    "auto_create_table": ("auto_create_table", _to_bool),
}
_POSTGRES_PARAMS: dict[str, tuple[str, _Converter]] = {
    "table": ("table", _to_str),
    "schema": ("schema_name", _to_str),
    "schema_name": ("schema_name", _to_str),
    "min_pool_size": ("min_pool_size", _to_int),
    "max_pool_size": ("max_pool_size", _to_int),
    "command_timeout": ("command_timeout", _to_number),
    "timeout": ("command_timeout", _to_number),
    "auto_create_table": ("auto_create_table", _to_bool),
    "prepared_statements": ("prepared_statements", _to_bool),
}
#: libpq connection parameters the PostgreSQL backend honours; a postgresql:// URL passes
#: them through in its connection string, as libpq would read them.
LIBPQ_PARAMS: tuple[str, ...] = (
    "sslmode",
    "sslrootcert",
    "sslnegotiation",
    "application_name",
    "options",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "hostaddr",
)
#: libpq's sslmode names.
SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_S3_PARAMS: dict[str, tuple[str, _Converter]] = {
    "endpoint": ("endpoint_url", _to_str),
    "endpoint_url": ("endpoint_url", _to_str),
    "region": ("region", _to_str),
    "region_name": ("region", _to_str),
    "max_workers": ("max_workers", _to_int),
    "max_concurrency": ("max_workers", _to_int),
    "max_retries": ("max_retries", _to_int),
}
_ES_PARAMS: dict[str, tuple[str, _Converter]] = {
    "index": ("index", _to_str),
    "api_key": ("api_key", _to_str),
    "verify_certs": ("verify_certs", _to_bool),
    "ca_certs": ("ca_certs", _to_str),
    "refresh": ("refresh", _to_bool),
}


def _query_pairs(parts: SplitResult, scheme: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"malformed query string {parts.query!r} in {scheme}:// URL") from None


def _query_params(
    parts: SplitResult,
    allowed: dict[str, tuple[str, _Converter]],
    scheme: str,
    pairs: list[tuple[str, str]] | None = None,
    also: tuple[str, ...] = (),
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if pairs is None:
        pairs = _query_pairs(parts, scheme)
    for name, raw in pairs:
        if name not in allowed:
            accepted = ", ".join(sorted([*allowed, *also])) or "none"
            raise ValueError(
                f"unknown parameter '{name}' in {scheme}:// URL (accepted: {accepted})"
            )
        key, convert = allowed[name]
        config[key] = convert(name, raw)
    return config


def _local_path(parts: SplitResult, scheme: str) -> str:
    """Path of a file:// or sqlite:// URL; ``netloc`` is the start of a relative path."""
    netloc = unquote(parts.netloc)
    path = unquote(parts.path)
    if netloc == "localhost":
        netloc = ""
    full = netloc + path
    if not full:
        raise ValueError(f"missing path in {scheme}:// URL (e.g. {scheme}:///tmp/data)")
    return full


def redact_url(url: str) -> str:
    """The URL with any password replaced, for error messages."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    return f"{head}{sep}{netloc}{slash}{tail}"


def _port(parts: SplitResult, scheme: str) -> int | None:
    try:
        return parts.port
    except ValueError:
        hostport = parts.netloc.rpartition("@")[2]
        raise ValueError(f"invalid port in {scheme}:// URL: {hostport!r}") from None


def _parse_memory(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    if parts.netloc or parts.path.strip("/"):
        raise ValueError("memory:// URL takes no host or path")
    _query_params(parts, {}, scheme)
    return "memory", {}


def _parse_file(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    path = _local_path(parts, scheme)
    params = _query_params(parts, _FILE_PARAMS, scheme)
    config: dict[str, Any] = {"path": path}

    name = path.rsplit("/", 1)[-1].lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[: -len(".gz")]
    ext = name.rsplit(".", 1)[-1] if "." in name else ""

    fmt = params.get("format")
    if fmt is None:
        fmt = _EXTENSION_FORMATS.get(ext)
        if fmt is None:
            raise ValueError(
                f"cannot tell the file format of {path!r}: use an extension "
                f"({', '.join(FILE_FORMATS)}) or ?format=..."
            )
    else:
        fmt = _EXTENSION_FORMATS.get(str(fmt).lower())
        if fmt is None:
            raise ValueError(
                f"unknown file format {params['format']!r} (accepted: {', '.join(FILE_FORMATS)})"
            )
    config["format"] = fmt

    compression = params.get("compression")
    if compression is None:
        if gzipped:
            config["compression"] = "gzip"
    else:
        low = str(compression).lower()
        if low in ("gzip", "gz"):
            config["compression"] = "gzip"
        elif low not in ("", "none"):
            raise ValueError(f"unknown compression {compression!r} (accepted: gzip, none)")
    return "file", config


def _parse_sqlite(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    path = _local_path(parts, scheme)
    # sqlite:///:memory: reads naturally too; map it to the in-memory database.
    if path in (":memory:", "/:memory:"):
        path = ":memory:"
    config: dict[str, Any] = {"path": path}
    config.update(_query_params(parts, _SQLITE_PARAMS, scheme))
    return "sqlite", config


def _parse_duckdb(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    path = _local_path(parts, scheme)
    if path in (":memory:", "/:memory:", ""):
        path = ":memory:"
    config: dict[str, Any] = {"path": path}
    config.update(_query_params(parts, _DUCKDB_PARAMS, scheme))
    return "duckdb", config


def _parse_postgres(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {}
    if parts.hostname:
        config["host"] = unquote(parts.hostname)
    port = _port(parts, scheme)
    if port is not None:
        config["port"] = port
    database = unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise ValueError(f"invalid database name {database!r} in {scheme}:// URL")
    if database:
        config["database"] = database
    if parts.username:
        config["user"] = unquote(parts.username)
    if parts.password is not None:
        config["password"] = unquote(parts.password)
    if "host" not in config:
        raise ValueError(f"missing host in {scheme}:// URL (e.g. {scheme}://user@localhost/db)")
    ours: list[tuple[str, str]] = []
    libpq: list[tuple[str, str]] = []
    for name, raw in _query_pairs(parts, scheme):
        if name in ("ssl", "sslmode"):
            if raw.strip().lower() not in SSL_MODES:
                raise ValueError(
                    f"invalid value for '{name}': {raw!r} is not an sslmode "
                    f"(accepted: {', '.join(SSL_MODES)})"
                )
            # ssl is asyncpg's DSN spelling of sslmode: a mode name, not a boolean.
            name, raw = "sslmode", raw.strip().lower()
        (libpq if name in LIBPQ_PARAMS else ours).append((name, raw))
    config.update(_query_params(parts, _POSTGRES_PARAMS, scheme, ours, LIBPQ_PARAMS))
    if libpq:
        # The store reads libpq's parameters from a connection string; the URL is one once
        # the parameters that are the backend's own are taken out.
        config["connection_string"] = urlunsplit(
            ("postgresql", parts.netloc, parts.path, urlencode(libpq), "")
        )
    return "postgres", config


def _parse_s3(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    bucket = unquote(parts.netloc)
    if not bucket:
        raise ValueError("missing bucket in s3:// URL (e.g. s3://bucket/prefix)")
    config: dict[str, Any] = {"bucket": bucket}
    prefix = unquote(parts.path.lstrip("/"))
    if prefix:
        # Objects are named {prefix}{id}.json: without the slash, s3://b/people would
        # store "people123.json" beside the folder the user meant.
        config["prefix"] = prefix if prefix.endswith("/") else prefix + "/"
    config.update(_query_params(parts, _S3_PARAMS, scheme))
    return "s3", config


def _parse_elasticsearch(parts: SplitResult, scheme: str) -> tuple[str, dict[str, Any]]:
    host = parts.hostname
    if not host:
        raise ValueError(f"missing host in {scheme}:// URL (e.g. {scheme}://localhost:9200/index)")
    port = _port(parts, scheme) or 9200
    http = "https" if scheme.endswith("+https") else "http"
    # IPv6 literals must keep their brackets inside an http URL.
    shown = f"[{host}]" if ":" in host else host
    config: dict[str, Any] = {"hosts": [f"{http}://{shown}:{port}"]}
    index = unquote(parts.path.strip("/"))
    if "/" in index:
        raise ValueError(f"invalid index name {index!r} in {scheme}:// URL")
    if index:
        config["index"] = index
    if parts.username:
        config["basic_auth"] = (unquote(parts.username), unquote(parts.password or ""))
    config.update(_query_params(parts, _ES_PARAMS, scheme))
    return "elasticsearch", config


_Parser = Callable[[SplitResult, str], tuple[str, dict[str, Any]]]

SCHEMES: dict[str, _Parser] = {
    "memory": _parse_memory,
    "mem": _parse_memory,
    "file": _parse_file,
    "sqlite": _parse_sqlite,
    "sqlite3": _parse_sqlite,
    "duckdb": _parse_duckdb,
    "postgresql": _parse_postgres,
    "postgres": _parse_postgres,
    "pg": _parse_postgres,
    "s3": _parse_s3,
    "elasticsearch": _parse_elasticsearch,
    "es": _parse_elasticsearch,
    "opensearch": _parse_elasticsearch,
    "elasticsearch+https": _parse_elasticsearch,
    "es+https": _parse_elasticsearch,
    "opensearch+https": _parse_elasticsearch,
}


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """Parse a backend URL into ``(backend name, config dict)``.

    Examples:
        >>> parse_url("sqlite:///tmp/a.db?table=people")
        ('sqlite', {'path': '/tmp/a.db', 'table': 'people'})
        >>> parse_url("file:///tmp/a.jsonl.gz")
        ('file', {'path': '/tmp/a.jsonl.gz', 'format': 'jsonl', 'compression': 'gzip'})

    Raises:
        ValueError: with a one-line message when the URL has no scheme, an unknown scheme,
            a missing path/host/bucket, an unknown query parameter or a bad value.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("empty backend URL")
    url = url.strip()
    if "://" not in url:
        # memory: is a natural shorthand; everything else needs the full form.
        if url.lower() in ("memory", "memory:"):
            return "memory", {}
        raise ValueError(
            f"invalid backend URL {redact_url(url)!r}: missing scheme (e.g. sqlite:///path/to/file.db)"
        )
    scheme = url.split("://", 1)[0].lower()
    parser = SCHEMES.get(scheme)
    if parser is None:
        raise ValueError(
            f"unknown URL scheme {scheme!r} in {redact_url(url)!r} (supported: memory, file, "
            "sqlite, duckdb, postgresql, s3, elasticsearch, opensearch)"
        )
    # A sqlite://:memory: netloc is not a valid host:port; that is fine as long as
    # .port is only read by the schemes that have one.
    parts = urlsplit(url)
    if parts.fragment:
        raise ValueError(f"unexpected fragment '#{parts.fragment}' in backend URL")
    return parser(parts, scheme)
