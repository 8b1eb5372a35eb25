"""Every runtime the deployment may choose is one `make test` runs the suite on: the main run
on this interpreter, the others in the Makefile's RUNTIMES (a fast subset each)."""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path

from infra import config

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployable_runtime_is_tested() -> None:
    # GIVEN the runtimes a deployment may name, and the Pythons `make test` runs on
    deployable = set(typing.get_args(config.DeployConfig.model_fields["runtime"].annotation))
    line = re.search(r"^RUNTIMES \?= (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert line, "the Makefile names no RUNTIMES"
    tested = {f"python3{sys.version_info.minor}"} | {
        "python" + minor.replace(".", "") for minor in line.group(1).split()}
    # THEN none is deployed untested (a new runtime needs its line in the Makefile)
    assert deployable and deployable <= tested, deployable - tested
    # AND the default is among them
    assert config.DeployConfig.model_fields["runtime"].default in tested
