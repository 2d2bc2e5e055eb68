"""Keys for `spinal record`: the decoder on split and odd input, and cbreak mode on a real pseudo-terminal,
restored on every way out."""

from __future__ import annotations

import os
import termios
from collections.abc import Iterator

import pytest
from spinal.record.keys import ENTER, ESCAPE, LEFT, RIGHT, KeyDecoder, NoKeys, TerminalKeys


def test_arrows_arrive_in_both_cursor_modes() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b[C\x1b[D\x1bOC\x1bOD") == [RIGHT, LEFT, RIGHT, LEFT]


def test_a_sequence_split_over_reads_is_one_key() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b") == []
    assert decoder.pending_escape
    assert decoder.feed(b"[") == []
    assert decoder.feed(b"C") == [RIGHT]
    assert not decoder.pending_escape


def test_a_lone_escape_is_the_escape_key_once_the_wait_is_over() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b") == []
    assert decoder.flush() == [ESCAPE]
    assert decoder.flush() == []


def test_escape_followed_by_typing_and_double_escape() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1bk") == [ESCAPE, "k"]
    assert decoder.feed(b"\x1b\x1b[C") == [ESCAPE, RIGHT]


def test_letters_enter_and_unknown_sequences() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"K\rd\n") == ["k", ENTER, "d", ENTER]
    assert decoder.feed(b"\x1b[15~x") == ["x"], "F5 is not a session key and is dropped whole"
    assert decoder.feed(b"\x03\x7f") == [], "control bytes are not keys"


def test_an_endless_sequence_never_stalls_the_keys_after_it() -> None:
    decoder = KeyDecoder()
    keys = decoder.feed(b"\x1b[" + b"1" * 40 + b"C" + b"\x1b[C")
    assert keys[-1] == RIGHT and ESCAPE not in keys
    assert not decoder.pending_escape


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def test_cbreak_mode_on_the_tty_and_the_settings_come_back(pty: tuple[int, int]) -> None:
    master, slave = pty
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    with TerminalKeys(slave) as keys:
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON, "keys arrive without Enter"
        assert not during[3] & termios.ECHO, "keys are not echoed over the view"
        assert during[3] & termios.ISIG, "Ctrl-C still raises SIGINT"
        os.write(master, b"\x1b[C")
        assert keys.read(5.0) == [RIGHT]
        os.write(master, b"\x1b")
        assert keys.read(5.0) == [ESCAPE]
        os.write(master, b"\x1b[D")
        os.write(master, b"k")
        got: list[str] = []
        for _ in range(20):
            got += keys.read(1.0)
            if len(got) >= 2:
                break
        assert got == [LEFT, "k"]
    assert termios.tcgetattr(slave) == before


def test_the_terminal_is_restored_when_the_session_raises(pty: tuple[int, int]) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    with pytest.raises(KeyboardInterrupt), TerminalKeys(slave):
        raise KeyboardInterrupt
    assert termios.tcgetattr(slave) == before


def test_nothing_pressed_returns_no_keys(pty: tuple[int, int]) -> None:
    _, slave = pty
    with TerminalKeys(slave) as keys:
        assert keys.read(0.05) == []
    assert NoKeys().read(0.01) == []
