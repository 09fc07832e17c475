"""`northstar serve` start-up: a taken port is one line and exit status 2, before anything is
announced (or built)."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import free_port, northstar


@pytest.mark.parametrize("taken, flag, what", [("http", "--port", "HTTP"), ("sql", "--sql-port", "SQL endpoint")])
def test_a_taken_port_is_one_line_and_exit_2(tmp_path, taken, flag, what):
    ports = {"http": free_port(), "sql": free_port()}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen()
        # No warehouse at this path: had the port check come after the build, it would build.
        proc = northstar(
            "serve",
            "--warehouse",
            str(tmp_path / "none.duckdb"),
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["http"]),
            "--sql-port",
            str(ports["sql"]),
            env={"NORTHSTAR_DATA_DIR": str(tmp_path)},
            check=False,
            timeout=60,
        )
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert lines == [f"error: port {ports[taken]} on 127.0.0.1 ({what}) is in use; choose another with {flag} P"]
    assert not (tmp_path / "builds").exists()
