"""Mutation testing of the modules whose bugs tests must catch (not run in CI: it takes long).

    pip install -e '.[mutation]'
    python scripts/mutation.py                      # every module below
    python scripts/mutation.py --module diff --module compliance --max-seconds 1200

Each module runs in its own throw-away copy of the checkout with mutmut (so `mutants/` never
lands in the tree), against the tests that exercise it; the score is killed / (killed +
survived + no tests + timeout), i.e. every mutant no test notices counts against it. The
surviving mutants are listed so each can become a test (`mutmut show NAME` in the work folder,
printed at the end; pass --keep to keep it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    source: str
    tests: tuple[str, ...]
    ignore: tuple[str, ...] = ()  # timing-sensitive under load; a flaky clean run stops mutmut


# Test subsets: the fast tests that exercise each module; mutmut runs, per mutant, only those
# that reach the mutated function. The diff's are unit tests without the emulator (a mutant of
# build_plan would otherwise run every apply test). Paths that do not exist yet are skipped.
TARGETS = {
    "diff": Target(
        "egress/azure/diff.py",
        (
            "tests/azure/test_azure_diff.py",
            "tests/azure/test_azure_diff_fields.py",
            "tests/azure/test_azure_diff_units.py",
            "tests/azure/test_azure_diff_plans.py",
        ),
    ),
    "compliance": Target(
        "egress/compliance.py",
        ("tests/compliance", "tests/probe", "tests/report", "tests/metrics"),
        ignore=("tests/probe/test_runner.py",),
    ),
    "judge": Target("egress/probe/judge.py", ("tests/probe",)),
    "queries": Target("egress/store/queries.py", ("tests/store", "tests/report")),
}


ALSO_COPY = ("fqdn_lists/", "examples/", "docs/", "bench/", ".ci/", "README.md", "Dockerfile")


def _copy_checkout(work: Path) -> None:
    """Tracked and new (not ignored) files only: no .venv, no caches, no earlier mutants."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)


def _config(target: Target) -> str:
    tests = [t for t in target.tests if (ROOT / t).exists()]
    lines = [
        "[mutmut]",
        "source_paths=egress/",
        f"only_mutate={target.source}",
        "pytest_add_cli_args_test_selection=",
        *(f"    {t}" for t in tests),
        # mutmut copies only egress/ and tests/ into mutants/; the tests also read these.
        "also_copy=",
        *(f"    {extra}" for extra in ALSO_COPY if (ROOT / extra).exists()),
        "pytest_add_cli_args=",
        "    -q",
        "    -p",
        "    no:cacheprovider",
        "    -m",
        "    not netns",
        *(f"    --ignore={path}" for path in target.ignore),
    ]
    return "\n".join(lines) + "\n"


def run_one(name: str, target: Target, work: Path, max_children: int, max_seconds: float) -> dict:
    work.mkdir(parents=True)
    _copy_checkout(work)
    (work / "setup.cfg").write_text(_config(target))
    started = time.monotonic()
    log = work / "mutmut-run.log"
    try:
        with log.open("w") as out:  # mutmut's progress spinner; kept out of this report
            subprocess.run(
                [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)],
                cwd=work,
                timeout=max_seconds,
                check=False,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finished = True
    except subprocess.TimeoutExpired:
        finished = False  # the stats so far still count; the rest are reported as not run
    subprocess.run(
        [sys.executable, "-m", "mutmut", "export-cicd-stats"],
        cwd=work,
        check=False,
        capture_output=True,
    )
    if "Failed to run clean test" in log.read_text(errors="replace"):
        print(f"{target.source}: the unmutated tests failed, no score; see {log}", flush=True)
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    results = subprocess.run(
        [sys.executable, "-m", "mutmut", "results"],
        cwd=work,
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    survivors = [line.strip() for line in results.splitlines() if "survived" in line]
    judged = sum(stats.get(k, 0) for k in ("killed", "survived", "no_tests", "timeout"))
    score = 100.0 * stats.get("killed", 0) / judged if judged else 0.0
    return {
        "module": target.source,
        "finished": finished,
        "seconds": round(time.monotonic() - started),
        "score": round(score, 1),
        **stats,
        "survivors": survivors,
        "workdir": str(work),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="per module")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="egress-mutation-"))
    report = []
    for name in args.module or sorted(TARGETS):
        result = run_one(name, TARGETS[name], base / name, args.max_children, args.max_seconds)
        report.append(result)
        print(
            f"{result['module']}: {result['score']}% killed "
            f"({result.get('killed', 0)} killed, {result.get('survived', 0)} survived, "
            f"{result.get('no_tests', 0)} without tests, {result.get('timeout', 0)} timed out, "
            f"of {result.get('total', 0)}; {result['seconds']}s"
            f"{'' if result['finished'] else ', stopped at --max-seconds'})",
            flush=True,
        )
        for survivor in result["survivors"]:
            print(f"  survived: {survivor}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.keep:
        print(f"work folders kept under {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
