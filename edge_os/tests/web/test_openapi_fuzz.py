"""A schemathesis run against the device API's published OpenAPI schema: generated requests (with the API token)
never produce a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


@pytest.fixture(scope="module")
def fuzzed_device(tmp_path_factory):
    from spinal_edge.assembly import build_daemon
    from spinal_edge.settings_store import SettingsStore
    from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config

    data = tmp_path_factory.mktemp("fuzz")
    raw = data_dir_config(
        data,
        inference={"engine": "none", "model_id": "so101-demo", "endpoints": ["tcp/127.0.0.1:9"]},
        cameras={"front": {"kind": "synthetic", "width": 96, "height": 64, "fps": 5}},
        web={"power": "fake"},
        network={"backend": "fake"},
    )
    with ServedDaemon(build_daemon(SettingsStore(raw), arm=KinematicArm())) as served:
        yield served


SKIPPED = {
    # Reaches out to a policy server with a timeout per example; covered by the browser test.
    "/api/inference/test",
}


@pytest.mark.slow
def test_device_api_never_answers_with_a_server_error(fuzzed_device):
    schema = schemathesis.openapi.from_url(f"{fuzzed_device.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed_device.token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:400]}")
    assert operations >= 20
    assert not failures, "\n".join(failures)
