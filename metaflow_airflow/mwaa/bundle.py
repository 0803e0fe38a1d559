"""An Amazon MWAA bundle: what to upload so that an MWAA environment loads published flows.

MWAA installs ``requirements.txt`` under the constraints of its Airflow release, unpacks
``plugins.zip`` to ``/usr/local/airflow/plugins`` and parses ``dags/``. Neither the Kubernetes
provider nor s3fs is in its base image (pydantic is missing from one 2.11 image), and private-
network environments cannot reach PyPI. So the bundle carries wheels of everything the base
image lacks, and ``requirements.txt`` installs exactly those, offline (``--no-index``).

Which versions? The constraints files are not on PyPI, so the bundle resolves with uv as of
the Airflow release's upload date (``--exclude-newer``): the newest versions that existed when
the release (and its constraints) were cut. Like a constraints file, that is one resolution of
everything together; the base image (Airflow and the Amazon provider) is taken to hold its
share of it, and the rest is downloaded as wheels for MWAA's platform. The whole resolution is
written next to the bundle (``assumed-constraints.txt``): the MWAA simulation test builds its
base image from it, and an operator can compare it with the environment's real versions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from metaflow_airflow.errors import MetaflowAirflowError
from metaflow_airflow.version import __version__

PACKAGE = "metaflow-airflow"
PLUGINS_DIR = "/usr/local/airflow/plugins"
# MWAA's Python by Airflow major version (the Amazon MWAA release notes of each image).
MWAA_PYTHON = {"2": "3.11", "3": "3.12"}
# What the MWAA base image has beyond Airflow itself.
BASE_IMAGE = ("apache-airflow-providers-amazon",)
# Shipped even when the base image resolves them: some MWAA images lack pydantic.
ALWAYS_SHIP = (
    "annotated-types",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "typing-inspection",
)
# Extras of this package the Airflow side needs: the Kubernetes provider and s3fs.
EXTRAS = "airflow,s3"
# MWAA runs x86_64 Amazon Linux 2023 (glibc 2.34): wheels of any of these tags install there.
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_12_x86_64",
    "manylinux2010_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
)


ASSUMED_CONSTRAINTS = "assumed-constraints.txt"
LOADER_FILE = "dags_loader.py"


class BundleError(MetaflowAirflowError):
    """The bundle could not be resolved, downloaded or written."""


@dataclass(frozen=True)
class Bundle:
    """What :func:`build_bundle` wrote."""

    out_dir: Path
    airflow_version: str
    python_version: str
    resolved_as_of: str
    wheels: tuple[str, ...]

    @property
    def requirements(self) -> Path:
        return self.out_dir / "requirements.txt"

    @property
    def plugins_zip(self) -> Path:
        return self.out_dir / "plugins.zip"

    @property
    def assumed_constraints(self) -> Path:
        return self.out_dir / ASSUMED_CONSTRAINTS


def build_bundle(
    out_dir: Path,
    airflow_version: str,
    *,
    python_version: str | None = None,
    resolved_as_of: str | None = None,
    project_dir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Bundle:
    """Write requirements.txt, plugins.zip, dags/dags_loader.py and README.md to ``out_dir``."""
    project_dir = project_dir or _source_tree()
    python_version = python_version or MWAA_PYTHON[airflow_version.split(".")[0]]
    resolved_as_of = resolved_as_of or _release_cutoff(airflow_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mwaa-bundle-") as tmp:
        work = Path(tmp)
        progress("building the metaflow-airflow wheel...")
        own_wheel = _build_own_wheel(project_dir, work / "own")
        base = [f"apache-airflow=={airflow_version}", *BASE_IMAGE]
        progress(
            f"resolving for Airflow {airflow_version}, Python {python_version}, "
            f"as of {resolved_as_of}..."
        )
        resolve = _Resolver(work, python_version, resolved_as_of)
        wanted = resolve("full", [*base, f"{PACKAGE}[{EXTRAS}] @ {own_wheel.as_uri()}"])
        in_image = resolve("base", base, constraints=wanted)
        ship = {
            name: version
            for name, version in wanted.items()
            if name != PACKAGE and (name not in in_image or name in ALWAYS_SHIP)
        }
        progress(f"downloading {len(ship)} wheels for {', '.join(PLATFORMS[:1])}...")
        wheels_dir = work / "wheels"
        _download_wheels(ship, wheels_dir, python_version)
        shutil.copy(own_wheel, wheels_dir / own_wheel.name)
        progress(f"writing {out_dir}...")
        wheels = tuple(sorted(p.name for p in wheels_dir.glob("*.whl")))
        _write_zip(out_dir / "plugins.zip", wheels_dir, wheels)
    pins = {PACKAGE: __version__, **ship}
    (out_dir / ASSUMED_CONSTRAINTS).write_text(
        "".join(f"{n}=={v}\n" for n, v in sorted(wanted.items()) if n != PACKAGE),
        encoding="utf-8",
    )
    (out_dir / "requirements.txt").write_text(
        _requirements(pins, airflow_version, python_version, resolved_as_of), encoding="utf-8"
    )
    (out_dir / "dags").mkdir(exist_ok=True)
    shutil.copy(project_dir / LOADER_FILE, out_dir / "dags" / LOADER_FILE)  # the one loader file
    (out_dir / "README.md").write_text(
        _readme(airflow_version, python_version, len(wheels)), encoding="utf-8"
    )
    return Bundle(out_dir, airflow_version, python_version, resolved_as_of, wheels)


def _release_cutoff(airflow_version: str) -> str:
    """A day after ``apache-airflow==airflow_version`` was uploaded to PyPI (its constraints
    were cut then), as uv's ``--exclude-newer`` wants it."""
    url = "https://pypi.org/pypi/apache-airflow/json"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            files = json.load(response)["releases"].get(airflow_version)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"cannot read Airflow's release dates from PyPI ({exc}); "
            "pass --resolved-as-of YYYY-MM-DD"
        ) from exc
    if not files:
        raise BundleError(f"apache-airflow {airflow_version} is not on PyPI")
    uploaded = min(datetime.fromisoformat(f["upload_time"]) for f in files)
    return (uploaded + timedelta(days=1)).date().isoformat()


