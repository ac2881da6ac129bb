"""`probe manifest --store-secret/--workload-identity-sa`: the fleet store wiring, and the
rendered container command run for real against the session's PostgreSQL server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from egress.errors import UsageError
from egress.k8s import ManifestSpec, pool_target, render_objects
from egress.k8s.objects import STORE_SECRET_DIR
from egress.store import PostgresAuth, ResultStore

from .cases import PLAN, VARIANTS, VERSION
from .test_container_command import LOCAL_PLAN, container, pod_env, run_container
from store.pg_server import PgServer


def _pod(variant: str) -> dict[str, Any]:
    objects = render_objects(PLAN, VARIANTS[variant])
    workload = next(o for o in objects if o["kind"] in {"Job", "CronJob"})
    spec = workload["spec"].get("jobTemplate", workload)["spec"]["template"]
    return dict(spec)


def test_the_dsn_comes_from_the_secret_and_the_token_from_workload_identity() -> None:
    pod = _pod("cronjob-fleet-postgres")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["EGRESS_STORE"]["valueFrom"] == {
        "secretKeyRef": {"name": "egress-fleet-store", "key": "dsn"}
    }
    assert env["EGRESS_STORE_AUTH"]["value"] == "entra"
    assert "EGRESS_STORE_PASSWORD_FILE" not in env
    assert pod["spec"]["serviceAccountName"] == "egress-fleet-writer"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    args = pod["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--pending", "/var/lib/egress/pending.jsonl"]  # on the pool's PVC
    kinds = [o["kind"] for o in render_objects(PLAN, VARIANTS["cronjob-fleet-postgres"])]
    assert "Role" not in kinds and kinds.count("CronJob") == 2  # no per-pool report reader


def test_a_password_secret_is_a_file_so_rotation_reaches_the_next_connect() -> None:
    pod = _pod("job-fleet-postgres-password")
    container_spec = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container_spec["env"]}
    assert env["EGRESS_STORE_PASSWORD_FILE"]["value"] == f"{STORE_SECRET_DIR}/password"
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "store-secret")
    assert volume["secret"]["secretName"] == "egress-fleet-store"
    assert pod["spec"]["serviceAccountName"] == "egress-probe"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workload_identity_sa": "writer"}, "add --store-secret"),
        ({"store_secret": "Not_A_Name"}, "--store-secret 'Not_A_Name' is not a valid"),
        (
            {"store_secret": "s", "workload_identity_sa": "bad name"},
            "--workload-identity-sa 'bad name'",
        ),
    ],
)
def test_bad_fleet_store_options_are_refused(change: dict[str, Any], message: str) -> None:
    spec = ManifestSpec(version=VERSION, targets=(pool_target("system"),), **change)
    with pytest.raises(UsageError, match=message):
        render_objects(PLAN, spec)


def test_the_rendered_job_writes_its_run_to_postgresql(pg_server: PgServer, tmp_path: Path) -> None:
    for folder in ("plan", "store", "tmp", "secret"):
        (tmp_path / folder).mkdir()
    (tmp_path / "plan" / "probe-plan.json").write_text(LOCAL_PLAN.to_json(), encoding="utf-8")
    (tmp_path / "secret" / "password").write_text("egress-test-password\n")  # the Secret's key
    dsn = pg_server.dsn(pg_server.create_database(), password=None)  # password: from the file
    entry = container("job-fleet-postgres-password")
    env = pod_env({**entry, "env": [e for e in entry["env"] if "secretKeyRef" not in str(e)]})
    env["EGRESS_STORE"] = dsn  # what the kubelet takes from the Secret's `dsn` key
    env["EGRESS_STORE_PASSWORD_FILE"] = str(tmp_path / "secret" / "password")
    done = run_container(
        {**entry, "env": [{"name": k, "value": v} for k, v in env.items()]}, tmp_path
    )
    assert done.returncode in (0, 1), done.stderr  # the verdicts decide, not the store
    assert "kept in" not in done.stderr
    secret = PostgresAuth(password_file=tmp_path / "secret" / "password")
    with ResultStore(dsn, create=False, auth=secret) as store:
        [run_id] = store.run_ids()
        run = store.read_run(run_id)
    assert run is not None
    assert (run.location.cluster, run.location.node_pool) == ("aks-dev-westeurope", "system")
    assert [c.check_id for c in run.checks] == ["loopback/9"]
