"""Progress bars: drawn on a terminal (or when forced), silent otherwise; tickers counted."""

import io

import pytest

from flows import progress
from sources import base


@pytest.mark.parametrize("mode, tty, shown", [("auto", False, False), ("auto", True, True), ("off", True, False), ("on", False, True)])
def test_bars_show_on_a_terminal_unless_told_otherwise(monkeypatch, mode, tty, shown):
    monkeypatch.setenv("BELLWETHER_PROGRESS", mode)
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: tty, raising=False)
    assert progress.enabled() is shown


def test_a_display_counts_chunks_and_tickers_and_lets_go_of_the_source(monkeypatch):
    from rich.console import Console

    monkeypatch.setenv("BELLWETHER_PROGRESS", "on")
    out = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **kw: Console(file=out, force_terminal=True, width=120))
    with progress.display() as show:
        bar = show.bar("backfill: chunks", total=3)
        for _ in range(3):
            bar.advance()
        base.ticker_done("prices_daily", "NVDA")
        base.ticker_done("prices_daily", "SPY")
        assert len(base._ticker_listeners) == 1
    assert base._ticker_listeners == []
    text = out.getvalue()
    assert "backfill: chunks" in text and "3/3" in text and "prices_daily: tickers fetched (last SPY)" in text


def test_off_a_terminal_nothing_is_drawn(monkeypatch, capsys):
    monkeypatch.setenv("BELLWETHER_PROGRESS", "off")
    with progress.display() as show:
        show.bar("chunks", total=2).advance()
        base.ticker_done("prices_daily", "NVDA")
    assert capsys.readouterr() == ("", "")
