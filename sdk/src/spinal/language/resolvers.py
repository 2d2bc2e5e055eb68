"""Resolvers: which language row is active, emitted, previous or next at a frame time `t`.

Used by recipe bindings through `resolve_spec`; `parse_resolver` also validates bindings when a recipe loads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from spinal.language.errors import AmbiguousResolverError, ResolverError
from spinal.language.rows import Row, parse_tool_call, row_sort_key
from spinal.language.schema import LANGUAGE_PERSISTENT
from spinal.language.styles import EVENT_ONLY_STYLES, column_for_style

# Persistent `emitted_at` accepts this much drift between a row's timestamp and `t` (frame_idx/fps rounding).
EMITTED_AT_TOLERANCE_S = 0.1
# Frame times are float32 on disk; callers may pass the same instant as a Python float.
_TIME_EPS = 1e-6

_SELECTORS = ("style", "role", "tool_name", "camera")
_KEYWORDS: dict[str, frozenset[str]] = {
    "active_at": frozenset(_SELECTORS),
    "emitted_at": frozenset(_SELECTORS),
    "nth_prev": frozenset((*_SELECTORS, "offset")),
    "nth_next": frozenset((*_SELECTORS, "offset")),
}
RESOLVER_NAMES: tuple[str, ...] = tuple(_KEYWORDS)
_NEEDS_PERSISTENT_STYLE = frozenset({"active_at", "nth_prev", "nth_next"})

_CALL_RE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<args>.*)\)$", re.DOTALL)
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ResolverCall:
    """A parsed resolver expression: its name, its selectors and (for nth_*) a positive offset."""

    name: str
    style: str | None = None
    role: str | None = None
    tool_name: str | None = None
    camera: str | None = None
    offset: int = 1

    def evaluate(self, t: float, *, persistent: Sequence[Row], events: Sequence[Row]) -> Row | None:
        """The one row this call selects at time `t`, or None."""
        kw = {"role": self.role, "tool_name": self.tool_name, "camera": self.camera}
        if self.name == "active_at":
            return active_at(t, persistent=persistent, style=self.style, **kw)
        if self.name == "emitted_at":
            return emitted_at(t, persistent=persistent, events=events, style=self.style, **kw)
        if self.name == "nth_prev":
            return nth_prev(t, persistent=persistent, style=self.style, offset=self.offset, **kw)
        return nth_next(t, persistent=persistent, style=self.style, offset=self.offset, **kw)


def _split_args(spec: str, args: str) -> list[str]:
    """Split on top-level commas; a quoted value may hold commas and the other quote character."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in args:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == ",":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if quote:
        raise ResolverError(f"Invalid resolver expression {spec!r}: unterminated {quote} quote.")
    tail = "".join(current).strip()
    if tail or parts:
        parts.append(tail)
    if any(p == "" for p in parts):
        raise ResolverError(f"Invalid resolver expression {spec!r}: empty argument between commas.")
    return parts


def _unquote(value: str) -> str | None:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if value in ("None", "null"):
        return None
    return value


@functools.lru_cache(maxsize=1024)
def parse_resolver(spec: str) -> ResolverCall:
    """Parse `name(t, key=value, ...)`; quoted values may contain commas; bad input raises `ResolverError`."""
    if not isinstance(spec, str):
        raise ResolverError(f"A resolver expression must be a string; got {type(spec).__name__}.")
    match = _CALL_RE.match(spec.strip())
    if not match:
        raise ResolverError(
            f"Invalid resolver expression {spec!r}; write it like 'active_at(t, style=subtask)'."
        )
    name = match["name"]
    if name not in _KEYWORDS:
        raise ResolverError(
            f"Unknown language resolver {name!r} in {spec!r}; use one of {list(RESOLVER_NAMES)}."
        )
    allowed = _KEYWORDS[name]
    values: dict[str, object] = {}
    seen_t = False
    for arg in _split_args(spec, match["args"]):
        if "=" not in arg:
            if arg == "t" and not seen_t:
                seen_t = True
                continue
            raise ResolverError(
                f"Invalid resolver argument {arg!r} in {spec!r}; arguments are 't' or key=value."
            )
        key, _, raw = arg.partition("=")
        key, raw = key.strip(), raw.strip()
        if not _KEY_RE.match(key):
            raise ResolverError(f"Invalid resolver keyword {key!r} in {spec!r}.")
        if key not in allowed:
            raise ResolverError(
                f"Unknown keyword {key!r} for resolver {name!r} in {spec!r}; use one of {sorted(allowed)}."
            )
        if key in values:
            raise ResolverError(f"Keyword {key!r} is given twice in {spec!r}.")
        if key == "offset":
            try:
                offset = int(_unquote(raw) or "")
            except ValueError:
                raise ResolverError(f"offset must be a positive integer in {spec!r}; got {raw!r}.") from None
            if offset < 1:
                # A negative offset would silently flip nth_prev into nth_next; name the right resolver instead.
                raise ResolverError(
                    f"offset must be a positive integer in {spec!r}; got {offset} (use nth_prev/nth_next for direction)."
                )
            values[key] = offset
        else:
            values[key] = _unquote(raw)
    call = ResolverCall(name=name, **values)  # type: ignore[arg-type]
    if call.style is not None:
        column_for_style(call.style)  # raises for unknown styles
    if name in _NEEDS_PERSISTENT_STYLE:
        _require_persistent_style(name, call.style)
    return call


def resolve_spec(spec: str, *, persistent: Sequence[Row], events: Sequence[Row], t: float) -> Row | None:
    """Evaluate a resolver expression at time `t` over one frame's rows."""
    return parse_resolver(spec).evaluate(t, persistent=persistent, events=events)


