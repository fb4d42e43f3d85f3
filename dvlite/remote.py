"""Opening remotes: an fsspec URL plus options becomes a RemoteStore.

This is the one module that knows the storage backends: which extra installs
each, which options they take for a bounded connect time, which of them write
objects atomically, and how their exceptions map onto dvlite's. Messages never
carry secrets: passwords in URLs and secret option values are masked.
"""

from __future__ import annotations

import errno
import re
import traceback
from typing import TYPE_CHECKING, Any

from dvlite.credentials import is_secret, redact
from dvlite.errors import (
    ConfigError,
    DvliteError,
    MissingDependencyError,
    RemoteAuthError,
    RemoteError,
    RemoteUnavailableError,
)
from dvlite.storage.remote_store import RemoteStore, Traits

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

CONNECT_TIMEOUT = 10  # seconds: an unreachable remote fails fast, not after minutes
READ_TIMEOUT = 120  # seconds without an answer, unless the remote's `timeout` option says
_KEEPALIVES = 3  # unanswered SSH keepalives, one every timeout/3 s, before the connection is lost

# protocol → pip extra that brings its backend
EXTRAS = {
    "s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "azure", "abfs": "azure",
    "abfss": "azure", "ssh": "ssh", "sftp": "ssh", "webdav": "webdav", "webdavs": "webdav",
    "http": "http", "https": "http",
}
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}
_READ_ONLY = {"http", "https"}
# backends whose get_file streams an object to disk in one request (checked against their
# test servers; the others read through open(), which may ask for the size first)
_NATIVE_GET = {"s3", "s3a", "az", "abfs", "abfss", "ssh", "sftp", "http", "https"}
_WHOLE_CAT = {"ssh", "sftp"}  # fs.cat_file ignores start and end: it reads the whole file
# S3 uploads: s3fs reads max_concurrency parts of chunksize into memory at once (by default
# 10 of 50 MiB, and more in copies while signing: a 2 GiB push peaked over 1 GiB). Parts of
# 8 MiB, 4 at a time, keep a push in tens of MiB and were as fast against moto_server. Up
# to a pack's size or so, uploads already go several at a time (packs and chunks, three),
# so their parts go one after another: 4 each took a push of 20,000 files to 285 MiB.
_S3_PART = 8 << 20
_S3_PARTS_AT_ONCE = 4
_S3_ALONE_FROM = 64 << 20  # bytes from which an upload's parts go up in parallel
_S3_MAX_PARTS = 10_000  # S3's limit per upload: bigger files need bigger parts
_S3FS_TRIES = 2  # per request: a second try for throttling or a dropped read, then the engine's
# parallel transfers per protocol when -j is not given
DEFAULT_JOBS = {"s3": 16, "s3a": 16, "gs": 16, "gcs": 16, "az": 16, "abfs": 16, "abfss": 16,
                "ssh": 8, "sftp": 8, "webdav": 8, "webdavs": 8, "http": 8, "https": 8}
_AUTH_NAMES = ("NoCredentialsError", "PartialCredentialsError", "PermissionDenied",
               "ClientAuthenticationError", "InvalidAccessKeyId", "SignatureDoesNotMatch",
               "AccessDenied", "Forbidden", "Unauthorized")
_UNAVAILABLE_NAMES = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                      "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                      "ClientOSError", "ServerTimeoutError", "ConnectError", "ReadTimeout",
                      "ConnectTimeout", "RemoteProtocolError", "ServiceRequestError",
                      "ServiceResponseError", "ConnectionLost", "DisconnectError",
                      "ChannelOpenError", "TimeoutError", "ClientPayloadError",
                      "SFTPNoConnection", "SFTPConnectionLost", "ReadError", "WriteError")
# a response cut short shows as a malformed one ("Bad status line"), and sshfs's pool of
# channels on a dropped connection as a ValueError: network faults too
_SERVER_FAULT = re.compile(
    r"\b(5\d\d|SlowDown|InternalError|ServiceUnavailable|Throttl|Bad status line|"
    r"Can't create any SFTP connections)")