def _source_tree() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise BundleError(
            "metaflow-airflow is not installed from a source checkout: pass "
            "--project-dir with the project's source"
        )
    return root


def _uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError as exc:
        raise BundleError("mwaa-bundle needs uv: pip install 'metaflow-airflow[mwaa]'") from exc
    return find_uv_bin()


def _run(argv: list[str], what: str) -> str:
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        detail = (completed.stderr.strip() or completed.stdout.strip()).splitlines()[-3:]
        raise BundleError(f"{what} failed: {' / '.join(detail)}")
    return completed.stdout


def _build_own_wheel(project_dir: Path, out: Path) -> Path:
    _run(
        [_uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(project_dir)],
        "building the metaflow-airflow wheel",
    )
    (wheel,) = out.glob("*.whl")
    return wheel


@dataclass(frozen=True)
class _Resolver:
    """``uv pip compile`` for MWAA's platform and Python, as of a date."""

    work: Path
    python_version: str
    resolved_as_of: str

    def __call__(
        self, name: str, requirements: Iterable[str], constraints: dict[str, str] | None = None
    ) -> dict[str, str]:
        source = self.work / f"{name}.in"
        source.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        extra = []
        if constraints:
            pinned = self.work / f"{name}-constraints.txt"
            pinned.write_text(
                "".join(f"{n}=={v}\n" for n, v in sorted(constraints.items()) if n != PACKAGE),
                encoding="utf-8",
            )
            extra = ["--constraint", str(pinned)]
        output = _run(
            [
                _uv(),
                "pip",
                "compile",
                str(source),
                *extra,
                "--quiet",
                "--no-header",
                "--no-annotate",
                "--python-version",
                self.python_version,
                "--python-platform",
                "x86_64-manylinux_2_28",
                "--exclude-newer",
                self.resolved_as_of,
            ],
            f"resolving {name} requirements",
        )
        pins = {}
        for line in output.splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?(?:==| @ )(\S+)", line.strip())
            if match:
                pins[_canonical(match[1])] = match[2]
        return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _download_wheels(pins: dict[str, str], out: Path, python_version: str) -> None:
    """Wheels for MWAA's platform (pip: uv cannot download without installing)."""
    platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            *platform_args,
            "--dest",
            str(out),
            *(f"{name}=={version}" for name, version in sorted(pins.items())),
        ],
        "downloading wheels",
    )


def _write_zip(path: Path, folder: Path, names: Iterable[str]) -> None:
    """Wheels at the top of the zip (they land in /usr/local/airflow/plugins), with fixed
    timestamps so the same wheels give the same zip."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, (folder / name).read_bytes())


def _requirements(pins: dict[str, str], airflow: str, python: str, as_of: str) -> str:
    lines = [
        f"# metaflow-airflow {__version__} for Amazon MWAA, Airflow {airflow}, Python {python}.",
        f"# Written by `metaflow-airflow mwaa-bundle`; versions resolved as of {as_of}.",
        "# Installs offline from the wheels of plugins.zip (MWAA unpacks it to plugins/).",
        "--no-index",
        f"--find-links {PLUGINS_DIR}",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    return "\n".join(lines) + "\n"


def _readme(airflow: str, python: str, wheel_count: int) -> str:
    return f"""# metaflow-airflow for Amazon MWAA (Airflow {airflow}, Python {python})

Upload to the environment's S3 bucket and select the new object versions in the environment:

- `plugins.zip` → the plugins file: {wheel_count} wheels, unpacked to `{PLUGINS_DIR}`.
- `requirements.txt` → the requirements file: installs metaflow-airflow, the Kubernetes provider
  and s3fs from those wheels, offline (`--no-index`), so private networks work.
- `dags/dags_loader.py` → the `dags/` folder: builds one DAG per published flow.

Then tell the loader where flows are published, in a startup script:

```bash
export METAFLOW_AIRFLOW_STORE=s3://your-bucket/metaflow-airflow
```

The execution role (the `aws_default` connection) must be allowed to list and read that prefix.
Optional: the Airflow configuration option `metaflow_airflow.ui_url` (Metaflow UI links).
See docs/mwaa.md in metaflow-airflow for the whole walk-through.
"""
