"""Running dbt for one build, on any warehouse: the profile file, the command line (the build's
own target path, log path and vars), dbt's progress lines, and a failure described by what
failed: each failing model or test, its table and column, and sample rows (which the build's
warehouse target reads, see northstar/targets.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: The one target of the profiles.yml a build writes.
PROFILE_TARGET = "northstar_build"
_PROGRESS = re.compile(r"^\S*\s*(\d+) of (\d+) (OK|PASS|ERROR|FAIL|WARN|SKIP)\b")

Progress = Callable[[int, int, str], None]
#: A few rows of a test's own query from a build's warehouse: (directory, compiled SQL, limit)
#: -> (column names, rows); nothing when the query cannot run.
FailingRows = Callable[[Path, str | None, int], tuple[list[str], list[tuple]]]


def write_profile(directory: Path, name: str, target: dict) -> Path:
    """`<build>/profile/profiles.yml` with profile `name` and its one target; returns the folder."""
    profiles_dir = directory / "profile"
    profiles_dir.mkdir()
    (profiles_dir / "profiles.yml").write_text(
        yaml.safe_dump({name: {"target": PROFILE_TARGET, "outputs": {PROFILE_TARGET: target}}})
    )
    return profiles_dir


@dataclass
class Dbt:
    """dbt's command line for one build: the project, the build's profile and target path,
    and the project vars (which grow as the build stages tables for later models)."""

    directory: Path
    dbt_project: Path
    profiles_dir: Path
    env: dict[str, str]
    progress: Progress | None = None
    vars: dict = field(default_factory=dict)

    def args(self, target_path: Path | None = None) -> list[str]:
        """The options every dbt command of the build takes; `target_path` for a run whose
        artifacts must not replace the main run's (run_results.json)."""
        args = [
            "--project-dir",
            str(self.dbt_project),
            "--profiles-dir",
            str(self.profiles_dir),
            "--target",
            PROFILE_TARGET,
            "--target-path",
            str(target_path or self.directory),
            "--log-path",
            str(self.directory / "logs"),
        ]
        if self.vars:
            args += ["--vars", json.dumps(self.vars)]
        return args

    def run(self, args: list[str], *, progress: bool = False) -> tuple[int, list[str]]:
        """`dbt <args>` in a process of its own; its exit code and output lines."""
        return run_dbt(args, self.env, self.progress if progress else None)

    def run_command(self, command: list[str], *, progress: bool = False) -> tuple[int, list[str]]:
        """A command that runs dbt itself (e.g. in a Spark session), read like `run`."""
        return run_dbt([], self.env, self.progress if progress else None, command=command)


def run_dbt(
    args: list[str], env: dict[str, str], progress: Progress | None, command: list[str] | None = None
) -> tuple[int, list[str]]:
    command = command or [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args]
    output: list[str] = []
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            output.append(line)
            match = _PROGRESS.search(line)
            if progress and match:
                progress(int(match.group(1)), int(match.group(2)), line)
    return proc.returncode, output


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def tail(output: list[str], lines: int = 15) -> str:
    return "\n".join(line for line in output[-lines:] if line.strip())


def checked_target(node: dict) -> tuple[str, str | None]:
    """The model (or source table) and column a test node checks."""
    metadata = node.get("test_metadata") or {}
    column = node.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
    attached = node.get("attached_node") or ""
    table = attached.split(".")[-1] if attached else "?"
    if not attached and node.get("depends_on", {}).get("nodes"):
        table = node["depends_on"]["nodes"][0].split(".")[-1]
    return table, column


def failure_message(directory: Path, output: list[str], failing_rows: FailingRows) -> str:
    """Name what failed: each failing model or test, its table and column, and sample rows
    (from the build's warehouse, by `failing_rows`)."""
    results = read_json(directory / "run_results.json")
    manifest = read_json(directory / "manifest.json") or {}
    if not results:
        return "dbt build failed before running any node:\n" + tail(output)
    nodes = manifest.get("nodes", {})
    problems = []
    for result in results.get("results", []):
        if result.get("status") not in ("error", "fail"):
            continue
        node = nodes.get(result.get("unique_id"), {})
        problems.append(_describe_failure(directory, result, node, failing_rows))
    if not problems:
        return "dbt build failed:\n" + tail(output)
    head = f"dbt build failed ({len(problems)} failing node{'s' if len(problems) > 1 else ''}); "
    return head + "the served warehouse is unchanged.\n" + "\n".join(problems[:10])


def _describe_failure(directory: Path, result: dict, node: dict, failing_rows: FailingRows) -> str:
    name = node.get("name") or result.get("unique_id", "?")
    message = (result.get("message") or "").strip().splitlines()
    text = message[0] if message else result.get("status", "failed")
    if node.get("resource_type") != "test":
        return f"- model {name}: {text}"
    metadata = node.get("test_metadata") or {}
    table, column = checked_target(node)
    where = f"{table}.{column}" if column else table
    columns, rows = failing_rows(directory, result.get("compiled_code") or node.get("compiled_code"), 5)
    sample = "; ".join(", ".join(f"{c}={v!r}" for c, v in zip(columns, row)) for row in rows)
    line = f"- test {metadata.get('name') or name} on {where}: {text}"
    return line + (f"; sample rows: {sample}" if sample else "")
