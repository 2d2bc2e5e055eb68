"""The error tree of `spinal.language`: one base class, one subclass per kind of mistake.

Raised by the schema, resolvers, recipes, renderer and the column writer; callers catch `LanguageError`.
"""

from __future__ import annotations


class LanguageError(ValueError):
    """Base of every language-annotation error (a `ValueError`, so generic handlers keep working)."""


class UnknownStyleError(LanguageError):
    """A row or selector names a style that is not in the style registry."""


class CameraFieldError(LanguageError):
    """A row's `camera` disagrees with its style (view-dependent styles need one, the others must not)."""


class RowError(LanguageError):
    """A language row is malformed (bad role, no content or tool calls, wrong column)."""


class ResolverError(LanguageError):
    """A resolver expression does not parse, names an unknown resolver or keyword, or cannot be evaluated."""


class AmbiguousResolverError(ResolverError):
    """A resolver matched more than one row; add `role=`, `camera=` or `tool_name=` to pick one."""


class RecipeError(LanguageError):
    """A training recipe is invalid (unknown binding, no target, bad blend, bad YAML)."""


class RenderError(LanguageError):
    """A sample could not be rendered through a recipe (unknown placeholder, inconsistent output)."""


class DatasetLayoutError(LanguageError):
    """A dataset on disk does not have the LeRobotDataset v3 layout the language columns need."""
