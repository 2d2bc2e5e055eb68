"""Shared fixtures of the server tests: generated models in temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinal_server.demo_policy import build_demo_policy
from spinal_server.generated_models import build_tiny_policy


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_policy(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def relative_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("relative"), relative=True)
