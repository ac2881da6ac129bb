"""The fleet report's batched runs-table reads agree with the plain queries they replace.

`scopes` skips through an index, `coverage` groups by node first and looks up only silent
pools, `last_two_runs` and `checks_at` read many pools or findings per statement. Each is
compared, on both backends, with the one-pool-at-a-time SQL it replaced, over a store with
the edge cases: a pool that ran in two regions, runs without a cluster, pool or node, two
runs of one pool starting at the same moment, pools silent before the window or only seen
after it, and more pools than one statement takes (the branch limit set to 2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from egress.compliance import Assurance, CheckStatus, Verdict
from egress.results import RunReport
from egress.store import Connection, ResultStore
from egress.store import queries as q
from egress.store._store import format_ts, parse_ts

from store.conftest import store_location  # noqa: F401  (the fixture: one store per backend)
from store.sample_runs import BASE, make_run

SINCE, UNTIL = BASE, BASE + timedelta(hours=6)


def _moved(run: RunReport, **where: str | None) -> RunReport:
    """`run` probed somewhere else (e.g. node=None: the probe did not know its node)."""
    location = run.location.model_copy(update=where)
    return run.model_copy(
        update={
            "location": location,
            "checks": tuple(c.model_copy(update={"location": location}) for c in run.checks),
        }
    )


def _history() -> list[RunReport]:
    runs = []
    for hour in range(6):
        at = BASE + timedelta(hours=hour, minutes=5)
        runs.append(make_run(f"a-sys-{hour}", at, cluster="aks-a"))
        # the same pool on two nodes, one run of them without a node name
        gpu = make_run(f"a-gpu-{hour}", at, cluster="aks-a", node_pool="gpu")
        runs.append(_moved(gpu, node=None if hour == 3 else f"aks-gpu-{hour % 2}"))
        # the pool moved region half way (two regions for one pool)
        region = "eastus" if hour < 3 else "westus"
        runs.append(make_run(f"b-sys-{hour}", at, cluster="aks-b", region=region))
    # two runs of one pool starting at the same moment: the greater run id is the newer
    tie = BASE + timedelta(hours=5, minutes=30)
    runs += [
        make_run("a-sys-tie-1", tie, cluster="aks-a", overrides={"mcr-443": Verdict.BLOCKED}),
        make_run("a-sys-tie-2", tie, cluster="aks-a"),
    ]
    # a probe that knew neither its cluster nor its pool
    runs.append(_moved(make_run("nowhere-0", BASE + timedelta(hours=1)), cluster=None))
    runs.append(_moved(runs[-1], node_pool=None).model_copy(update={"run_id": "nowhere-1"}))
    # silent pools: last seen before the window, twice; only seen after it
    for days in (3, 2):
        runs.append(
            make_run(f"c-old-{days}", BASE - timedelta(days=days), cluster="aks-c", node_pool="old")
        )
    runs.append(make_run("d-late", UNTIL + timedelta(hours=1), cluster="aks-d"))
    runs.append(
        make_run(
            "c-leak",
            BASE + timedelta(hours=2),
            cluster="aks-c",
            overrides={"canary-bing-443": Verdict.REACHABLE},
        )
    )
    return runs


@pytest.fixture
def edge_store(store_location: str) -> str:  # noqa: F811
    with ResultStore(store_location) as store:
        for run in _history():
            assert store.append_run(run)
    return store_location


@pytest.fixture(params=[2, 200], ids=["two-per-statement", "all-in-one"])
def branches(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(q, "_BRANCHES", request.param)
    return int(request.param)


# -- the plain queries the report ran before (one statement per pool or finding) -----------


def _plain_scopes(conn: Connection) -> list[q.StoredScope]:
    rows = conn.execute(
        "SELECT DISTINCT cluster, node_pool, region FROM runs ORDER BY cluster, node_pool, region"
    )
    return [q.StoredScope(*row) for row in rows]


def _plain_coverage(
    conn: Connection, since: datetime, until: datetime, clusters: q.Clusters
) -> list[q.PoolCoverage]:
    window = (format_ts(since), format_ts(until))
    marks = ", ".join("?" for _ in clusters or ()) or "NULL"
    only = "" if clusters is None else f" AND cluster IN ({marks})"
    extra = list(clusters or ())
    pools = {
        (c, p): q.PoolCoverage(c, p, int(n), int(nodes), parse_ts(first), parse_ts(last))
        for c, p, n, nodes, first, last in conn.execute(
            "SELECT cluster, node_pool, count(*), count(DISTINCT node), min(started_at), "
            f"max(started_at) FROM runs WHERE started_at >= ? AND started_at < ?{only} "
            "GROUP BY cluster, node_pool",
            [*window, *extra],
        )
    }
    for c, p, last in conn.execute(
        f"SELECT cluster, node_pool, max(started_at) FROM runs WHERE started_at < ?{only} "
        "GROUP BY cluster, node_pool",
        [window[0], *extra],
    ):
        pools.setdefault((c, p), q.PoolCoverage(c, p, 0, 0, None, parse_ts(last)))
    return [pools[key] for key in sorted(pools)]


def _plain_last_two(
    conn: Connection, pool: q.Scope, since: datetime, until: datetime
) -> list[q.RunVerdicts]:
    runs = conn.execute(
        "SELECT id, run_id, started_at FROM runs WHERE cluster = ? AND node_pool = ? "
        "AND started_at >= ? AND started_at < ? ORDER BY started_at DESC, run_id DESC LIMIT 2",
        (*pool, format_ts(since), format_ts(until)),
    ).fetchall()
    result = []
    for pk, run_id, started_at in runs:
        rows = conn.execute(
            "SELECT check_id, verdict, status, assurance FROM check_results WHERE run = ?", (pk,)
        )
        verdicts = {
            c: (Verdict(v), CheckStatus(s), Assurance(a) if a else None) for c, v, s, a in rows
        }
        result.append(q.RunVerdicts(run_id, parse_ts(started_at), verdicts))
    return result


def _plain_run_of(conn: Connection, group: q.StatusCount, moment: datetime) -> str | None:
    row = conn.execute(
        "SELECT r.run_id FROM runs AS r JOIN check_results AS c ON c.run = r.id "
        "AND c.check_id = ? WHERE r.cluster = ? AND r.node_pool = ? AND r.started_at = ? "
        "AND c.verdict = ? AND c.status = ? AND coalesce(c.assurance, '') = ? "
        "ORDER BY r.run_id LIMIT 1",
        (
            group.check_id,
            group.cluster,
            group.node_pool,
            format_ts(moment),
            group.verdict.value,
            group.status.value,
            group.assurance.value if group.assurance else "",
        ),
    ).fetchone()
    return None if row is None else str(row[0])


# -- the batched reads against them ---------------------------------------------------------


def test_scopes_skip_scan_lists_every_distinct_scope(edge_store: str) -> None:
    with ResultStore(edge_store, create=False) as store:
        found = q.scopes(store.connection)
        assert found == _plain_scopes(store.connection)
    assert q.StoredScope("aks-b", "system", "eastus") in found
    assert q.StoredScope("aks-b", "system", "westus") in found
    assert q.StoredScope("", "", "eastus") in found and len(found) == 9


def test_coverage_matches_the_plain_count(edge_store: str, branches: int) -> None:
    with ResultStore(edge_store, create=False) as store:
        conn = store.connection
        stored = [(s.cluster, s.node_pool) for s in q.scopes(conn)]
        selections: list[q.Clusters] = [None, ("aks-a", "aks-c"), ("aks-d",), ()]
        for clusters in selections:
            for start, end in ((0, 6), (2, 4), (7, 9)):
                since, until = BASE + timedelta(hours=start), BASE + timedelta(hours=end)
                found = q.coverage(conn, since, until, stored, clusters)
                assert found == _plain_coverage(conn, since, until, clusters), (clusters, start)
        found = q.coverage(conn, SINCE, UNTIL, stored, None)
    gpu = next(p for p in found if (p.cluster, p.node_pool) == ("aks-a", "gpu"))
    assert (gpu.runs, gpu.nodes) == (6, 2)  # the run without a node is no third node
    old = next(p for p in found if p.node_pool == "old")
    assert old.runs == 0 and old.last_run == BASE - timedelta(days=2)
    assert all(p.cluster != "aks-d" for p in found)  # seen only after the window


def test_last_two_runs_of_every_pool_match_one_pool_at_a_time(
    edge_store: str, branches: int
) -> None:
    with ResultStore(edge_store, create=False) as store:
        conn = store.connection
        pools = sorted({(s.cluster, s.node_pool) for s in q.scopes(conn)})
        found = q.last_two_runs(conn, pools, SINCE, UNTIL)
        assert found == {pool: _plain_last_two(conn, pool, SINCE, UNTIL) for pool in pools}
    assert [r.run_id for r in found[("aks-a", "system")]] == ["a-sys-tie-2", "a-sys-tie-1"]
    assert found[("aks-c", "old")] == [] and len(found[("", "")]) == 1


def test_checks_at_finds_the_same_runs_as_one_lookup_each(edge_store: str, branches: int) -> None:
    with ResultStore(edge_store, create=False) as store:
        conn = store.connection
        groups = q.status_counts(conn, SINCE, UNTIL)
        wanted = [(g, moment) for g in groups for moment in (g.first_at, g.last_at)]
        wanted.append((groups[0], UNTIL + timedelta(days=1)))  # no run then: None
        found = q.checks_at(conn, wanted)
        expected = [_plain_run_of(conn, group, moment) for group, moment in wanted]
    assert [c.run_id if c else None for c in found] == expected
    assert found[-1] is None and all(found[:-1])
    for (group, moment), check in zip(wanted[:-1], found[:-1], strict=True):
        assert check is not None
        assert (check.check_id, check.verdict, check.status, check.assurance) == (
            group.check_id,
            group.verdict.value,
            group.status,
            group.assurance,
        )
        assert check.run_started_at == moment
