"""The encoding bench runs and reports both encoders producing the same request."""

from __future__ import annotations

import sys

import pytest

from loadtests import encoding_bench


def test_the_bench_prints_both_timings_and_that_the_requests_match(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["encoding_bench", "--spans", "40", "--rounds", "1"])

    encoding_bench.main()

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["stock", "SpanEncoder", "same"]
    assert "same request   True (" in lines[2]
    assert "40 spans" in lines[2]
