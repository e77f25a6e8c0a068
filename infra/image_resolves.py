#!/usr/bin/env python3
"""Check, without Docker, that the pipeline image's install set resolves for the image's platform.

infra/docker/Dockerfile installs `pip install -c constraints.txt ".[image]"` and then
`pip install --no-deps -r requirements-nodeps.txt` into tensorflow/tfx:1.16.0 (CPython 3.10, x86_64
Linux). This resolves the same set with pip's resolver for that platform, from wheels only, so a pin
with no wheel the image can install fails CI here instead of at `docker build`:

  pip install --dry-run --ignore-installed --report ... --only-binary=:all:
      --python-version 3.10 --implementation cp --abi cp310 --platform manylinux_2_<N>_x86_64 ...
      -c constraints.txt <[project].dependencies + the "image" extra of pyproject.toml>

The project itself is not installed (a local path cannot be wheel-only): its declared dependencies
and the extra's pins are, which is what `.[image]` adds. Two documented exceptions, and nothing else,
may lack a wheel (each is named in the output):

- PURE_SDISTS: pure-Python pins PyPI has only as sdists; pip builds them in the image like anywhere,
  so they are built here into wheels and must come out `py3-none-any` (a compiled one fails).
- FROM_BASE_IMAGE: compiled sdist-only pins the base image already holds at the pinned version (pip
  leaves them alone there); a metadata-only stand-in lets the resolver go on.

Platforms: manylinux up to glibc IMAGE_GLIBC (default 2.28, assumed for tensorflow/tfx:1.16.0, which
is built on a Google Deep Learning Container image; not verifiable without Docker: `ldd --version`
in the image tells). IMAGE_GLIBC=2.17 checks strict manylinux2014, which h5py 3.16.0, pillow
12.3.0 and five more pins fail (their wheels start at manylinux_2_24..2_28).

Needs the package index (PyPI or $PIP_INDEX_URL) and a Python 3.10 (re-run under one found by
.ci/find-python310); this machine's pip config (find-links, local indexes, global constraints) is
ignored so the check sees what `docker build` sees. Run from anywhere: python3 infra/image_resolves.py
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.10"
DEFAULT_GLIBC = "2.28"

PURE_SDISTS = ("google-apitools", "kfp", "kfp-server-api", "rouge-score", "antlr4-python3-runtime")
# Compiled, sdist-only. tensorflow-transform needs pyfarmhash<0.4 and 0.3.2 is its newest release, so
# tensorflow/tfx:1.16.0 holds 0.3.2 already built (an assumption, like the glibc one).
FROM_BASE_IMAGE = ("pyfarmhash",)

# pip settings that may come from the environment; the rest (find-links, extra indexes, constraints)
# describe this machine, not the image build.
_KEEP_ENV = ("PIP_INDEX_URL", "PIP_CERT", "PIP_CLIENT_CERT", "PIP_TRUSTED_HOST", "PIP_CACHE_DIR", "PIP_PROXY")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def image_requirements(pyproject: Path) -> list:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli if installed, else the copy pip vendors
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            from pip._vendor import tomli as tomllib
    project = tomllib.loads(pyproject.read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["image"])


def platforms(glibc: str) -> list:
    """manylinux tags pip should accept for a glibc 2.<glibc> x86_64 system, newest first."""
    major, minor = (int(x) for x in glibc.split("."))
    if major != 2 or minor < 17:
        raise SystemExit(f"IMAGE_GLIBC={glibc}: expected 2.17 or newer")
    tags = [f"manylinux_2_{m}_x86_64" for m in range(minor, 16, -1)]
    return tags + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def pip_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in _KEEP_ENV}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf at all (global, user or site)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


_PYTHON = [sys.executable]
MIN_PIP = (24, 1)  # older pips check Requires-Python against the running interpreter, not --python-version


def pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [*_PYTHON, "-m", "pip", *args, "--timeout", "30", "--retries", "2"]
    return subprocess.run(cmd, env=pip_env(), capture_output=True, text=True)


def ensure_recent_pip(tmp: Path) -> None:
    """Use this interpreter's pip if recent enough, else a throwaway venv with a recent one."""
    import importlib.metadata

    try:
        version = tuple(int(x) for x in importlib.metadata.version("pip").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        version = (0, 0)
    if version >= MIN_PIP:
        return
    venv = tmp / "pip-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    _PYTHON[:] = [str(venv / "bin" / "python")]
    proc = pip("install", "--quiet", f"pip>={'.'.join(map(str, MIN_PIP))}")
    if proc.returncode != 0:
        raise SystemExit(f"could not install a recent pip (>= {MIN_PIP}):\n{explain(proc)}")


def explain(proc: subprocess.CompletedProcess) -> str:
    """pip's own reason, without its progress noise."""
    noise = ("Collecting", "Using cached", "Downloading", "━", "Obtaining")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines()
             if line.strip() and not line.lstrip().startswith(noise)]
    return "\n".join(lines[-25:])


