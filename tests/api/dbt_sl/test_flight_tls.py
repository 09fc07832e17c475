"""Flight SQL over TLS: `northstar serve --flight-tls-cert/--flight-tls-key` with a certificate
made at test time, reached by pyarrow.flight and ADBC (`grpc+tls://`, the certificate as their
trusted root); a plaintext client and a client that does not trust the certificate are
refused; serving Flight SQL without TLS on a non-loopback interface is refused at start."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.flight as flight
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.flight import messages
from tests.conftest import Server, free_port, northstar

METRICS = "select name from {{ semantic_layer.metrics() }} where name in ('revenue', 'sessions') order by 1"


def self_signed() -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 and localhost, and its key, in PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "northstar test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def tls_server(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("flight_tls")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    cert, key = self_signed()
    (data_dir / "flight.crt").write_bytes(cert)
    (data_dir / "flight.key").write_bytes(key)
    port = free_port()
    server = Server(
        data_dir / "northstar.duckdb",
        env={"NORTHSTAR_DATA_DIR": str(data_dir)},
        flight_port=port,
        args=("--flight-tls-cert", str(data_dir / "flight.crt"), "--flight-tls-key", str(data_dir / "flight.key")),
    )
    try:
        server.wait_ready()
        yield {"port": port, "cert": cert, "server": server}
    finally:
        server.stop()


def statement(text: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(messages.pack(messages.CommandStatementQuery(query=text)))


def test_pyarrow_flight_over_tls(tls_server):
    assert f"grpc+tls://127.0.0.1:{tls_server['port']}" in tls_server["server"].output()
    client = flight.FlightClient(f"grpc+tls://127.0.0.1:{tls_server['port']}", tls_root_certs=tls_server["cert"])
    info = client.get_flight_info(statement(METRICS))
    assert client.do_get(info.endpoints[0].ticket).read_all().column("name").to_pylist() == ["revenue", "sessions"]


def test_adbc_over_tls(tls_server):
    with (
        flightsql.connect(
            f"grpc+tls://127.0.0.1:{tls_server['port']}",
            db_kwargs={"adbc.flight.sql.client_option.tls_root_certs": tls_server["cert"].decode()},
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(METRICS)
        assert cur.fetchall() == [("revenue",), ("sessions",)]


def test_plaintext_and_untrusting_clients_are_refused(tls_server):
    options = flight.FlightCallOptions(timeout=10)
    plaintext = flight.FlightClient(f"grpc://127.0.0.1:{tls_server['port']}")
    with pytest.raises(flight.FlightUnavailableError):
        plaintext.get_flight_info(statement(METRICS), options)
    # TLS, but trusting only the system's roots: the self-signed certificate is not one of them.
    untrusting = flight.FlightClient(f"grpc+tls://127.0.0.1:{tls_server['port']}")
    with pytest.raises(flight.FlightUnavailableError):
        untrusting.get_flight_info(statement(METRICS), options)


def test_flight_without_tls_on_a_non_loopback_interface_is_refused(built_warehouse, tmp_path):
    proc = northstar(
        "serve",
        "--warehouse",
        str(built_warehouse.warehouse),
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        "--sql-port",
        "0",
        "--flight-port",
        str(free_port()),
        env={"NORTHSTAR_DATA_DIR": str(tmp_path), "NORTHSTAR_ALLOW_OPEN": "1"},
        check=False,
        timeout=60,
    )
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0
    assert "Flight SQL endpoint on 0.0.0.0 needs TLS" in output and "--flight-tls-cert" in output
    assert len(output.splitlines()) == 1
