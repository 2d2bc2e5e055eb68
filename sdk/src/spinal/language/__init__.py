"""spinal.language: language annotations on LeRobotDataset v3 frames (schema, styles, resolvers, recipes).

Re-exports the public names; see sdk/docs/annotation.md for how a person uses them.
"""

from spinal.language.columns import FrameLanguage, WriteReport, iter_frame_language, write_language_columns
from spinal.language.errors import (
    AmbiguousResolverError,
    CameraFieldError,
    DatasetLayoutError,
    LanguageError,
    RecipeError,
    RenderError,
    ResolverError,
    RowError,
    UnknownStyleError,
)
from spinal.language.recipe import (
    DEFAULT_BINDINGS,
    PLACEHOLDER_RE,
    MessageTurn,
    TrainingRecipe,
    load_recipe,
    load_shipped_recipe,
)
from spinal.language.render import render_sample, resolve_task, select_recipe
from spinal.language.resolvers import (
    EMITTED_AT_TOLERANCE_S,
    active_at,
    emitted_at,
    nth_next,
    nth_prev,
    resolve_spec,
)
from spinal.language.rows import normalize_rows, validate_row
from spinal.language.schema import (
    EVENT_ROW_FIELDS,
    LANGUAGE_COLUMNS,
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    PERSISTENT_ROW_FIELDS,
    is_language_column,
    language_event_row_arrow_type,
    language_events_arrow_type,
    language_feature_info,
    language_persistent_arrow_type,
    language_persistent_row_arrow_type,
)
from spinal.language.styles import (
    CORE_STYLES,
    EVENT_ONLY_STYLES,
    PERSISTENT_STYLES,
    VIEW_DEPENDENT_STYLES,
    column_for_style,
    is_view_dependent_style,
    validate_camera_field,
)
from spinal.language.tools import DEFAULT_TOOLS, SAY_TOOL_SCHEMA, speech_atom

__all__ = [
    "CORE_STYLES",
    "DEFAULT_BINDINGS",
    "DEFAULT_TOOLS",
    "EMITTED_AT_TOLERANCE_S",
    "EVENT_ONLY_STYLES",
    "EVENT_ROW_FIELDS",
    "LANGUAGE_COLUMNS",
    "LANGUAGE_EVENTS",
    "LANGUAGE_PERSISTENT",
    "PERSISTENT_ROW_FIELDS",
    "PERSISTENT_STYLES",
    "PLACEHOLDER_RE",
    "SAY_TOOL_SCHEMA",
    "VIEW_DEPENDENT_STYLES",
    "AmbiguousResolverError",
    "CameraFieldError",
    "DatasetLayoutError",
    "FrameLanguage",
    "LanguageError",
    "MessageTurn",
    "RecipeError",
    "RenderError",
    "ResolverError",
    "RowError",
    "TrainingRecipe",
    "UnknownStyleError",
    "WriteReport",
    "active_at",
    "column_for_style",
    "emitted_at",
    "is_language_column",
    "is_view_dependent_style",
    "iter_frame_language",
    "language_event_row_arrow_type",
    "language_events_arrow_type",
    "language_feature_info",
    "language_persistent_arrow_type",
    "language_persistent_row_arrow_type",
    "load_recipe",
    "load_shipped_recipe",
    "normalize_rows",
    "nth_next",
    "nth_prev",
    "render_sample",
    "resolve_spec",
    "resolve_task",
    "select_recipe",
    "speech_atom",
    "validate_camera_field",
    "validate_row",
    "write_language_columns",
]
