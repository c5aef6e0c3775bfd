"""Task settings: dataclasses filled from defaults, a TOML file, and ``--set key=value``.

    config = load_config(PretrainConfig, "pretrain.toml", ["steps=200", "lr=3e-4"])

A TOML file holds flat ``key = value`` lines (tables are flattened: ``[model] d_model = 64`` is
the key ``d_model``). Unknown keys and values of the wrong type are errors that list what is
allowed.
"""

import dataclasses
import types
import typing
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "load_config", "parse_value", "read_toml"]


class ConfigError(ValueError):
    """A settings file or override that does not fit the task's settings."""


def _field_types(cls):
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _base_types(annotation):
    """The concrete types an annotation allows: ``int | None`` -> (int, NoneType)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)


def parse_value(cls, key, text):
    """Convert the text of ``--set key=text`` to the type of ``cls``'s field ``key``."""
    fields = _field_types(cls)
    if key not in fields:
        raise ConfigError(f"--set {key}=...: {cls.__name__} has no setting {key!r}; settings: "
                          f"{', '.join(sorted(fields))}")
    allowed = _base_types(fields[key])
    if text.lower() in ("none", "null") and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
        elif kind in (int, float, str):
            try:
                return kind(text)
            except ValueError:
                continue
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise ConfigError(f"--set {key}={text}: expected {names}")


def _flatten(table, prefix=""):
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = value
    return flat


def _check_value(cls, key, value, fields, source):
    if key not in fields:
        raise ConfigError(f"{source}: {cls.__name__} has no setting {key!r}; settings: "
                          f"{', '.join(sorted(fields))}")
    allowed = _base_types(fields[key])
    if value is None or isinstance(value, allowed) and not (isinstance(value, bool) and
                                                            bool not in allowed):
        return value
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise ConfigError(f"{source}: {key} = {value!r} should be {names}")


def read_toml(path, who="config"):
    """The table of the TOML file ``path``; a missing file or invalid TOML is an error whose
    message starts with ``who``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{who}: no settings file at {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{who}: {path} is not valid TOML ({error})") from None


def load_config(cls, path=None, overrides=(), **values):
    """An instance of the dataclass ``cls``: its defaults, then the TOML file ``path``, then
    keyword ``values``, then the ``key=value`` strings of ``overrides``."""
    fields = _field_types(cls)
    settings = {}
    if path is not None:
        for key, value in _flatten(read_toml(path)).items():
            settings[key] = _check_value(cls, key, value, fields, str(path))
    for key, value in values.items():
        settings[key] = _check_value(cls, key, value, fields, "settings")
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"--set {override}: expected key=value")
        key, text = override.split("=", 1)
        settings[key.strip()] = parse_value(cls, key.strip(), text.strip())
    try:
        return cls(**settings)
    except TypeError as error:
        raise ConfigError(f"{cls.__name__}: {error}") from None
