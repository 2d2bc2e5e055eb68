"""`spinal dataset push`: upload a validated dataset to the Hugging Face Hub and tag it `v3.0`.

Uses huggingface_hub (the `spinal[hub]` extra); LeRobot finds a dataset's format through that tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spinal.dataset import layout
from spinal.dataset.errors import PushError
from spinal.dataset.validate import validate_dataset

IGNORE_PATTERNS = [".spinal-*", ".spinal-*/**", ".annotate_staging", ".annotate_staging/**", "**/.DS_Store"]


def push_dataset(
    root: Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    branch: str | None = None,
    api: Any | None = None,
    check: bool = True,
) -> str:
    """Validate, create the dataset repo if needed, upload the folder, tag the codebase version; returns the URL.

    `api` is an `huggingface_hub.HfApi` (made from `token` when None).
    """
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PushError(f"repo id {repo_id!r} must look like 'user/name'")
    root = Path(root)
    if check:
        report = validate_dataset(root)
        if not report.ok:
            first = report.violations[0]
            raise PushError(
                f"{root} has {len(report.violations)} validation problem(s), first: {first}; "
                "fix them (spinal dataset validate) before pushing"
            )
    if api is None:
        try:
            from huggingface_hub import HfApi
        except ImportError as exc:
            raise PushError("pushing needs huggingface_hub: pip install 'spinal[hub]'") from exc
        api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        api.upload_folder(
            folder_path=str(root),
            repo_id=repo_id,
            repo_type="dataset",
            revision=branch,
            ignore_patterns=IGNORE_PATTERNS,
            commit_message="Upload LeRobotDataset v3.0 recorded with spinal",
        )
        try:
            api.create_tag(
                repo_id, tag=layout.CODEBASE_VERSION, revision=branch, repo_type="dataset", exist_ok=True
            )
        except TypeError:  # older huggingface_hub without exist_ok
            api.create_tag(repo_id, tag=layout.CODEBASE_VERSION, revision=branch, repo_type="dataset")
    except PushError:
        raise
    except Exception as exc:  # the Hub client raises many types (HTTP, auth, validation)
        raise PushError(f"the Hub refused the upload of {repo_id}: {exc}") from exc
    return f"https://huggingface.co/datasets/{repo_id}"
