"""The Dockerfile's recipe, replayed without Docker: context, wheel, clean venv, entry point."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from egress.probe_plan import parse_plan

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
RUNTIME_UID = "10001"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, argument)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), " ".join(argument.split())
        if keyword == "FROM":
            base, _, name = argument.partition(" AS ")
            stages.append(Stage(base=base, name=name or None))
        elif not stages and keyword == "ARG":
            key, _, default = argument.partition("=")
            args[key] = default
        else:
            stages[-1].instructions.append((keyword, argument))
    return args, stages


def expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], value)


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    # Only the subset of .dockerignore syntax this copier implements.
    assert all(not p.startswith("!") for p in patterns), "exceptions are not replayed here"
    return patterns


def is_ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def copy_context(destination: Path) -> None:
    """`COPY . .` of the build context that .dockerignore leaves."""
    patterns = ignore_patterns()
    for root, dirs, files in os.walk(REPO):
        relative_root = Path(root).relative_to(REPO)
        dirs[:] = [d for d in dirs if not is_ignored((relative_root / d).as_posix(), patterns)]
        for name in files:
            relative = (relative_root / name).as_posix()
            if not is_ignored(relative, patterns):
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, target)


def clean_env(**extra: str) -> dict[str, str]:
    """No repo on sys.path, no parent venv leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
    )
    env.update(extra)
    return env


def test_dockerfile_is_a_two_stage_non_root_recipe_without_build_tools() -> None:
    args, stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(stages) == 2
    builder, final = stages
    assert builder.name == "builder"
    base = expand(builder.base, args)
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    assert expand(final.base, args) == base  # the venv links to the same interpreter
    assert any("pip wheel --no-deps" in run for run in builder.all("RUN"))
    assert final.all("COPY") == ["--from=builder /opt/egress /opt/egress"]
    assert final.all("USER") == [RUNTIME_UID]
    assert any(f"--uid {RUNTIME_UID}" in run for run in final.all("RUN"))
    final_runs = " ".join(final.all("RUN"))
    for tool in ("apt-get", "gcc", "build-essential", "pip ", "curl", "wget"):
        assert tool not in final_runs, f"final stage must not install {tool}"
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["/opt/egress/bin/egress"]
    assert json.loads(final.all("CMD")[0]) == ["probe", "run", "--help"]
    # The user directive comes after everything that needs root.
    keywords = [kw for kw, _ in final.instructions]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw in {"RUN", "COPY"})


def test_dockerignore_keeps_what_the_wheel_needs_and_drops_the_rest() -> None:
    patterns = ignore_patterns()
    for needed in ("pyproject.toml", "README.md", "egress/__init__.py", "fqdn_lists"):
        assert not is_ignored(needed, patterns), needed
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "egress/__pycache__/x"):
        assert is_ignored(dropped, patterns), dropped


def _link_deps(project: Path, into: Path) -> None:
    """Symlink the installed files of egress's runtime dependency closure into one folder.

    Only what pyproject.toml declares (and what those declare, markers evaluated) is linked,
    so an undeclared runtime import fails in the clean venv as it would in the image.
    """
    import tomllib
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    declared = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    pending, seen = [Requirement(r) for r in declared], set[str]()
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            continue  # an optional platform package this environment does not have
        name = dist.metadata["Name"].lower()
        if name in seen:
            continue
        seen.add(name)
        for file in dist.files or ():
            source = Path(str(dist.locate_file(file))).resolve()
            if file.parts[0] == ".." or not source.is_file() or file.suffix == ".pyc":
                continue
            target = into / file
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(source)
        pending.extend(Requirement(r) for r in dist.requires or ())
    assert {"azure-identity", "azure-mgmt-network", "typer", "pydantic"} <= seen


@pytest.mark.slow
def test_recipe_builds_a_wheel_that_runs_from_a_clean_venv(tmp_path: Path) -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    builder = stages[0]
    (run,) = builder.all("RUN")
    context, wheels, venv, elsewhere = (tmp_path / n for n in ("src", "wheels", "venv", "cwd"))
    for folder in (context, elsewhere):
        folder.mkdir()
    copy_context(context)

    # The builder's RUN line with the image paths mapped to temporary ones; `python` is this
    # interpreter. Offline: the wheel is built with this environment's setuptools (no build
    # isolation, no index), and the venv gets the wheel alone (no index, no dependencies) plus
    # exactly the declared dependency closure, linked from this environment (see _link_deps).
    deps = tmp_path / "deps"
    replay = run.replace("/opt/egress", str(venv)).replace("/wheels", str(wheels))
    replay = re.sub(r"(^|&& )python ", rf"\g<1>{shlex.quote(sys.executable)} ", replay)
    replay = replay.replace(" pip wheel ", " pip wheel --no-index --no-build-isolation ", 1)
    replay = replay.replace(" install ", " install --no-index --no-deps ", 1)
    site = f"{venv}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    replay = re.sub(
        r"(-m venv --without-pip \S+)",
        rf"\1 && echo {shlex.quote(str(deps))} > {shlex.quote(site)}/egress-deps.pth",
        replay,
        count=1,
    )
    assert "--no-index" in replay and "egress-deps.pth" in replay, replay
    _link_deps(context, deps)
    built = subprocess.run(
        ["/bin/sh", "-c", replay],
        cwd=context,
        env={  # no pip configuration: no index, no find-links, nothing to fetch from
            **{k: v for k, v in clean_env().items() if not k.startswith("PIP_")},
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert len(list(wheels.glob("egress-*.whl"))) == 1
    assert not (venv / "bin" / "pip").exists()  # no installer in what the image copies

    def egress(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "egress"), *argv],
            cwd=elsewhere,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import egress; print(egress.__file__)"],
        cwd=elsewhere,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert located.stdout.strip().startswith(str(venv)), "egress must come from the wheel"

    shown = egress("probe", "run", "--help")  # the image's default command
    assert shown.returncode == 0, shown.stderr
    assert "--plan" in shown.stdout

    compiled = egress("compile", "--region", "eastus", "--stdout", "probe-plan")
    assert compiled.returncode == 0, f"catalog data must ship in the wheel: {compiled.stderr}"
    plan = parse_plan(compiled.stdout, origin="egress compile --stdout probe-plan")
    assert plan.region == "eastus"
    assert plan.checks
