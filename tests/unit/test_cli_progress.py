"""The transfer progress line: size, percent, rate and time left, only on a terminal."""

from __future__ import annotations

import click
import pytest

from services.cli import storage


def test_the_line_shows_size_percent_rate_and_time_left(capsys):
    progress = storage.Progress("backups/x.tar", 4 * 1024 * 1024, shown=True)
    progress.add(1024 * 1024)
    progress.finish()
    line = capsys.readouterr().err
    assert "backups/x.tar  1.0 MiB / 4.0 MiB   25%" in line
    assert "/s  ETA " in line


def test_a_stream_of_unknown_size_shows_what_went_and_the_rate(capsys):
    progress = storage.Progress("stdin", None, shown=True)
    progress.add(2048)
    progress.finish()
    assert "stdin  2.0 KiB  " in capsys.readouterr().err


def test_nothing_is_drawn_when_not_shown(capsys):
    progress = storage.Progress("x", 10, shown=False)
    progress.add(5)
    progress.finish()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("as_json", "tty", "to_stdout", "shown"),
    [
        (False, True, False, True),
        (True, True, False, False),
        (False, False, False, False),
        (False, True, True, False),
    ],
)
def test_it_is_shown_on_a_terminal_only_without_json_and_not_over_piped_data(
    monkeypatch, as_json, tty, to_stdout, shown
):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    context = click.Context(click.Command("x"), obj={"json": as_json})
    assert storage.progress_shown(context, to_stdout) is shown
