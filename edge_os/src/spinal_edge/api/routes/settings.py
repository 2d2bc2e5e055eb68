"""Runtime settings: read the configuration in force, change it (validated, saved, applied), or reset it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from spinal_edge.api.auth import require_principal
from spinal_edge.api.deps import get_daemon
from spinal_edge.api.models import ErrorBody, SettingsView
from spinal_edge.daemon import EdgeDaemon

router = APIRouter(prefix="/api/settings", tags=["settings"], dependencies=[Depends(require_principal)])


def _view(daemon: EdgeDaemon) -> SettingsView:
    store = daemon.store
    return SettingsView(
        config=store.config.model_dump(mode="json"), overlay=store.overlay, overlay_error=store.overlay_error
    )


@router.get("", response_model=SettingsView)
def get_settings(daemon: EdgeDaemon = Depends(get_daemon)) -> SettingsView:
    return _view(daemon)


@router.patch("", response_model=SettingsView, responses={422: {"model": ErrorBody}})
def patch_settings(
    patch: dict[str, Any] = Body(
        ..., examples=[{"loop": {"rate_hz": 50}, "inference": {"task": "pick up the cube"}}]
    ),
    daemon: EdgeDaemon = Depends(get_daemon),
) -> SettingsView:
    """Merge a patch (edge.toml's shape; null removes a saved value); 422 keeps the previous settings."""
    daemon.store.update(patch)
    return _view(daemon)


@router.delete("", response_model=SettingsView)
def reset_settings(daemon: EdgeDaemon = Depends(get_daemon)) -> SettingsView:
    """Forget every runtime change: edge.toml alone is in force again."""
    daemon.store.reset()
    return _view(daemon)
