"""Property-based requests from the published OpenAPI schema (schemathesis) never make the device API fail."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from spinal_edge.assembly import make_recorder
from spinal_edge.cameras import CameraSettings, SyntheticCamera
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.settings_store import SettingsStore
from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config
from spinal_edge.warnings_log import WarningLog

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedDaemon]:
    store = SettingsStore(data_dir_config(tmp_path))
    camera = SyntheticCamera("front", CameraSettings(kind="synthetic", width=64, height=48, fps=10))
    warnings = WarningLog()
    recorder = make_recorder(store.config, {"front": camera}, warnings)
    daemon = EdgeDaemon(
        store, arm=KinematicArm(leader=True), cameras={"front": camera}, recorder=recorder, warnings=warnings
    )
    with ServedDaemon(daemon) as s:
        yield s


def test_every_operation_has_its_own_id_and_the_schema_builds_without_warnings(served: ServedDaemon) -> None:
    served.app.openapi_schema = None  # build it here, where warnings are watched
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema = served.app.openapi()
    assert [str(w.message) for w in caught] == []
    ids = Counter(
        op["operationId"] for ops in schema["paths"].values() for op in ops.values() if "operationId" in op
    )
    assert ids and [i for i, n in ids.items() if n > 1] == []
    files = schema["paths"]["/api/episodes/{episode_id}/files/{name}"]
    assert files["get"]["operationId"] == "download_episode_file"
    assert files["head"]["operationId"] == "head_episode_file"


def test_generated_requests_never_cause_a_server_error(served: ServedDaemon, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{served.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {served.token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "10",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    # Exit code 0: no check failed (a warning about ids it could not guess is not a failure).
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and "failed" not in result.stdout.lower(), result.stdout[-3000:]
