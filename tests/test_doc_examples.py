"""The examples in README.md and docs/*.md that are marked runnable run, and print what they show.

A fenced block is an example when the line before it is an HTML comment (invisible on
GitHub and in every Markdown renderer)::

    <!-- example -->                run the block
    <!-- example cluster -->        run it while a ``qframe cluster`` runs beside it
    <!-- example file=tasks.py -->  do not run it: write it to ``tasks.py`` for later examples

The examples of one page run in order, in one fresh directory of their own, against the
embedded SQLite default, with no ``QFRAME_*`` variable set. How a block runs depends on
its language:

- ``python`` with ``>>>`` prompts: a doctest (``...`` in an output matches anything);
- other ``python``: a script that must exit with status 0;
- ``console``, ``bash``, ``sh`` or ``shell`` with ``$`` prompts: one bash session (so
  variables carry over); the lines after a command are its expected output (stdout and
  stderr), compared as in a doctest; a command shown without output must exit with 0;
- other shell blocks: a bash script run with ``set -e``.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qframe.testing.cluster import ClusterProcess

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"^<!--\s*example\b(?P<options>[^>]*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<language>[\w+-]*)")
SHELLS = {"console", "bash", "sh", "shell"}
#: Printed by the harness between the commands of a shell session, with the last status.
SEPARATOR = "@@qframe-example-step"
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
STEP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Example:
    """One marked block of a page."""

    page: Path
    line: int
    language: str
    text: str
    file: str | None = None
    cluster: bool = False

    @property
    def where(self) -> str:
        """``page:line`` of the block's mark."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(page: Path) -> list[Example]:
    """The marked blocks of ``page``, in order; a malformed mark fails with its line."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        mark = MARK.match(line)
        if mark is None:
            continue
        where = f"{page.relative_to(ROOT)}:{number}"
        fence = FENCE.match(lines[number]) if number < len(lines) else None
        if fence is None:
            raise AssertionError(f"{where}: an example mark must be followed at once by a fenced block")
        end = next((i for i in range(number + 1, len(lines)) if lines[i].startswith(fence["fence"])), None)
        if end is None:
            raise AssertionError(f"{where}: the example's fenced block is not closed")
        file, cluster = None, False
        for option in mark["options"].split():
            if option == "cluster":
                cluster = True
            elif option.startswith("file="):
                file = option.removeprefix("file=")
            else:
                raise AssertionError(f"{where}: unknown example option {option!r} (use cluster or file=NAME)")
        text = "\n".join(lines[number + 1 : end]) + "\n"
        found.append(Example(page, number, fence["language"], text, file, cluster))
    return found


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The examples' environment: no ``QFRAME_*`` variable, this interpreter first on PATH."""
    for name in list(os.environ):
        if name.startswith("QFRAME_"):
            monkeypatch.delenv(name)
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return dict(os.environ)


def run(example: Example, folder: Path, env: dict[str, str], number: int) -> None:
    """Run one example in ``folder``; fail with what differs."""
    prompts = example.text.splitlines()
    if example.language == "python" and any(line.startswith(">>> ") for line in prompts):
        (folder / f".example-{number}.txt").write_text(example.text)
        flags = ["-o", "ELLIPSIS", "-o", "NORMALIZE_WHITESPACE"]
        succeed(example, [sys.executable, "-m", "doctest", *flags, f".example-{number}.txt"], folder, env)
    elif example.language == "python":
        (folder / f".example-{number}.py").write_text(example.text)
        succeed(example, [sys.executable, f".example-{number}.py"], folder, env)
    elif example.language in SHELLS and any(line.startswith("$ ") for line in prompts):
        run_session(example, folder, env)
    elif example.language in SHELLS:
        succeed(example, ["bash", "-e", "-c", example.text], folder, env)
    else:
        language = example.language or "plain"
        raise AssertionError(f"{example.where}: cannot run a {language} block; mark it file=NAME")


def succeed(example: Example, command: list[str], folder: Path, env: dict[str, str]) -> None:
    """Run ``command`` in ``folder``; fail with its output unless it exits with 0."""
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    assert done.returncode == 0, f"{example.where}: the example failed:\n{done.stdout}{done.stderr}"


def steps(text: str) -> Iterator[tuple[str, str]]:
    """The ``(command, expected output)`` pairs of a shell session (``\\`` continues a command)."""
    command: list[str] = []
    output: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command:
                yield "\n".join(command), "\n".join(output)
            command, output = [line[2:]], []
        elif command and command[-1].endswith("\\") and not output:
            command.append(line)
        elif command:
            output.append(line)
    if command:
        yield "\n".join(command), "\n".join(output)


def run_session(example: Example, folder: Path, env: dict[str, str]) -> None:
    """Run a shell session's commands in one bash; compare each output with the block's."""
    pairs = list(steps(example.text))
    script = ["exec 2>&1", "__status=0"]
    for command, _ in pairs:
        # Print the separator, then give the command the status of the one before it (for `echo $?`).
        script += [f'printf "\\n{SEPARATOR} %d\\n" "$__status"', '(exit "$__status")', command, "__status=$?"]
    script.append(f'printf "\\n{SEPARATOR} %d\\n" "$__status"')
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True, text=True,
        timeout=STEP_TIMEOUT,
    )  # fmt: skip
    chunks = re.split(rf"\n{SEPARATOR} (\d+)\n", "\n" + done.stdout)
    outputs, statuses = chunks[2::2], [int(s) for s in chunks[3::2]]
    assert len(statuses) == len(pairs), f"{example.where}: the session did not finish:\n{done.stdout}"
    for (command, want), got, status in zip(pairs, outputs, statuses, strict=False):
        if want.strip():
            assert CHECKER.check_output(want.strip() + "\n", got.strip() + "\n", FLAGS), (
                f"{example.where}: `{command}` printed\n{got}\ninstead of\n{want}"
            )
        else:
            assert status == 0, f"{example.where}: `{command}` exited with {status}:\n{got}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_runnable_examples_run_and_print_what_they_show(
    page: Path, tmp_path: Path, environment: dict[str, str]
) -> None:
    for number, example in enumerate(examples(page)):
        if example.file is not None:
            (tmp_path / example.file).write_text(example.text)
            continue
        cluster = None
        if example.cluster:
            cluster = ClusterProcess(tmp_path, {"QFRAME_WORKERS": "2"}, lifetime=STEP_TIMEOUT).wait_running()
        try:
            run(example, tmp_path, environment, number)
        finally:
            if cluster is not None:
                status = cluster.stop()
                assert status == 0, f"{example.where}: the cluster exited with {status}:\n{cluster.log}"


def test_the_pages_mark_their_runnable_examples() -> None:
    counts = {page.name: len(examples(page)) for page in PAGES}
    assert all(counts[name] > 0 for name in ("README.md", "index.md", "configuration.md", "cli.md")), counts


def test_a_session_splits_into_commands_and_their_output() -> None:
    text = "$ a \\\n  b\nout 1\nout 2\n$ c\n"
    assert list(steps(text)) == [("a \\\n  b", "out 1\nout 2"), ("c", "")]
