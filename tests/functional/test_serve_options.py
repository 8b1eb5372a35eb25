"""`leadscore serve`'s options: a bad port is one clear line, not a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from leadscore.cli import main


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_a_port_outside_1_to_65535_is_refused_by_name(port: str) -> None:
    # GIVEN a port no socket can bind
    # WHEN the server is started with it
    result = CliRunner().invoke(main, ["serve", "--port", port])
    # THEN nothing starts and the error names the option and the range
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
    assert "Traceback" not in result.output


def test_workers_and_threads_are_options_of_the_one_command() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--workers", "--threads", "--dev", "--port", "--store"):
        assert option in result.output
