"""Property-based fuzzing of every HTTP route against the service's own OpenAPI spec.

schemathesis generates requests from `/openapi.json` (valid and invalid ones) and sends them to
the real running server. Every response must be a non-5xx, with a status code the operation
declares, a declared content type, and a body matching the declared schema.

Four callers are fuzzed: the open mode (no token exists; the session server), and a secured
server (tokens made with the real `northstar tokens create`) asked with an admin token, with a
restricted token (metrics:read + experiments:read, bound to one region), and with no token or a
bogus one. Besides the spec, the secured runs check what the token allows: without a valid token
no data route answers with data, and a restricted token's metric answers hold only its region.

The CI size is small and derandomized (the same cases every run); `bench/fuzz.py` runs the same
tests at full size (`NORTHSTAR_FUZZ_EXAMPLES` cases per operation, `NORTHSTAR_FUZZ_SEED`), against
servers started on `NORTHSTAR_FUZZ_WAREHOUSE` (or the open mode against `NORTHSTAR_FUZZ_BASE_URL`),
and counts the requests it logs to `NORTHSTAR_FUZZ_LOG`.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Server, northstar

# Open mode, 125 per operation: at most 2,500 requests over the 20 operations. Each token mode
# asks at most 40 per operation, so the whole file stays near three minutes on 2 cores.
EXAMPLES = os.environ.get("NORTHSTAR_FUZZ_EXAMPLES")
OPEN_EXAMPLES = int(EXAMPLES or 125)
TOKEN_EXAMPLES = int(EXAMPLES or 40)
# A fixed seed keeps the CI run reproducible; bench/fuzz.py may pick others.
SEED = os.environ.get("NORTHSTAR_FUZZ_SEED")
WAREHOUSE = os.environ.get("NORTHSTAR_FUZZ_WAREHOUSE")
LOG = os.environ.get("NORTHSTAR_FUZZ_LOG")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fuzz_settings(examples: int):
    def decorate(test):
        test = settings(
            max_examples=examples,
            deadline=None,
            derandomize=SEED is None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(test)
        return seed(int(SEED or 0))(test)

    return decorate


def send(case, mode: str, base_url: str, session: requests.Session, token: str | None, extra_check=None):
    """Send one generated case as `token` and check the answer against the spec (and `extra_check`);
    with NORTHSTAR_FUZZ_LOG set, one JSON line per request for bench/fuzz.py's table."""
    __tracebackhide__ = True
    headers = {"Authorization": f"Bearer {token}"} if token else None
    response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
    problem = None
    try:
        case.validate_response(
            response,
            checks=CHECKS,
            headers=headers,
            transport_kwargs={"base_url": base_url, "session": session, **({"headers": headers} if headers else {})},
        )
        if extra_check is not None:
            extra_check(case, response)
    except BaseException as exc:
        problem = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise
    finally:
        if LOG:
            with open(LOG, "a") as out:
                out.write(
                    json.dumps(
                        {
                            "mode": mode,
                            "method": case.method,
                            "path": case.path,
                            "status": response.status_code,
                            "problem": problem,
                        }
                    )
                    + "\n"
                )
    return response


