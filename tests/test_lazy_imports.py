"""What a cluster process does not use is not imported: rich, psutil, asyncio (on the SQLite default).

Every process of a ``fork`` cluster inherits the main process's modules, so a module the
main process imports costs its memory once per process. Checked in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


def modules_after(statement: str) -> set[str]:
    """The names in ``sys.modules`` of a fresh interpreter after running ``statement``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    return set(done.stdout.split())


def test_cluster_command_line_does_not_import_rich() -> None:
    loaded = modules_after("import qframe.cli, qframe.commands.cluster")
    assert "qframe.commands.monitor" in loaded  # the drawing commands are registered
    assert not {name for name in loaded if name == "rich" or name.startswith("rich.")}


def test_cluster_command_line_does_not_import_psutil() -> None:
    loaded = modules_after("import qframe.cli, qframe.commands.cluster")
    assert "qframe.cluster.footprint" in loaded
    assert "psutil" not in loaded


def test_cluster_on_the_sqlite_default_does_not_import_asyncio() -> None:
    loaded = modules_after(
        "import qframe.cli, qframe.commands.cluster, qframe.builtin.sqlite, qframe.builtin.prefork\n"
        "import qframe.cluster.cluster, qframe.cluster.worker, qframe.cluster.sentinel"
    )
    assert "qframe.processes" in loaded
    assert "asyncio" not in loaded


def test_footprint_meter_imports_psutil_when_it_measures() -> None:
    loaded = modules_after(
        "import os\n"
        "from qframe.cluster.footprint import FootprintMeter\n"
        "FootprintMeter().measure([os.getpid()])"
    )
    assert "psutil" in loaded


def test_a_cluster_on_another_broker_does_not_import_sqlite3() -> None:
    loaded = modules_after(
        "import qframe, qframe.cli, qframe.commands.cluster, qframe.builtin.prefork\n"
        "import qframe.cluster.cluster, qframe.cluster.worker, qframe.cluster.sentinel\n"
        "config = qframe.load_config(environ={'QFRAME_BROKER': 'memory', 'QFRAME_SECRET_KEY': 'k'})\n"
        "qframe.Client(config).async_task('math.floor', 1.5)"
    )
    assert "qframe.project" in loaded
    assert not {"sqlite3", "qframe.builtin.sqlite"} & loaded
