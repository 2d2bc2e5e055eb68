"""The benchmark harness writes the tables that the README links."""

import json

import pytest

from bench.harness import Table, percentile, write_results


def test_percentile_interpolates_between_samples():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([5], 99) == 5
    assert percentile([10, 0], 100) == 10


def test_table_rejects_row_of_wrong_width():
    table = Table("t", ["a", "b"])
    with pytest.raises(ValueError, match="2 columns"):
        table.add(1)


def test_write_results_produces_markdown_json_and_index(tmp_path):
    table = Table("codec", ["case", "p50 us"])
    table.add("obs", 12.5)
    write_results("demo", [table], results_dir=tmp_path)
    assert "| obs | 12.50 |" in (tmp_path / "demo.md").read_text()
    assert json.loads((tmp_path / "demo.json").read_text())["tables"][0]["rows"] == [["obs", 12.5]]
    assert "## demo" in (tmp_path / "latest.md").read_text()
