"""Reading `edge.toml` into an `EdgeConfig`, and turning every validation failure into one clear sentence.

Used by `spinal-edge run`, `spinal-edge config check` and the settings store (runtime overlay).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from spinal_edge.errors import ConfigError
from spinal_edge.settings import EdgeConfig

_MAX_CONFIG_BYTES = 1 << 20


def load_config_file(path: Path) -> tuple[EdgeConfig, dict[str, Any]]:
    """Read and validate a TOML config; returns the config and the raw table (the base of the overlay)."""
    raw = read_toml(path)
    return validate_config(raw, source=str(path)), raw


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML table of `path`; a missing, unreadable or malformed file raises ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: the config file does not exist; create it or pass --config with the right path.",
            source=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: the config file cannot be read ({exc.strerror}); check its permissions.",
            source=str(path),
        ) from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: the config file is larger than 1 MiB; it is not a config file.", source=str(path)
        )
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: the config file is not UTF-8 text; save it as UTF-8.", source=str(path)
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: this is not valid TOML ({exc}); fix the syntax there.", source=str(path)
        ) from None


def validate_config(raw: dict[str, Any], *, source: str) -> EdgeConfig:
    """Validate a raw table; the first problem becomes a ConfigError naming the source, the field and the fix."""
    try:
        return EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, source) from None


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(str(p) for p in err["loc"])
    field = toml_field_name(loc)
    if err["type"] == "extra_forbidden":
        known = ", ".join(_known_fields(loc[:-1]))
        return ConfigError(
            f"{source}: {field} is not a known setting; remove it or check its spelling (known here: {known}).",
            source=source,
            field=field,
        )
    problem = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    shown = "" if isinstance(value, dict) or value is None else f" = {_short_repr(value)}"
    if not loc:
        # A check across sections names its fields itself.
        return ConfigError(f"{source}: {problem}", source=source)
    fix = _fix_for(loc)
    # Section-level checks carry their own fix in the message ("...; set X or Y").
    message = (
        f"{source}: {field}{shown} is invalid ({problem}); {fix}."
        if fix
        else f"{source}: {field}: {problem}."
    )
    return ConfigError(message, source=source, field=field)


def toml_field_name(loc: tuple[str, ...]) -> str:
    """How a person finds a field in the file: `[http] port`, `[cameras.front] fps`, `data_dir`."""
    if not loc:
        return "the top level"
    if len(loc) == 1:
        return loc[0] if loc[0] in EdgeConfig.model_fields and _is_leaf(loc[0]) else f"[{loc[0]}]"
    if loc[0] == "cameras":
        section = f"[cameras.{loc[1]}]"
        return section if len(loc) == 2 else f"{section} {'.'.join(loc[2:])}"
    return f"[{loc[0]}] {'.'.join(loc[1:])}"


def _is_leaf(name: str) -> bool:
    annotation = EdgeConfig.model_fields[name].annotation
    return not (isinstance(annotation, type) and issubclass(annotation, BaseModel)) and name != "cameras"


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = EdgeConfig
    i = 0
    while i < len(loc):
        field = model.model_fields.get(loc[i])
        if field is None:
            return None
        if loc[i] == "cameras" and model is EdgeConfig:
            from spinal_edge.settings import CameraSettings

            if len(loc) <= i + 1:
                return None
            model = CameraSettings
            i += 2
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            i += 1
            continue
        return None
    return model


def _known_fields(loc: tuple[str, ...]) -> list[str]:
    model = _model_at(loc)
    return sorted(model.model_fields) if model is not None else []


def _fix_for(loc: tuple[str, ...]) -> str:
    if not loc:
        return ""
    # A model-level check (e.g. [inference] engine/model_path) reports the section; walk to the deepest field.
    for cut in range(len(loc), 0, -1):
        model = _model_at(loc[: cut - 1]) if cut > 1 else EdgeConfig
        if model is None:
            continue
        field = model.model_fields.get(loc[cut - 1])
        extra = field.json_schema_extra if field is not None else None
        if isinstance(extra, dict) and isinstance(extra.get("fix"), str):
            return str(extra["fix"])
        if field is None:
            break
    return ""


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
