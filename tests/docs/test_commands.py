"""Every command the README and the docs pages show against a running service is run here, on
the sample, against a real `northstar serve`: each `curl` (answered with a 2xx and a body), each
`psql` (exit 0 and rows) and each `northstar query` (exit 0 and a table). A page whose command
stops working fails this test, so the docs stay exact."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Server, free_port

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"^```(?:sh|bash|console|shell)\n(.*?)^```", re.S | re.M)
# A placeholder the reader replaces (a metric of their own project, a path): not runnable here.
PLACEHOLDER = re.compile(r"<[a-z0-9_ ]+>|/path/to/|HOST\b|\bDIR\b")


def commands(page: Path) -> list[str]:
    """The shell commands of the page's sh blocks: continuation lines joined, comments dropped."""
    found = []
    for block in BLOCK.findall(page.read_text()):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            if pending.rstrip().endswith("\\"):
                continue
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # an open quote: the command goes on on the next line
                continue
            if words:
                found.append(pending)
            pending = ""
    return found


def runnable(page: Path, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for command in commands(page):
        words = shlex.split(command.replace("\\\n", " "), comments=True)
        program = Path(words[0]).name
        if program in kinds and not PLACEHOLDER.search(command):
            out.append((str(page.relative_to(REPO)), command))
    return out


ALL = [c for page in PAGES for c in runnable(page, ("curl", "psql", "northstar"))]


def test_the_docs_show_commands_to_run():
    kinds = {Path(shlex.split(c, comments=True)[0]).name for _, c in ALL}
    assert {"curl", "psql", "northstar"} <= kinds, kinds


@pytest.fixture(scope="module")
def served(built_warehouse):
    sql_port = free_port()
    server = Server(built_warehouse.warehouse, sql_port=sql_port)
    try:
        server.wait_ready()
        yield server.base_url, sql_port, built_warehouse
    finally:
        server.stop()


def localize(command: str, base_url: str, sql_port: int) -> list[str]:
    """The command's words, pointed at the test server instead of the documented defaults."""
    port = base_url.rsplit(":", 1)[1]
    words = []
    for word in shlex.split(command.replace("\\\n", " "), comments=True):
        word = re.sub(r"(?:https?://)?(?:localhost|127\.0\.0\.1):8000", f"http://127.0.0.1:{port}", word)
        word = re.sub(r"(?<=[:= ])5433\b", str(sql_port), word)
        words.append(word)
    return words


@pytest.mark.parametrize("page, command", ALL, ids=[f"{p}: {c.splitlines()[0][:60]}" for p, c in ALL])
def test_documented_command_works(served, page, command):
    base_url, sql_port, built = served
    words = localize(command, base_url, sql_port)
    program = Path(words[0]).name
    if program == "curl":
        words = ["curl", "-sS", "-w", "\n%{http_code}", *words[1:]]
    elif program == "psql":
        if not shutil.which("psql"):
            pytest.skip("no psql client (.ci/run installs postgresql-client)")
        words = ["psql", *words[1:]]
    elif program == "northstar":
        if words[1] != "query":
            pytest.skip(f"`northstar {words[1]}` changes state; covered by its own tests")
        words = [sys.executable, "-m", "northstar", *words[1:], "--warehouse", str(built.warehouse)]
    proc = subprocess.run(
        words,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10", "PGPASSWORD": "x", "HOME": str(built.data_dir)},
    )
    assert proc.returncode == 0, (page, command, proc.stdout[-2000:], proc.stderr[-2000:])
    if program == "curl":
        body, _, status = proc.stdout.rpartition("\n")
        assert status.startswith("2"), (page, command, status, body[:1000])
        assert body.strip(), (page, command)
    else:
        assert proc.stdout.strip(), (page, command, proc.stderr)