def _require_persistent_style(resolver: str, style: str | None) -> None:
    if style is None:
        raise ResolverError(f"{resolver} requires a persistent style; got style=None.")
    if column_for_style(style) != LANGUAGE_PERSISTENT:
        kind = "event-only" if style in EVENT_ONLY_STYLES else "an event style"
        raise ResolverError(f"{resolver} requires a persistent style; {style!r} is {kind} (use emitted_at).")


def _has_tool(row: Row, name: str) -> bool:
    for call in row.get("tool_calls") or ():
        call = parse_tool_call(call)
        if isinstance(call, dict):
            function = call.get("function")
            if isinstance(function, dict) and function.get("name") == name:
                return True
    return False


def _matching_rows(
    rows: Sequence[Row], *, style: str | None, role: str | None, tool_name: str | None, camera: str | None
) -> list[Row]:
    out = []
    for row in rows:
        if style is not None and row.get("style") != style:
            continue
        if role is not None and row.get("role") != role:
            continue
        if camera is not None and row.get("camera") != camera:
            continue
        if tool_name is not None and not _has_tool(row, tool_name):
            continue
        out.append(row)
    return out


def _select_one(rows: list[Row], resolver: str, t: float, **selectors: object) -> Row | None:
    if not rows:
        return None
    if len(rows) > 1:
        given = ", ".join(f"{k}={v}" for k, v in selectors.items() if v is not None)
        raise AmbiguousResolverError(
            f"Ambiguous resolver {resolver}(t={t:g}, {given}): {len(rows)} rows match; "
            "add role=, camera= or tool_name= to pick exactly one."
        )
    return rows[0]


def active_at(
    t: float,
    *,
    persistent: Sequence[Row],
    style: str | None,
    role: str | None = None,
    tool_name: str | None = None,
    camera: str | None = None,
) -> Row | None:
    """The persistent row in force at `t`: the latest emission at or before `t` (None before the first)."""
    _require_persistent_style("active_at", style)
    rows = _matching_rows(persistent, style=style, role=role, tool_name=tool_name, camera=camera)
    rows = [r for r in rows if float(r["timestamp"]) <= t + _TIME_EPS]
    if rows:
        latest = max(float(r["timestamp"]) for r in rows)
        rows = [r for r in rows if float(r["timestamp"]) == latest]
    return _select_one(rows, "active_at", t, style=style, role=role, tool_name=tool_name, camera=camera)


def emitted_at(
    t: float,
    *,
    persistent: Sequence[Row],
    events: Sequence[Row],
    style: str | None = None,
    role: str | None = None,
    tool_name: str | None = None,
    camera: str | None = None,
) -> Row | None:
    """The row emitted at `t`: events on this frame, or a persistent row within the drift tolerance."""
    selectors = {"style": style, "role": role, "tool_name": tool_name, "camera": camera}
    if column_for_style(style) == LANGUAGE_PERSISTENT:
        rows = [
            r
            for r in _matching_rows(persistent, **selectors)
            if abs(float(r["timestamp"]) - t) <= EMITTED_AT_TOLERANCE_S
        ]
        if rows:
            # Two emissions a few frames apart both fall in the window: the one nearest `t` is the emission.
            nearest = min(abs(float(r["timestamp"]) - t) for r in rows)
            rows = [r for r in rows if abs(float(r["timestamp"]) - t) == nearest]
    else:
        rows = _matching_rows(events, **selectors)
    return _select_one(rows, "emitted_at", t, **selectors)


def _nth_relative(
    resolver: str,
    t: float,
    signed_offset: int,
    persistent: Sequence[Row],
    style: str | None,
    role: str | None,
    tool_name: str | None,
    camera: str | None,
) -> Row | None:
    _require_persistent_style(resolver, style)
    if abs(signed_offset) < 1:
        raise ResolverError(f"{resolver} offset must be non-zero.")
    rows = sorted(
        _matching_rows(persistent, style=style, role=role, tool_name=tool_name, camera=camera),
        key=row_sort_key,
    )
    if not rows:
        return None
    anchor = -1
    for i, row in enumerate(rows):
        if float(row["timestamp"]) <= t + _TIME_EPS:
            anchor = i
    # Before the first emission only "next" makes sense: the first row is the next one.
    before_first = signed_offset - 1 if signed_offset > 0 else -1
    target = anchor + signed_offset if anchor >= 0 else before_first
    if 0 <= target < len(rows):
        return rows[target]
    return None


def nth_prev(
    t: float,
    *,
    persistent: Sequence[Row],
    style: str | None,
    offset: int = 1,
    role: str | None = None,
    tool_name: str | None = None,
    camera: str | None = None,
) -> Row | None:
    """The row `offset` emissions before the one active at `t` (None when there is none)."""
    if offset < 1:
        raise ResolverError(f"nth_prev offset must be non-zero and positive; got {offset}.")
    return _nth_relative("nth_prev", t, -offset, persistent, style, role, tool_name, camera)


def nth_next(
    t: float,
    *,
    persistent: Sequence[Row],
    style: str | None,
    offset: int = 1,
    role: str | None = None,
    tool_name: str | None = None,
    camera: str | None = None,
) -> Row | None:
    """The row `offset` emissions after the one active at `t`; before the first row, the first is next."""
    if offset < 1:
        raise ResolverError(f"nth_next offset must be non-zero and positive; got {offset}.")
    return _nth_relative("nth_next", t, offset, persistent, style, role, tool_name, camera)