_AUTH_TEXT = re.compile(r"\b(401|403)\b|Forbidden|Unauthorized|AccessDenied|InvalidAccessKey|"
                        r"AuthenticationFailed|AuthorizationFailure")


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def open_remote(name: str, url: str, options: Mapping[str, Any]) -> RemoteStore:
    """The remote called ``name`` at ``url``, with fsspec ``options`` for its backend (and
    ``jobs``, its number of parallel transfers)."""
    protocol = protocol_of(url)
    options = dict(options)
    jobs = int(options.pop("jobs", DEFAULT_JOBS.get(protocol, 4)))
    timeout = _seconds(name, options.pop("timeout", READ_TIMEOUT))
    secrets = tuple(str(v) for k, v in options.items() if is_secret(k) and v)
    label = f"remote `{name}` ({redact(url, secrets)})"
    translate = _translator(label, protocol, secrets)
    given = dict(options)  # _filesystem rewrites the options it is handed
    try:
        fs, root = _filesystem(protocol, url, options, timeout)
    except DvliteError:
        raise
    except Exception as exc:
        error = translate(exc)
        raise error from (exc if error.show_cause else None)  # None: it shows a credential
    # fsspec's HTTP info() reports any failure as FileNotFoundError; its strict exists()
    # tells a 404 from a refused connection or credentials
    probe = (lambda path: bool(fs.exists(path, strict=True))) if protocol in _READ_ONLY else None
    # an SFTP connection that dropped stays dead: the retries need a new one
    reopen = (lambda: _filesystem(protocol, url, {**given, "skip_instance_cache": True},
                                  timeout)[0]) if protocol in ("ssh", "sftp") else None
    return RemoteStore(fs, root, name=label, translate=translate, jobs=jobs, probe=probe,
                       traits=_traits(protocol), timeout=timeout, reopen=reopen)


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds > 0:
        raise ConfigError(f"remote `{name}`: `timeout` must be a number of seconds above 0, "
                          f"not {value!r}",
                          hint=f"dvlite remote modify {name} timeout 60")
    return seconds


def _traits(protocol: str) -> Traits:
    if protocol not in ("s3", "s3a"):
        return Traits(object_store=protocol in _OBJECT_STORES, read_only=protocol in _READ_ONLY,
                      native_get=protocol in _NATIVE_GET, ranged_cat=protocol not in _WHOLE_CAT)
    # s3fs downloads an object over 50 MiB in concurrent ranges, each read whole into memory
    # (and moto_server copies the object for each range): one streamed GET is flat and faster
    return Traits(object_store=True, native_get=True, get_options={"max_concurrency": 1},
                  put_options=_s3_upload)


