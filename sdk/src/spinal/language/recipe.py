"""Training recipes: YAML files that say which chat messages to render from a frame's language rows.

A recipe is a list of message turns or a weighted blend of such lists; `load_recipe` validates it fully.
Used by `render_sample`, `spinal render` and the recipes shipped in `spinal.recipes`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from spinal.language.errors import RecipeError, ResolverError
from spinal.language.resolvers import parse_resolver

MessageRole = Literal["user", "assistant", "system", "tool"]
MessageStream = Literal["high_level", "low_level"]
_VALID_ROLES: tuple[str, ...] = get_args(MessageRole)
_VALID_STREAMS: tuple[str, ...] = get_args(MessageStream)

PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TASK_BINDING = "task"
# Placeholder a `per_camera` blend component uses for the camera key it is expanded for.
CAMERA_PLACEHOLDER = "camera"

DEFAULT_BINDINGS: dict[str, str] = {
    "subtask": "active_at(t, style=subtask)",
    "memory": "active_at(t, style=memory)",
    "plan": "active_at(t, style=plan)",
    "speech": "emitted_at(t, role=assistant, tool_name=say)",
    "interjection": "emitted_at(t, style=interjection)",
    "vqa": "emitted_at(t, style=vqa, role=assistant)",
    "vqa_query": "emitted_at(t, style=vqa, role=user)",
}

_TURN_KEYS = frozenset({"role", "content", "stream", "target", "if_present", "tool_calls_from"})
_RECIPE_KEYS = frozenset({"messages", "bindings", "blend", "weight", "per_camera"})


def placeholders(text: str) -> set[str]:
    """The `${name}` placeholders in a string."""
    return set(PLACEHOLDER_RE.findall(text))


@dataclass
class MessageTurn:
    """One chat message of a recipe: who speaks, what (text or multimodal blocks), on which stream."""

    role: str
    content: str | list[dict[str, Any]] | None = None
    stream: str | None = None
    target: bool = False
    if_present: str | None = None
    tool_calls_from: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _VALID_ROLES:
            raise RecipeError(f"Message role {self.role!r} is invalid; use one of {list(_VALID_ROLES)}.")
        if self.stream is None:
            raise RecipeError(
                f"Every message turn needs a stream; set `stream:` to one of {list(_VALID_STREAMS)}."
            )
        if self.stream not in _VALID_STREAMS:
            raise RecipeError(
                f"Message stream {self.stream!r} is invalid; use one of {list(_VALID_STREAMS)}."
            )
        if not isinstance(self.target, bool):
            raise RecipeError(f"Message `target` must be true or false; got {self.target!r}.")
        for key in ("if_present", "tool_calls_from"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not _NAME_RE.match(value)):
                raise RecipeError(f"Message `{key}` must be a binding name; got {value!r}.")
        if self.content is None:
            if self.tool_calls_from is None:
                raise RecipeError("A message turn without content needs `tool_calls_from`.")
            return
        if isinstance(self.content, list):
            for block in self.content:
                if not isinstance(block, dict) or "type" not in block:
                    raise RecipeError(f"Every content block must be a mapping with a `type`; got {block!r}.")
        elif not isinstance(self.content, str):
            raise TypeError(
                f"Message content must be a string or a list of blocks; got {type(self.content).__name__}."
            )

    @classmethod
    def from_dict(cls, data: Any) -> MessageTurn:
        """Build a turn from a YAML mapping; unknown keys are an error, not silently dropped."""
        if not isinstance(data, dict):
            raise RecipeError(f"A message turn must be a mapping; got {data!r}.")
        unknown = set(data) - _TURN_KEYS
        if unknown:
            raise RecipeError(f"Unknown message turn key(s) {sorted(unknown)}; use {sorted(_TURN_KEYS)}.")
        return cls(**data)

    def referenced_bindings(self) -> set[str]:
        """Bindings this turn reads: placeholders in its text and blocks, `if_present`, `tool_calls_from`."""
        names: set[str] = set()
        if isinstance(self.content, str):
            names |= placeholders(self.content)
        elif isinstance(self.content, list):
            for block in self.content:
                for value in block.values():
                    if isinstance(value, str):
                        names |= placeholders(value)
        names |= {n for n in (self.if_present, self.tool_calls_from) if n}
        return names

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "stream": self.stream}
        if self.content is not None:
            out["content"] = copy.deepcopy(self.content)
        if self.target:
            out["target"] = True
        if self.if_present:
            out["if_present"] = self.if_present
        if self.tool_calls_from:
            out["tool_calls_from"] = self.tool_calls_from
        return out


@dataclass
class TrainingRecipe:
    """A message recipe (`messages` + `bindings`) or a weighted `blend` of message recipes."""

    messages: list[MessageTurn] | None = None
    bindings: dict[str, str] = field(default_factory=dict)
    blend: dict[str, TrainingRecipe] | None = None
    weight: float | None = None
    # spinal extension: expand this blend component once per dataset camera (see `for_cameras`).
    per_camera: bool = False

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.blend is None):
            raise RecipeError("A recipe sets exactly one of `messages` or `blend`.")
        if not isinstance(self.bindings, dict):
            raise RecipeError(
                f"Recipe `bindings` must be a mapping of name to resolver; got {self.bindings!r}."
            )
        for name, spec in self.bindings.items():
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise RecipeError(f"Binding name {name!r} is invalid; use letters, digits and underscores.")
            if name == TASK_BINDING:
                raise RecipeError("`task` is a reserved binding (the episode's task); pick another name.")
            try:
                parse_resolver(spec)
            except ResolverError as exc:
                raise RecipeError(f"Binding {name!r}: {exc}") from None
        if self.blend is not None:
            self._validate_blend()
        else:
            self._validate_messages()

    def _validate_messages(self) -> None:
        assert self.messages is not None
        if not self.messages:
            raise RecipeError("A message recipe needs at least one message turn.")
        known = set(DEFAULT_BINDINGS) | set(self.bindings) | {TASK_BINDING}
        if self.per_camera:
            known.add(CAMERA_PLACEHOLDER)
        referenced = set().union(*(turn.referenced_bindings() for turn in self.messages))
        unknown = referenced - known
        if unknown:
            raise RecipeError(f"MessageTurn references unknown binding(s): {sorted(unknown)}.")
        # A flow-only low_level turn is supervision too: the action expert trains on it.
        if not any(turn.target or turn.stream == "low_level" for turn in self.messages):
            raise RecipeError("Message recipes must contain at least one target turn (or a low_level turn).")

    def _validate_blend(self) -> None:
        assert self.blend is not None
        if not self.blend:
            raise RecipeError("A blend recipe needs at least one component.")
        for name, component in self.blend.items():
            if component.blend is not None:
                raise RecipeError(f"Blend component {name!r} cannot itself define a blend.")
            if component.messages is None:
                raise RecipeError(f"Blend component {name!r} needs `messages`.")
            weight = component.weight
            if weight is None or isinstance(weight, bool) or not isinstance(weight, int | float):
                raise RecipeError(f"Blend component {name!r} needs a numeric `weight`.")
            if not weight > 0:
                raise RecipeError(f"Blend component {name!r} weight must be > 0; got {weight}.")

    @classmethod
    def from_dict(cls, data: Any) -> TrainingRecipe:
        """Build a recipe (and its blend components) from a YAML mapping."""
        if not isinstance(data, dict):
            raise RecipeError("Recipe YAML must contain a mapping at the top level.")
        unknown = set(data) - _RECIPE_KEYS
        if unknown:
            raise RecipeError(f"Unknown recipe key(s) {sorted(unknown)}; use {sorted(_RECIPE_KEYS)}.")
        messages = data.get("messages")
        if messages is not None:
            if not isinstance(messages, list):
                raise RecipeError("Recipe `messages` must be a list of message turns.")
            messages = [MessageTurn.from_dict(m) for m in messages]
        blend = data.get("blend")
        if blend is not None:
            if not isinstance(blend, dict):
                raise RecipeError("Recipe `blend` must be a mapping of component name to recipe.")
            shared = data.get("bindings") or {}
            blend = {
                str(name): cls.from_dict(_with_shared_bindings(component, shared, name))
                for name, component in blend.items()
            }
        return cls(
            messages=messages,
            bindings=dict(data.get("bindings") or {}),
            blend=blend,
            weight=data.get("weight"),
            per_camera=bool(data.get("per_camera", False)),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainingRecipe:
        """Load and validate a recipe file."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RecipeError(f"Cannot read recipe {path}: {exc.strerror}.") from None
        except yaml.YAMLError as exc:
            raise RecipeError(f"Recipe {path} is not valid YAML: {exc}.") from None
        try:
            return cls.from_dict(data)
        except RecipeError as exc:
            raise RecipeError(f"{path}: {exc}") from None

    def components(self) -> dict[str, TrainingRecipe]:
        """The blend components, or this recipe alone under the name `main`."""
        return dict(self.blend) if self.blend is not None else {"main": self}

    def needs_cameras(self) -> bool:
        """True while a `per_camera` component still has to be expanded with `for_cameras`."""
        return self.per_camera or any(c.per_camera for c in (self.blend or {}).values())

    def for_cameras(self, camera_keys: list[str]) -> TrainingRecipe:
        """Expand `per_camera` components once per camera key, splitting their weight evenly."""
        if not self.needs_cameras():
            return self
        if not camera_keys:
            raise RecipeError("This recipe has per-camera components but the dataset has no camera keys.")
        parts = self.components()
        blend: dict[str, TrainingRecipe] = {}
        for name, component in parts.items():
            if not component.per_camera:
                blend[name] = component
                continue
            weight = (component.weight or 1.0) / len(camera_keys)
            for camera in camera_keys:
                blend[f"{name}[{camera}]"] = _expand_camera(component, camera, weight)
        return TrainingRecipe(blend=blend)

    def referenced_cameras(self) -> set[str]:
        """Camera keys the recipe names in image blocks (`feature:`) and in `camera=` selectors."""
        cameras: set[str] = set()
        for component in self.components().values():
            for spec in component.bindings.values():
                camera = parse_resolver(spec).camera
                if camera and not placeholders(camera):
                    cameras.add(camera)
            for turn in component.messages or []:
                if isinstance(turn.content, list):
                    for block in turn.content:
                        feature = block.get("feature")
                        if isinstance(feature, str) and not placeholders(feature):
                            cameras.add(feature)
        return cameras

    def check_cameras(self, camera_keys: list[str]) -> None:
        """Raise `RecipeError` when the recipe names a camera the dataset does not record."""
        missing = self.referenced_cameras() - set(camera_keys)
        if missing:
            raise RecipeError(
                f"The recipe names camera(s) {sorted(missing)} but the dataset records {sorted(camera_keys)}; "
                "rename them in the recipe or mark the component `per_camera: true` with ${camera}."
            )


