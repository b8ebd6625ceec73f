"""Fixtures for the core tests: an isolated queue and real clusters in subprocesses."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from qframe.client import Client
from qframe.config import load as load_config
from qframe.testing.cluster import ClusterProcess

APP = Path(__file__).parent / "app"
sys.path.insert(0, str(APP))


class Lab:
    """One test's queue: its environment, a client, clusters, and the tasks' log."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.log_file = tmp_path / "runs.log"
        self.env = {
            "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/qframe.db",
            "QFRAME_TEST_LOG": str(self.log_file),
            "QFRAME_PLUGINS": "",
            "QFRAME_GUARD_CYCLE": "0.2",
            "QFRAME_WORKERS": "2",
        }
        self.clusters: list[ClusterProcess] = []
        self._client: Client | None = None

    def configure(self, **options: object) -> None:
        """Set options for clusters started later and for the client."""
        self.env.update({f"QFRAME_{k.upper()}": str(v) for k, v in options.items()})
        self._client = None

    @property
    def client(self) -> Client:
        """A producer using the same settings as the clusters."""
        if self._client is None:
            config = load_config(environ={**self.env}, cwd=self.tmp)
            self._client = Client(config)
        return self._client

    def cluster(self, *args: str) -> ClusterProcess:
        """Start a cluster and wait until it runs."""
        cluster = ClusterProcess(APP, self.env, *args)
        self.clusters.append(cluster)
        return cluster.wait_running()

    def runs(self, kind: str | None = None) -> list[list[str]]:
        """Lines the tasks and plugins recorded, split into fields."""
        if not self.log_file.exists():
            return []
        rows = [line.split("\t") for line in self.log_file.read_text().splitlines()]
        return [row for row in rows if kind is None or row[0] == kind]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """An isolated queue in ``tmp_path``; clusters started through it are killed at the end."""
    lab = Lab(tmp_path)
    monkeypatch.setenv("QFRAME_TEST_LOG", str(lab.log_file))
    yield lab
    for cluster in lab.clusters:
        cluster.kill_all()


TINY_PLUGIN = textwrap.dedent(
    """
    from qframe import PluginOption, hookimpl


    @hookimpl
    def qframe_add_options():
        return [PluginOption("tinyplug", "colour", str, "blue", "The tiny plugin's colour.")]
    """
)


@pytest.fixture
def tiny_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed distribution, ``qframe-tiny``, in a directory put on ``sys.path``.

    ``importlib.metadata`` finds its ``*.dist-info``, whose ``qframe`` entry point
    ``tinyplug`` is a hook plugin declaring ``tinyplug_colour``. Yields the directory, for
    ``PYTHONPATH`` of subprocesses.
    """
    site = tmp_path / "site"
    info = site / "qframe_tiny-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qframe-tiny\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[qframe]\ntinyplug = qframe_tiny_plugin\n")
    (site / "qframe_tiny_plugin.py").write_text(TINY_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("qframe_tiny_plugin", None)


def write_dist(site: Path, dist: str, entry_point: str, module: str, source: str) -> None:
    """Install distribution ``dist`` 0.1 into ``site``: entry point ``entry_point = module``."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[qframe]\n{entry_point} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def broken_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two installed distributions whose hook plugins cannot be registered, on ``sys.path``.

    ``qframe-broken`` (entry point ``brokenplug``) imports a module that does not exist;
    ``qframe-typo`` (``typoplug``) implements the misspelt ``qframe_task_sucseeded``.
    Yields the directory, for ``PYTHONPATH`` of subprocesses.
    """
    site = tmp_path / "broken-site"
    write_dist(site, "qframe-broken", "brokenplug", "qframe_broken_dist", "import nothere\n")
    typo = """
        from qframe import hookimpl


        @hookimpl
        def qframe_task_sucseeded(result):
            pass
    """
    write_dist(site, "qframe-typo", "typoplug", "qframe_typo_dist", typo)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("qframe_typo_dist", None)