def stand_in_wheel(directory: Path, name: str, version: str) -> Path:
    """A metadata-only wheel for a distribution the base image already has (no files, no deps)."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    info = f"{dist}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: infra/image_resolves.py\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for n, text in files.items():
            zf.writestr(n, text)
    return path


def local_wheels(directory: Path, pins: dict) -> list:
    """Wheels for the documented sdist-only pins; a list of problems (empty when all is well)."""
    problems = []
    wanted = [f"{name}=={pins[name]}" for name in PURE_SDISTS if name in pins]
    if wanted:
        proc = pip("wheel", "--no-deps", "--quiet", "-w", str(directory), *wanted)
        if proc.returncode != 0:
            return [f"building the sdist-only pins {', '.join(wanted)} failed:\n{explain(proc)}"]
        for whl in directory.glob("*.whl"):
            if not whl.name.endswith("-none-any.whl"):
                problems.append(f"{whl.name}: listed in PURE_SDISTS but builds a compiled wheel")
    for name in FROM_BASE_IMAGE:
        if name in pins:
            stand_in_wheel(directory, name, pins[name])
    return problems


def resolve(constraints: Path, nodeps: Path, glibc: str, keep_report: Path = None) -> int:
    pins = read_pins(constraints)
    requirements = image_requirements(REPO / "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="image-resolves-") as tmp:
        ensure_recent_pip(Path(tmp))
        # pip takes platform options only with --target (or --dry-run --report); a dry run writes nothing.
        target = ["--target", str(Path(tmp) / "target"), "--only-binary=:all:", "--python-version",
                  PYTHON_VERSION, "--implementation", "cp", "--abi", "cp" + PYTHON_VERSION.replace(".", "")]
        for tag in platforms(glibc):
            target += ["--platform", tag]
        wheels = Path(tmp) / "wheels"
        wheels.mkdir()
        problems = local_wheels(wheels, pins)
        if problems:
            print("\n".join(problems))
            return 1
        report = Path(tmp) / "report.json"
        proc = pip("install", "--dry-run", "--ignore-installed", "--report", str(report), *target,
                   "--find-links", str(wheels), "-c", str(constraints), *requirements)
        if proc.returncode != 0:
            print(f"the image's install set does not resolve from cp310 manylinux wheels (glibc {glibc}):")
            print(explain(proc))
            return 1
        installed = {normalize(i["metadata"]["name"]): i["metadata"]["version"]
                     for i in json.loads(report.read_text())["install"]}
        if keep_report:
            keep_report.write_text(report.read_text())
        proc = pip("install", "--dry-run", "--ignore-installed", "--quiet", "--no-deps", *target,
                   "-r", str(nodeps))
        if proc.returncode != 0:
            print(f"{nodeps.name} (installed --no-deps) has a pin without a wheel for the image:")
            print(explain(proc))
            return 1
    built = [n for n in PURE_SDISTS if n in installed]
    based = [f"{n}=={installed[n]}" for n in FROM_BASE_IMAGE if n in installed]
    print(f"image install set resolves: {len(installed)} distributions for CPython {PYTHON_VERSION}, "
          f"manylinux x86_64 up to glibc {glibc}, plus {nodeps.name}")
    print(f"  built from pure-Python sdists: {', '.join(built) or 'none'}")
    print(f"  taken from the base image: {', '.join(based) or 'none'}")
    return 0


def ensure_python310() -> None:
    """pip evaluates environment markers (`python_version >= "3.11"`) with the running interpreter,
    whatever --python-version says: re-run under a Python 3.10 (.ci/find-python310)."""
    if sys.version_info[:2] == (3, 10):
        return
    found = subprocess.run(["bash", str(REPO / ".ci" / "find-python310")], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        raise SystemExit(f"Python 3.10 is needed to resolve for the image: {found.stderr.strip()}")
    python = found.stdout.strip()
    os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


def main(argv=None) -> int:
    ensure_python310()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, default=REPO / "constraints.txt")
    parser.add_argument("--nodeps", type=Path, default=REPO / "requirements-nodeps.txt")
    parser.add_argument("--glibc", default=os.environ.get("IMAGE_GLIBC", DEFAULT_GLIBC),
                        help=f"newest glibc of the image (default: $IMAGE_GLIBC, else {DEFAULT_GLIBC})")
    parser.add_argument("--report", type=Path, help="also write pip's installation report (JSON) here")
    args = parser.parse_args(argv)
    return resolve(args.constraints.resolve(), args.nodeps.resolve(), args.glibc,
                   args.report.resolve() if args.report else None)


if __name__ == "__main__":
    sys.exit(main())