def _with_shared_bindings(component: Any, shared: Any, name: object) -> Any:
    if not isinstance(component, dict):
        raise RecipeError(f"Blend component {name!r} must be a mapping.")
    if not shared:
        return component
    if not isinstance(shared, dict):
        raise RecipeError("Recipe `bindings` must be a mapping of name to resolver.")
    return {**component, "bindings": {**shared, **(component.get("bindings") or {})}}


def _substitute_camera(value: Any, camera: str) -> Any:
    if isinstance(value, str):
        return value.replace("${" + CAMERA_PLACEHOLDER + "}", camera)
    if isinstance(value, list):
        return [_substitute_camera(v, camera) for v in value]
    if isinstance(value, dict):
        return {k: _substitute_camera(v, camera) for k, v in value.items()}
    return value


def _expand_camera(component: TrainingRecipe, camera: str, weight: float) -> TrainingRecipe:
    messages = [
        MessageTurn.from_dict(_substitute_camera(t.to_dict(), camera)) for t in component.messages or []
    ]
    bindings = {k: _substitute_camera(v, camera) for k, v in component.bindings.items()}
    return TrainingRecipe(messages=messages, bindings=bindings, weight=weight)


def load_recipe(path: str | Path) -> TrainingRecipe:
    """Load a recipe YAML file (same as `TrainingRecipe.from_yaml`)."""
    return TrainingRecipe.from_yaml(path)


def shipped_recipe_names() -> list[str]:
    """Names of the recipes that ship with the SDK (`spinal.recipes`)."""
    root = resources.files("spinal.recipes")
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def load_shipped_recipe(name: str) -> TrainingRecipe:
    """Load a recipe shipped with the SDK by name (e.g. `subtasks_vqa`)."""
    names = shipped_recipe_names()
    if name.removesuffix(".yaml") not in names:
        raise RecipeError(f"No shipped recipe named {name!r}; choose one of {names} or pass a file path.")
    resource = resources.files("spinal.recipes") / f"{name.removesuffix('.yaml')}.yaml"
    with resources.as_file(resource) as path:
        return load_recipe(path)


def resolve_recipe(name_or_path: str | Path) -> TrainingRecipe:
    """A recipe from a file path, or from the shipped recipes when no such file exists."""
    path = Path(name_or_path)
    if path.exists():
        return load_recipe(path)
    return load_shipped_recipe(str(name_or_path))
