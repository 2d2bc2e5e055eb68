"""The session journal: what `--resume` continues from, written atomically and refused clearly when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spinal.record import JOURNAL_FILE, EpisodeFate, SessionJournal, SessionSetupError

A, B, C = "20260101T120000Z-aaaaaa", "20260101T120010Z-bbbbbb", "20260101T120020Z-cccccc"


def test_numbering_continues_after_the_kept_episodes_of_a_resumed_session(tmp_path: Path) -> None:
    journal = SessionJournal.create(tmp_path, repo_id="me/pick", device="http://127.0.0.1:1")
    assert journal.next_number == 1
    journal.begin(A, 1, "pick")
    journal.finish(A, EpisodeFate.KEPT, frames=90, duration_s=3.0)
    journal.begin(B, 2, "pick")
    journal.finish(B, EpisodeFate.INTERRUPTED, frames=20, duration_s=0.7, note="the device restarted")
    journal.begin(C, 2, "pick again")

    resumed = SessionJournal.load(tmp_path)
    assert [e.episode_id for e in resumed.kept()] == [A]
    assert [e.episode_id for e in resumed.interrupted()] == [B]
    assert resumed.next_number == 2, "an interrupted episode does not count"
    assert resumed.in_progress is not None and resumed.in_progress.episode_id == C
    assert resumed.in_progress.task == "pick again" and resumed.in_progress.number == 2
    assert resumed.kept()[0].frames == 90 and resumed.interrupted()[0].note == "the device restarted"


def test_forgetting_a_discarded_episode_removes_it(tmp_path: Path) -> None:
    journal = SessionJournal.create(tmp_path, repo_id="me/pick", device="d")
    journal.begin(A, 1, "pick")
    journal.finish(A, EpisodeFate.KEPT)
    journal.forget(A)
    assert SessionJournal.load(tmp_path).entries == []
    assert SessionJournal.load(tmp_path).next_number == 1


def test_saving_leaves_only_the_journal_behind(tmp_path: Path) -> None:
    journal = SessionJournal.create(tmp_path, repo_id="me/pick", device="d")
    for i in range(5):
        journal.begin(A, 1, f"task {i}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOURNAL_FILE]


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "damaged"),
        (json.dumps({"version": 1, "repo_id": "me/pick"}), "damaged"),
        (
            json.dumps(
                {
                    "version": 1,
                    "repo_id": "r",
                    "device": "d",
                    "entries": [{"number": 1, "episode_id": "../../etc", "fate": "kept", "task": ""}],
                }
            ),
            "damaged",
        ),
        (json.dumps({"version": 9, "repo_id": "r", "device": "d"}), "version 9"),
    ],
)
def test_a_damaged_journal_is_refused_naming_the_file(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / JOURNAL_FILE).write_text(content)
    with pytest.raises(SessionSetupError) as refused:
        SessionJournal.load(tmp_path)
    assert str(tmp_path / JOURNAL_FILE) in str(refused.value) and words in str(refused.value)


def test_resuming_without_a_journal_says_so(tmp_path: Path) -> None:
    with pytest.raises(SessionSetupError, match="no session to resume"):
        SessionJournal.load(tmp_path)
