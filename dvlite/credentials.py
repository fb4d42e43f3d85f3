"""Which config values are credentials, and masking them wherever text may carry them.

Passwords in URLs, tokens in HTTP user names and the values of secret options stay out of
git and out of every message and traceback dvlite prints. This module is small on purpose:
every command that opens a repo reads its credentials (to mask them in its errors) without
loading the remote backends.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

_SECRET_WORDS = ("secret", "password", "passphrase", "token", "connection_string",
                 "account_key", "credential", "session")
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]+)@",
                       re.I)
# over HTTP a user name alone is how tokens travel (https://<token>@host/...), so it is masked
# too; an ssh user name (ssh://git@host) is not a secret
_HTTP_TOKEN = re.compile(r"(?P<scheme>(?:https?|webdavs?)://)[^:/@\s]+@", re.I)


def is_secret(option: str) -> bool:
    """Options that hold credentials: kept out of git and never printed."""
    name = option.lower()
    return name in ("key", "auth", "password") or any(w in name for w in _SECRET_WORDS)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with URL passwords (and HTTP user names, which may be tokens) and the given
    secret values masked."""
    text = _USERINFO.sub(r"\g<scheme>\g<user>:***@", text)
    text = _HTTP_TOKEN.sub(r"\g<scheme>***@", text)
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def secrets_in(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The credentials flat config values hold (``remote.<name>.<option>`` keys): secret
    options and the passwords in remote URLs, for masking wherever text may carry them."""
    found: list[str] = []
    for key, value in config.items():
        section, _, option = key.rpartition(".")
        if not section.startswith("remote.") or not value:
            continue
        if is_secret(option):
            found.append(str(value))
        elif option == "url" and (match := _USERINFO.search(str(value))):
            found.append(match["password"])
    return tuple(found)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a password or token, which must stay out of git."""
    return redact(url) != url
