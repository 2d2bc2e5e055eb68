"""The style registry: which styles exist, which column each goes to, which ones need a camera.

Used by the row validator, the resolvers, the column writer and the annotation pipeline's validator.
"""

from __future__ import annotations

from spinal.language.errors import CameraFieldError, UnknownStyleError
from spinal.language.schema import LANGUAGE_EVENTS, LANGUAGE_PERSISTENT, LanguageColumn

PERSISTENT_STYLES: frozenset[str] = frozenset({"subtask", "plan", "memory", "motion", "task_aug"})
EVENT_ONLY_STYLES: frozenset[str] = frozenset({"interjection", "vqa", "trace"})
CORE_STYLES: frozenset[str] = PERSISTENT_STYLES | EVENT_ONLY_STYLES
# Motion is described in the robot's frame, not in pixels, so only vqa and trace are tied to a camera.
VIEW_DEPENDENT_STYLES: frozenset[str] = frozenset({"vqa", "trace"})

# Extension point: downstream code may register extra styles with `register_style` before routing rows.
EXTENDED_STYLES: dict[str, LanguageColumn] = {}


def style_registry() -> frozenset[str]:
    """Every known style: the core ones plus the registered extensions."""
    return CORE_STYLES | frozenset(EXTENDED_STYLES)


def register_style(style: str, column: LanguageColumn) -> None:
    """Add an extended style routed to `column`; re-registering a core style is refused."""
    if style in CORE_STYLES:
        raise UnknownStyleError(f"Style {style!r} is a core style; pick another name for an extension.")
    if column not in (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS):
        raise UnknownStyleError(
            f"Column {column!r} is not a language column; use {LANGUAGE_PERSISTENT!r} or {LANGUAGE_EVENTS!r}."
        )
    EXTENDED_STYLES[style] = column


def column_for_style(style: str | None) -> LanguageColumn:
    """The column a row of `style` lives in; `None` is the style-less tool-call (speech) atom, an event."""
    if style is None:
        return LANGUAGE_EVENTS
    if style in PERSISTENT_STYLES:
        return LANGUAGE_PERSISTENT
    if style in EVENT_ONLY_STYLES:
        return LANGUAGE_EVENTS
    if style in EXTENDED_STYLES:
        return EXTENDED_STYLES[style]
    raise UnknownStyleError(
        f"Unknown language style: {style!r}; use one of {sorted(style_registry())} or register it first."
    )


def is_view_dependent_style(style: str | None) -> bool:
    """True for styles whose content is grounded in one camera's pixels (vqa, trace)."""
    return style in VIEW_DEPENDENT_STYLES


def validate_camera_field(style: str | None, camera: str | None) -> None:
    """Raise `CameraFieldError` unless view-dependent rows name a camera and all other rows leave it null."""
    if is_view_dependent_style(style):
        if not camera:
            raise CameraFieldError(
                f"Rows of view-dependent style {style!r} need a camera: set `camera` to a non-empty "
                "observation.images.* feature key."
            )
        return
    if camera is not None:
        raise CameraFieldError(f"Rows of style {style!r} must have camera=None; got camera={camera!r}.")
