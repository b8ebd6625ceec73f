"""Every check of the project: ``nox`` runs tests, plugin tests, lint, types and a short soak."""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["tests", "plugins", "lint", "typecheck", "chaos"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
#: Test-only servers a plugin's session installs, kept out of its published metadata (GPL).
TEST_SERVERS = {"qframe-mongo": ["secantusdb"]}


@nox.session
def tests(session: nox.Session) -> None:
    """The core's tests, with no plugin distribution installed."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugins(session: nox.Session, plugin: str) -> None:
    """One plugin's tests against the core in this checkout."""
    session.install("-e", ".[test]", *sibling_plugins(plugin), "-e", f"plugins/{plugin}[test]")
    if plugin in TEST_SERVERS:
        session.install(*TEST_SERVERS[plugin])
    session.chdir(f"plugins/{plugin}")
    session.run("pytest", "tests", *session.posargs)


def sibling_plugins(plugin: str) -> list[str]:
    """``-e`` installs of this checkout's plugins that ``plugin``'s ``test`` extra names (not from PyPI)."""
    project = tomllib.loads((ROOT / "plugins" / plugin / "pyproject.toml").read_text())["project"]
    wanted = set(project.get("optional-dependencies", {}).get("test", []))
    return [f"-e./plugins/{name}" for name in PLUGINS if name in wanted]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the core and every plugin package."""
    session.install("mypy", "-e", ".[test]", *(f"-e./plugins/{p}[test]" for p in PLUGINS))
    packages = [str(next((ROOT / "plugins" / p).glob("qframe_*"))) for p in PLUGINS]
    session.run("mypy", "qframe", *packages)


@nox.session
def chaos(session: nox.Session) -> None:
    """The soak: 5,000 tasks per broker through two clusters while workers, clusters and servers die.

    With no arguments (as in CI): 45 s of faults per broker, about a minute each. The full
    run of ``docs/reliability.md``: ``nox -s chaos -- --duration 180``.
    """
    session.install("-e", ".[test]", *(f"-e./plugins/{p}" for p in PLUGINS))
    session.run("python", "-m", "qframe.testing.chaos", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with the peers (not part of the default run): every table by default."""
    session.install(
        "-e", ".", *(f"-e./plugins/{p}" for p in PLUGINS), "-r", "bench/requirements-peers.txt", "rich"
    )
    session.run("python", "bench/harness.py", *(session.posargs or ["--mode", "all"]))
