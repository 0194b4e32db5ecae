"""Where `perpd run`'s configuration comes from: a TOML file, ``PERPD_*`` environment
variables and command-line flags, in rising precedence over the built-in defaults.

Every key is a field of `perpd.config.Config`, named the same in the file
(``funding_period_s = 3600``) and upper-cased in the environment
(``PERPD_FUNDING_PERIOD_S=3600``). A key that is not a field is refused with its name,
so a typo never silently leaves a default in force. The file is ``--config PATH``, else
``/etc/perpd/perpd.toml`` when it exists.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from perpd.chain._keyfile import KeyfileError, read_keyfile
from perpd.config import Config

DEFAULT_FILE = Path("/etc/perpd/perpd.toml")
ENV_PREFIX = "PERPD_"
# Not Config fields: the tests' and benchmarks' own switches (never refused).
ENV_OTHER = frozenset(
    {
        "PERPD_TEST_CHAIN",
        "PERPD_TEST_SUBMITTER_HANG",
        "PERPD_BENCH_URL",
        "PERPD_MONEY_VECTORS",
        "PERPD_PROPERTY_SEED",
    }
)
SECRET_KEYS = frozenset({"hermes_api_key"})  # never taken from a flag (visible in ps)

_TYPES = {f.name: str(f.type) for f in fields(Config)}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration that cannot be used, saying which key and where it came from."""


def _coerce(key: str, value: object, where: str) -> object:
    """``value`` as the type of Config field ``key`` (strings from the environment are
    parsed; TOML values must already have the type)."""
    kind = _TYPES[key]
    if kind == "tuple[tuple[str, int], ...]":  # a table of market -> micro-USDC
        if not isinstance(value, Mapping) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()
        ):
            raise ConfigError(f"{where}: {key} must be a table of market = micro-USDC integers")
        return tuple(sorted((str(k), int(v)) for k, v in value.items()))
    if isinstance(value, str) and where.startswith("environment"):
        try:
            if kind == "bool":
                low = value.strip().lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError
                return low in _TRUE
            if kind == "int":
                return int(value, 10)
            if kind == "float":
                return float(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a {kind}, not {value!r}") from None
        return value
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }.get(kind, False)
    if not ok:
        raise ConfigError(f"{where}: {key} must be a {kind}, not {type(value).__name__}")
    return float(value) if kind == "float" else value  # type: ignore[arg-type]


def _checked(values: Mapping[str, object], where: str) -> dict[str, object]:
    out = {}
    for key, value in values.items():
        if key not in _TYPES:
            raise ConfigError(f"{where}: unknown key {key!r}")
        out[key] = _coerce(key, value, where)
    return out


def from_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return _checked(data, f"config file {path}")


def from_env(environ: Mapping[str, str]) -> dict[str, object]:
    values = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name not in ENV_OTHER
    }
    unknown = sorted(k for k in values if k not in _TYPES)
    if unknown:
        raise ConfigError(f"environment: unknown variable {ENV_PREFIX}{unknown[0].upper()}")
    return _checked(values, "environment")


def build(
    flags: Mapping[str, Any],
    *,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    default_file: Path = DEFAULT_FILE,
) -> Config:
    """The Config of defaults < file < environment < ``flags`` (only flags given)."""
    environ = os.environ if environ is None else environ
    path = Path(config_path) if config_path else (default_file if default_file.exists() else None)
    values = from_file(path) if path is not None else {}
    values |= from_env(environ)
    secret = sorted(SECRET_KEYS & set(flags))
    if secret:
        raise ConfigError(f"{secret[0]} is a secret: set it in the config file or environment")
    values |= _checked(flags, "command line")
    try:
        config = Config(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    check_keyfiles(config)
    return config


def check_keyfiles(config: Config) -> None:
    """Refuse at start-up, saying why, a keypair file that is unreadable, not a keypair,
    or readable by group or others (before any service starts)."""
    for path in (config.authority_keypair, config.router_keypair):
        if path:
            try:
                read_keyfile(path)
            except KeyfileError as exc:
                raise ConfigError(str(exc)) from None
