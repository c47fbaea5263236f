"""dataknobs_data.cli.main's exit statuses for failures that are not the user's command line:
a data error (1), a reader that went away (141), and --traceback for bug reports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from dataknobs_data.cli import main
from dataknobs_data.exceptions import DataFormatError

from .test_cli import one_error_line, sample_data, write_source


@pytest.fixture
def unreadable(tmp_path: Path) -> str:
    path = tmp_path / "bad.jsonl"
    path.write_text('not json\n{"a":\n')
    return f"file://{path}"


def test_a_data_error_exits_1_on_one_line(
    unreadable: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["count", unreadable]) == 1
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "Data format error (jsonl)" in line and "bad.jsonl: line 1" in line
    assert captured.out == ""


def test_traceback_lets_the_error_through(unreadable: str) -> None:
    with pytest.raises(DataFormatError, match=r"bad\.jsonl: line 1"):
        main(["--traceback", "count", unreadable])


def test_a_closed_pipe_exits_141_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `dataknobs-data query ... | head -1`: the reader closes its end while rows are written.
    url = write_source(tmp_path / "many.jsonl", sample_data(2000))
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert main(["query", url, "--format", "json"]) == 141
        # stdout now points at /dev/null, so the interpreter's last flush cannot fail again.
        closed_pipe.write("more" * 10_000)
        closed_pipe.flush()
    assert capsys.readouterr().err == ""
