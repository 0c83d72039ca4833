"""The local stack's banner prints the platform admin key only to a terminal, never to a log."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from embedrec_local.cli import _admin_key_line

KEY = "adm_" + "k" * 32


def test_a_generated_key_is_shown_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBEDREC_ADMIN_KEY", raising=False)

    assert _admin_key_line(KEY, to_terminal=True) == KEY


def test_a_generated_key_goes_to_a_private_file_when_the_banner_goes_to_a_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EMBEDREC_ADMIN_KEY", raising=False)

    line = _admin_key_line(KEY, to_terminal=False)

    assert KEY not in line
    path = Path(line.split("written to ", 1)[1].split(" ", 1)[0])
    try:
        assert path.read_text().strip() == KEY
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        path.unlink()


@pytest.mark.parametrize("to_terminal", [True, False])
def test_a_key_from_the_environment_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, to_terminal: bool
) -> None:
    monkeypatch.setenv("EMBEDREC_ADMIN_KEY", KEY)

    assert KEY not in _admin_key_line(KEY, to_terminal=to_terminal)
