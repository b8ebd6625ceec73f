"""A host framework (manage.py qinfo) runs the core's commands on its own Config via ``obj``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from qframe.cli import cli
from qframe.config import Config


def test_a_config_given_as_the_context_object_is_used_instead_of_the_files(tmp_path: Path) -> None:
    config = Config(name="hosted", broker_url=f"sqlite:///{tmp_path}/hosted.db", secret_key="k")
    done = CliRunner().invoke(cli, ["info", "--json"], obj=config)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["queue"] == "hosted"
    assert str(tmp_path / "hosted.db") in report["broker"]