def _s3_upload(size: int) -> dict[str, int]:
    return {"chunksize": max(_S3_PART, -(-size // _S3_MAX_PARTS)),
            "max_concurrency": _S3_PARTS_AT_ONCE if size >= _S3_ALONE_FROM else 1}


def _filesystem(
    protocol: str, url: str, options: dict[str, Any], timeout: float
) -> tuple[Any, str]:
    """The backend's filesystem and the store's root in it; ``timeout`` is the longest wait
    for an answer, on each backend that can bound it."""
    from fsspec.core import url_to_fs  # noqa: PLC0415  (slow import, only for remotes)

    if protocol in ("webdav", "webdavs"):
        # webdav://host:port/path: the server is the base URL, the path is the store's root
        scheme = "https" if protocol == "webdavs" else "http"
        host, _, path = url.split("://", 1)[1].partition("/")
        user, password = options.pop("user", None), options.pop("password", None)
        if user is not None:
            options["auth"] = (user, password or "")
        options.setdefault("timeout", timeout)
        from webdav4.fsspec import WebdavFileSystem  # noqa: PLC0415

        return WebdavFileSystem(f"{scheme}://{host}", **options), "/" + path.strip("/")
    if protocol in ("s3", "s3a"):
        # no retry inside botocore: the transfer engine retries objects and s3fs retries
        # throttling and dropped reads once; a third layer would multiply the wait for an
        # unreachable endpoint (each botocore retry waits up to 1, 2, 4... s)
        config: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": timeout,
                                  "retries": {"total_max_attempts": 1, "mode": "standard"}}
        from botocore.config import Config  # noqa: PLC0415  (s3fs's own dependency)

        if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
            # botocore >= 1.36 adds a CRC32 of every body by default: CPU spent twice over
            # (dvlite checks every object by its hash on the way in), and a header that many
            # S3-compatible servers refuse
            config.update(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required")
        options["config_kwargs"] = {**config, **options.get("config_kwargs", {})}
        fs, root = url_to_fs(url, **options)
        # s3fs tries 5 times (a class setting), and each try of a stalled read waits out the
        # whole timeout: with the transfer engine's 4 tries, a stall failed after 20 timeouts
        fs.retries = _S3FS_TRIES
        return fs, root
    if protocol in ("ssh", "sftp"):
        options.setdefault("connect_timeout", CONNECT_TIMEOUT)
        # SFTP has no read timeout: keepalives close a connection whose server stopped
        # answering, which fails the requests waiting on it
        options.setdefault("keepalive_interval", max(1.0, timeout / _KEEPALIVES))
        options.setdefault("keepalive_count_max", _KEEPALIVES)
        if str(options.get("known_hosts", "")).lower() == "none":
            # config values cannot be None: `known_hosts = "none"` turns host key checks off
            # (asyncssh's known_hosts=None), instead of naming a file called "none"
            options["known_hosts"] = None
    elif protocol in ("az", "abfs", "abfss"):
        options.setdefault("connection_timeout", CONNECT_TIMEOUT)
        options.setdefault("read_timeout", timeout)
        fs, root = url_to_fs(url, **options)
        _shorten_azure_retries(fs)
        return fs, root
    elif protocol in ("http", "https"):
        import aiohttp  # noqa: PLC0415

        client = dict(options.get("client_kwargs", {}))
        client.setdefault("timeout", aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT,
                                                           sock_read=timeout))
        options["client_kwargs"] = client
        fs, _ = url_to_fs(url, **options)
        return fs, url.rstrip("/")
    fs, root = url_to_fs(url, **options)
    return fs, root


def _shorten_azure_retries(fs: Any) -> None:
    """The Azure SDK retries a request that failed to connect 3 times, waiting 15, 18 and 24 s
    (more than a minute before an unreachable remote is reported, per object). adlfs offers no
    option for it, so its client's retry policy is set here: no retry of a failed connect (the
    transfer engine retries objects itself), two quick ones of a failed read or a 5xx."""
    policy = getattr(getattr(getattr(fs, "service_client", None), "_config", None),
                     "retry_policy", None)
    if policy is None or not hasattr(policy, "initial_backoff"):
        return
    policy.connect_retries = 0
    policy.total_retries = policy.read_retries = policy.status_retries = 2
    # the wait before retry n is initial_backoff + increment_base ** n, give or take the jitter
    policy.initial_backoff, policy.increment_base, policy.random_jitter_range = 0.2, 1.5, 0.2


def _translator(
    label: str, protocol: str, secrets: tuple[str, ...]
) -> Callable[[BaseException], DvliteError]:
    def translate(exc: BaseException) -> DvliteError:
        error = _classify(exc, label, protocol, redact(f"{type(exc).__name__}: {exc}".strip(),
                                                       secrets))
        # The backend's exception stays chained (for -v and debuggers) unless its text, or
        # that of what it chains, holds a credential: any traceback would print it as it is.
        shown = "".join(traceback.format_exception(exc))
        error.show_cause = redact(shown, secrets) == shown
        return error

    return translate


def _classify(exc: BaseException, label: str, protocol: str, detail: str) -> DvliteError:
    """The most specific dvlite error for a backend's exception; ``detail`` is its text,
    masked."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, ImportError) or "Protocol not known" in str(exc):
        extra = EXTRAS.get(protocol)
        return MissingDependencyError(
            f"{label} needs a storage backend that is not installed ({detail})",
            hint=f"pip install 'dvlite[{extra}]'" if extra else (
                f"check the URL's protocol; if `{protocol}://` is right, `pip install` the "
                "fsspec package that provides it"),
        )
    if (isinstance(exc, PermissionError) or names & set(_AUTH_NAMES)
            or _AUTH_TEXT.search(str(exc)) or _status_of(exc) in (401, 403)):
        return RemoteAuthError(
            f"{label} refused access: {detail}",
            hint="check the credentials (`dvlite remote modify --local NAME OPTION VALUE`)",
        )
    if (
        isinstance(exc, ConnectionError | TimeoutError)
        or names & set(_UNAVAILABLE_NAMES)
        or (isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS)
        or _SERVER_FAULT.search(str(exc))
    ):
        return RemoteUnavailableError(
            f"{label} cannot be reached or failed: {detail}",
            hint="check the network and the remote's URL, then run the command again",
        )
    return RemoteError(f"{label} failed: {detail}")


# EBUSY: how s3fs reports a 503, SlowDown and other "try again later" answers
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                   errno.ENETUNREACH, errno.EPIPE, errno.ECONNABORTED, errno.EBUSY}


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status a backend's exception carries, if any (Azure, WebDAV, aiohttp)."""
    for name in ("status_code", "status"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return None
