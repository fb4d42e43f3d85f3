"""DVC's config (``.dvc/config``, ``.dvc/config.local``) as dvlite settings.

DVC writes configobj files: ``[core]``, ``['remote "name"']`` sections of ``key = value``.
Remotes keep their URL; their options are renamed to the fsspec backend's where the
names differ, and a credential goes to dvlite's local config only, never a tracked file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from dvlite.credentials import has_credentials, is_secret
from dvlite.errors import ConfigError
from dvlite.remote import protocol_of

_SECTION = re.compile(r"""\[\s*'?(?P<name>[^'\]]+?)'?\s*\]\s*\Z""")
_REMOTE = re.compile(r'remote\s+"(?P<name>[^"]+)"\Z')
# A folder under the DVC remote's URL: DVC's `gc --cloud` removes every object at the top of
# a remote it does not know (DVC 2's layout is 2/30 md5 folders, which dvlite's oids fill too).
SUBFOLDER = "dvlite"
# DVC option -> the backend's name, per protocol ("*": every protocol); None: no equivalent
_RENAMES: dict[str, dict[str, str | None]] = {
    "s3": {"endpointurl": "endpoint_url", "region": "client_kwargs.region_name",
           "access_key_id": "key", "secret_access_key": "secret", "session_token": "token",
           "profile": "profile", "use_ssl": "use_ssl", "acl": "s3_additional_kwargs.ACL",
           "credentialpath": None, "configpath": None},
    "gs": {"projectname": "project", "credentialpath": "token", "endpointurl": "endpoint_url"},
    "azure": {"account_name": "account_name", "account_key": "account_key",
              "connection_string": "connection_string", "sas_token": "sas_token",
              "tenant_id": "tenant_id", "client_id": "client_id",
              "client_secret": "client_secret"},
    "ssh": {"user": "username", "port": "port", "password": "password",
            "passphrase": "passphrase", "keyfile": "client_keys"},
    "http": {"user": "user", "password": "password", "auth": "auth"},
    "webdav": {"user": "user", "password": "password", "token": "token"},
}
_FAMILY = {"s3": "s3", "gs": "gs", "gcs": "gs", "azure": "azure", "az": "azure",
           "ssh": "ssh", "sftp": "ssh", "http": "http", "https": "http", "webdav": "webdav",
           "webdavs": "webdav"}
_SCHEMES = {"azure": "az"}  # DVC's scheme -> fsspec's


@dataclass(frozen=True)
class Setting:
    key: str  # dvlite config key
    value: str  # as `dvlite config KEY VALUE` takes it
    level: str  # "project" or "local"


@dataclass(frozen=True)
class DvcConfig:
    settings: tuple[Setting, ...]
    remotes: tuple[str, ...]  # the DVC remotes carried over
    cache_dir: str  # DVC's cache, absolute
    warnings: tuple[str, ...]


def parse(text: str) -> dict[str, dict[str, str]]:
    """The sections of a configobj file; quotes around values removed."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = _SECTION.match(line)
        if header:
            current = sections.setdefault(header["name"].strip(), {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            current[key.strip()] = value
    return sections


def _read(path: str) -> dict[str, dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read())
    except FileNotFoundError:
        return {}


def load(root: str, *, only: str | None = None) -> DvcConfig:
    """The dvlite settings DVC's config at ``root`` stands for; ``only``: that remote alone,
    made the default."""
    dvc_dir = os.path.join(root, ".dvc")
    layers = {"project": _read(os.path.join(dvc_dir, "config")),
              "local": _read(os.path.join(dvc_dir, "config.local"))}
    settings: list[Setting] = []
    warnings: list[str] = []
    remotes: list[str] = []
    cache_dir = os.path.join(dvc_dir, "cache")
    urls = {m["name"]: values["url"] for sections in layers.values()
            for section, values in sections.items()
            if (m := _REMOTE.match(section)) and values.get("url")}  # local's wins
    for level, sections in layers.items():
        for section, values in sections.items():
            remote = _REMOTE.match(section)
            if remote:
                name = remote["name"]
                if only is None or name == only:
                    remotes.append(name)
                    settings.extend(_remote(root, name, values, level,
                                            url=urls.get(name, ""), warnings=warnings))
            elif section == "core" and values.get("remote") and only is None:
                settings.append(Setting("core.remote", values["remote"], level))
            elif section == "core" and values.get("autostage"):
                settings.append(Setting("core.autostage", values["autostage"], level))
            elif section == "cache":
                if values.get("type"):
                    settings.append(Setting("cache.link", values["type"], level))
                if values.get("dir"):
                    cache_dir = os.path.normpath(os.path.join(dvc_dir, values["dir"]))
    if only is not None:
        if only not in remotes:
            raise ConfigError(f"DVC has no remote `{only}`", hint="`dvc remote list` names them")
        settings.append(Setting("core.remote", only, "project"))
    return DvcConfig(tuple(settings), tuple(dict.fromkeys(remotes)), cache_dir, tuple(warnings))


def _remote(root: str, name: str, values: dict[str, str], level: str, *, url: str,
            warnings: list[str]) -> list[Setting]:
    """One layer's settings of remote ``name``, whose URL (from any layer) is ``url``."""
    found: list[Setting] = []
    if values.get("url"):
        secret_url = has_credentials(values["url"])
        if secret_url and level == "project":
            warnings.append(f"remote `{name}`: its URL holds a password, and was in the "
                            "tracked `.dvc/config`; written to `.dvlite/config.local.toml` only")
        found.append(Setting(f"remote.{name}.url", _url(root, values["url"]),
                             "local" if secret_url else level))
    family = _FAMILY.get(protocol_of(url), "")
    renames = _RENAMES.get(family, {})
    for option, value in values.items():
        if option == "url":
            continue
        new = renames.get(option)
        if new is None:
            warnings.append(f"remote `{name}`: DVC option `{option}` has no dvlite equivalent; "
                            "not carried over")
            continue
        if option == "keyfile":  # asyncssh takes a list of key files
            value = f'["{value}"]'  # noqa: PLW2901
        secret = is_secret(new) or is_secret(option)
        if secret and level == "project":
            warnings.append(f"remote `{name}`: credential `{option}` was in the tracked "
                            "`.dvc/config`; written to `.dvlite/config.local.toml` only")
        found.append(Setting(f"remote.{name}.{new}", value, "local" if secret else level))
    return found


def _url(root: str, url: str) -> str:
    """DVC's URL, with dvlite's subfolder; a relative folder, which DVC reads from `.dvc/`,
    made relative to the repo root (where dvlite reads it from)."""
    scheme = protocol_of(url)
    if scheme == "file" and "://" not in url:
        folder = os.path.normpath(os.path.join(root, ".dvc", os.path.expanduser(url)))
        if not os.path.isabs(url):
            folder = os.path.relpath(folder, root)
        return os.path.join(folder, SUBFOLDER)
    if scheme in _SCHEMES:
        url = _SCHEMES[scheme] + url[len(scheme):]
    return url.rstrip("/") + "/" + SUBFOLDER
