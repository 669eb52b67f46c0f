"""The commands' shared helpers: when progress is drawn, and that it stays off pipes."""

from __future__ import annotations

import io

import pytest

from service.cli.support import Progress, shows_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only_and_never_with_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    assert shows_progress(quiet=False, stream=Terminal()) is True
    assert shows_progress(quiet=True, stream=Terminal()) is False
    assert shows_progress(quiet=False, stream=io.StringIO()) is False  # a pipe or a file
    monkeypatch.setenv("TERM", "dumb")
    assert shows_progress(quiet=False, stream=Terminal()) is False


def test_a_disabled_progress_prints_the_output_and_nothing_else(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Progress(enabled=False) as progress:
        task = progress.task("working", total=3)
        progress.advance(task)
        progress.echo("a line of output")
        progress.done(task)
    out, err = capsys.readouterr()
    assert (out, err) == ("a line of output\n", "")