def known_path_values(base_url: str, token: str | None) -> dict[str, list[dict[str, str]]]:
    """Real identifiers for the operations with path parameters, by path template: generated
    strings almost never name an existing metric, experiment, launch or release, and only real
    ones reach the readouts, scorecards and the row-policy checks behind them."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(path: str) -> dict:
        response = httpx.get(base_url + path, headers=headers, timeout=60)
        assert response.status_code == 200, f"{path}: {response.text}"
        return response.json()

    experiments = [{"experiment_id": e["experiment_id"]} for e in get("/v1/experiments")["experiments"]]
    return {
        "/v1/metrics/{name}": [{"name": m["name"]} for m in get("/v1/metrics")["metrics"]],
        "/v1/experiments/{experiment_id}/metrics": experiments,
        "/v1/experiments/{experiment_id}/readout": experiments,
        "/v1/experiments/{experiment_id}/health": experiments,
        "/v1/launches/{launch_id}/scorecard": [{"launch_id": x["launch_id"]} for x in get("/v1/launches")["launches"]],
        "/v1/releases/{platform}/{app_version}": [
            {"platform": r["platform"], "app_version": r["app_version"]} for r in get("/v1/releases")["releases"]
        ],
        "/dbt-docs/{name}": [{"name": "manifest.json"}, {"name": "catalog.json"}, {"name": "index.html"}],
    }


def use_known_path_values(case, known: dict[str, list[dict[str, str]]]) -> None:
    # Half the cases of an operation with path parameters name something that exists; which
    # half and which identifier follow from the generated case (a stable hash: the derandomized
    # run stays the same, and a failing case shrinks as usual).
    choices = known.get(case.path)
    if not choices:
        return
    pick = zlib.crc32(json.dumps([case.path_parameters, case.query], sort_keys=True, default=str).encode())
    if pick % 2:
        case.path_parameters = {**(case.path_parameters or {}), **choices[(pick // 2) % len(choices)]}


def create_token(data_dir: Path, name: str, *options: str) -> str:
    proc = northstar("tokens", "create", "--name", name, "--data-dir", str(data_dir), *options)
    return proc.stdout.strip().splitlines()[-1]


def served_copy(warehouse: Path, data_dir: Path) -> Path:
    # A data directory of its own (tokens.json, audit log) for a warehouse built elsewhere.
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(warehouse))
    return data_dir / "northstar.duckdb"


@pytest.fixture(scope="module")
def fuzz_base_url(request: pytest.FixtureRequest, tmp_path_factory):
    # bench/fuzz.py points the open mode at a server or a warehouse; CI uses the session server.
    if os.environ.get("NORTHSTAR_FUZZ_BASE_URL"):
        yield os.environ["NORTHSTAR_FUZZ_BASE_URL"]
    elif WAREHOUSE:
        server = Server(served_copy(Path(WAREHOUSE), tmp_path_factory.mktemp("fuzz-open")))
        try:
            server.wait_ready()
            yield server.base_url
        finally:
            server.stop()
    else:
        yield request.getfixturevalue("api").base_url


@pytest.fixture(scope="module")
def secured(request: pytest.FixtureRequest, tmp_path_factory):
    warehouse = Path(WAREHOUSE) if WAREHOUSE else request.getfixturevalue("built_warehouse").warehouse
    data_dir = tmp_path_factory.mktemp("fuzz-secured")
    served = served_copy(warehouse, data_dir)
    admin = create_token(data_dir, "fuzz-admin", "--scope", "admin")
    server = Server(served, env={"NORTHSTAR_DATA_DIR": str(data_dir)})
    try:
        server.wait_ready()
        # The region with the most active users; the restricted token may see only it.
        by_region = httpx.post(
            server.base_url + "/v1/query",
            timeout=60,
            headers={"Authorization": f"Bearer {admin}"},
            json={"metrics": ["active_users"], "group_by": ["region"]},
        )
        assert by_region.status_code == 200, by_region.text
        region = max((row for row in by_region.json()["rows"] if row[0] is not None), key=lambda row: row[1])[0]
        restricted = create_token(
            data_dir,
            "fuzz-regional",
            "--scope",
            "metrics:read",
            "--scope",
            "experiments:read",
            "--row-filter",
            f"region={region}",
        )
        # Same id as the admin token, wrong secret: the lookup succeeds and the comparison must fail.
        forged = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
        yield {
            "url": server.base_url,
            "admin": admin,
            "restricted": restricted,
            "forged": forged,
            "region": region,
            "known": known_path_values(server.base_url, admin),
        }
    finally:
        server.stop()


@pytest.fixture(scope="module")
def open_known(fuzz_base_url: str):
    return known_path_values(fuzz_base_url, None)


@pytest.fixture(scope="module")
def http_session():
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def openapi_schema(fuzz_base_url: str):
    # The fuzz means something only if the data routes answer (no token needed in open mode).
    assert httpx.get(fuzz_base_url + "/v1/metrics", timeout=60).status_code == 200
    return schemathesis.openapi.from_url(fuzz_base_url + "/openapi.json")


@pytest.fixture(scope="module")
def secured_openapi_schema(secured):
    # The spec stays open; the data routes answer only with a token.
    assert httpx.get(secured["url"] + "/v1/metrics", timeout=60).status_code == 401
    assert (
        httpx.get(
            secured["url"] + "/v1/metrics", timeout=60, headers={"Authorization": f"Bearer {secured['restricted']}"}
        ).status_code
        == 200
    )
    return schemathesis.openapi.from_url(secured["url"] + "/openapi.json")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 renames the running item through `_nodeid`, which pytest 9 no longer
    # sets; give it the attribute it reads (only the reported test name depends on it).
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("openapi_schema")
secured_schema = schemathesis.pytest.from_fixture("secured_openapi_schema")


@schema.parametrize()
@fuzz_settings(OPEN_EXAMPLES)
def test_every_route_answers_within_its_spec_in_open_mode(case, fuzz_base_url: str, open_known, http_session):
    use_known_path_values(case, open_known)
    send(case, "open", fuzz_base_url, http_session, None)


@secured_schema.parametrize()
@fuzz_settings(TOKEN_EXAMPLES)
def test_every_route_answers_within_its_spec_with_an_admin_token(case, secured, http_session):
    use_known_path_values(case, secured["known"])
    send(case, "admin", secured["url"], http_session, secured["admin"])


def _only_the_policy_region(region: str):
    def check(case, response) -> None:
        # Any metric answer with a region column holds the token's region only.
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])[0]
        if not (
            case.path == "/v1/query" and response.status_code == 200 and content_type.startswith("application/json")
        ):
            return
        body = response.json()
        columns = [i for i, c in enumerate(body["columns"]) if c["name"].split("__")[-1] == "region"]
        seen = {row[i] for row in body["rows"] for i in columns}
        assert seen <= {region}, f"a token restricted to region={region} was answered rows of {seen - {region}}"

    return check


@secured_schema.parametrize()
@fuzz_settings(TOKEN_EXAMPLES)
def test_every_route_answers_within_its_spec_with_a_restricted_token(case, secured, http_session):
    use_known_path_values(case, secured["known"])
    send(
        case,
        "restricted",
        secured["url"],
        http_session,
        secured["restricted"],
        extra_check=_only_the_policy_region(secured["region"]),
    )


def _no_data_without_a_valid_token(case, response) -> None:
    # Only the open routes (probes, dbt docs) may succeed; every /v1 route must refuse.
    if case.path.startswith("/v1"):
        assert response.status_code >= 400, (
            f"{case.method} {case.path} answered {response.status_code} without a valid token"
        )


@secured_schema.parametrize()
@fuzz_settings(TOKEN_EXAMPLES)
def test_every_route_answers_within_its_spec_without_a_valid_token(case, secured, http_session):
    use_known_path_values(case, secured["known"])
    for token in (None, secured["forged"], "not-a-token"):
        send(case, "anonymous", secured["url"], http_session, token, extra_check=_no_data_without_a_valid_token)


@pytest.mark.parametrize("value", [False, 3])
def test_a_filter_value_of_the_wrong_type_is_a_named_422(api, value):
    # Found by the fuzz: `false` against the text dimension `country` used to be a 500.
    response = api.client.post(
        "/v1/query",
        json={
            "metrics": ["active_users"],
            "group_by": ["platform"],
            "where": [{"field": "country", "op": "in", "values": [value]}],
        },
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_filter" and "country" in error["message"]
    assert "Conversion" not in error["message"] and "BOOL" not in error["message"]


def test_a_readout_alpha_too_small_to_compute_is_a_named_422(api):
    # Found by the fuzz: alpha=1e-300 passed `0 < alpha < 1` and the t quantile of 1 - alpha/2
    # (1.0 in floating point) was a 500.
    experiment = api.client.get("/v1/experiments").json()["experiments"][0]["experiment_id"]
    response = api.client.get(f"/v1/experiments/{experiment}/readout", params={"alpha": "1e-300"})
    assert response.status_code == 422
    assert response.json()["error"]["problems"][0]["field"] == "alpha"
    assert api.client.get(f"/v1/experiments/{experiment}/readout", params={"alpha": "1e-10"}).status_code == 200


def test_every_operation_declares_the_413_it_answers_to_a_body_over_the_cap(secured):
    # The body-size guard sits in front of every route, open ones included, so every operation
    # can answer 413; the fuzz never sends bodies that big, so each is asked here.
    spec = httpx.get(secured["url"] + "/openapi.json", timeout=60).json()
    over_the_cap = b"x" * (1024 * 1024 + 1)  # NORTHSTAR_MAX_BODY_BYTES defaults to 1 MiB
    undeclared = []
    for template, operations in spec["paths"].items():
        path = template.format_map(
            {k: v for choice in secured["known"].get(template, [{}])[:1] for k, v in choice.items()}
        )
        for method, operation in operations.items():
            response = httpx.request(
                method.upper(),
                secured["url"] + path,
                content=over_the_cap,
                timeout=60,
                headers={"Authorization": f"Bearer {secured['admin']}", "Content-Type": "application/json"},
            )
            assert response.status_code == 413, f"{method.upper()} {path}: {response.status_code}"
            assert response.json()["error"]["code"] == "request_too_large"
            declared = operation["responses"].get("413", {}).get("content", {}).get("application/json", {})
            if declared.get("schema", {}).get("$ref") != "#/components/schemas/ErrorBody":
                undeclared.append(f"{method.upper()} {template}")
    assert not undeclared, f"413 not declared with the error body: {undeclared}"


def test_every_token_route_declares_the_statuses_of_its_guards(secured):
    # What the fuzz rarely or never provokes: a missing or wrong token (401), a missing scope or a
    # row policy that forbids the request (403), too many queries in flight (429), the query
    # timeout (504), no servable build (503). A route added without them fails here.
    spec = httpx.get(secured["url"] + "/openapi.json", timeout=60).json()
    missing = {}
    for template, operations in spec["paths"].items():
        if not template.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            declared = {
                code
                for code, response in operation["responses"].items()
                if response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                == "#/components/schemas/ErrorBody"
            }
            if lacking := {"401", "403", "413", "429", "503", "504"} - declared:
                missing[f"{method.upper()} {template}"] = sorted(lacking)
    assert not missing
