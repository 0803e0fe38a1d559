"""`make demo`: publish the example flows to a local store, load them through dags_loader.py
with real Airflow, run each with local compute, and read one artifact back with Metaflow.

Everything lives in .demo/ (Airflow home with SQLite, the manifest store, Metaflow's local
datastore). Exit code 0 only if every run succeeded. Other packages' warnings (Starlette's
deprecations, ...) are silenced: they are nothing a demo user can act on. It ends with what to
try next, every line of which works as printed (tests/unit/test_demo.py runs them).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
AIRFLOW_HOME = DEMO / "airflow"
STORE = f"file://{DEMO / 'store'}"
METAFLOW_ROOT = DEMO / "metaflow"

# (example file, DAG-run conf, artifact to read back from the end step)
RUNS = [
    (
        "parameters_flow.py",
        {"text": "it's $(whoami) `id`; echo | & done", "count": 2, "loud": True},
        "received",
    ),
    ("branch_flow.py", {}, "summary"),
    ("foreach_flow.py", {"offset": 10}, "results"),
]


def quiet_third_party_warnings() -> None:
    """Show warnings of metaflow-airflow only, here and in every process the demo starts."""
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"metaflow_airflow(\.|$)")
    os.environ["PYTHONWARNINGS"] = "ignore"


def next_steps(demo: Path, flow: str = "ForeachFlow", artifact: str = "results") -> list[str]:
    """What to try after the demo: shell lines to run from the project folder, on what the demo
    published and ran in ``demo``."""
    python = _shown(Path(sys.executable))
    cli = _shown(Path(sys.executable).parent / "metaflow-airflow")
    store = shlex.quote(f"file://{demo / 'store'}")
    client = (
        "from metaflow import Flow, namespace; namespace(None); "
        f'run = Flow("{flow}").latest_run; print(run.pathspec, run["end"].task["{artifact}"].data)'
    )
    datastore = _shown(demo / "metaflow")
    lines = [
        "# what was published: steps with retries, timeout, resources; parameters",
        f"{cli} show {flow} --store {store}",
        "# the DAG exactly as Airflow's loader builds it",
        f"{cli} render {flow} --store {store}",
        "# every published version (rollback goes back to one)",
        f"{cli} history {flow} --store {store}",
        "# the runs' artifacts, with Metaflow's Client API",
        f"METAFLOW_DATASTORE_SYSROOT_LOCAL={datastore} {python} -c {shlex.quote(client)}",
    ]
    if _make_target("airflow"):
        stack = "# Airflow's UI: the examples on a local production stack; Ctrl-C stops it"
        lines += [stack, "make airflow"]
    return lines


def _shown(path: Path) -> str:
    """A path as a shell word, relative to the project folder when it is inside it."""
    return shlex.quote(os.path.relpath(path, ROOT) if ROOT in path.parents else str(path))


def _make_target(name: str) -> bool:
    makefile = ROOT / "Makefile"
    return makefile.exists() and f"\n{name}:" in makefile.read_text(encoding="utf-8")


def _environment() -> None:
    """Must run before Airflow or Metaflow is imported: both read configuration at import."""
    quiet_third_party_warnings()
    os.environ.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOW_HOME / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "METAFLOW_AIRFLOW_STORE": STORE,
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(METAFLOW_ROOT),
            "METAFLOW_CARD_LOCALROOT": str(METAFLOW_ROOT / ".metaflow" / "mf.cards"),
            "METAFLOW_DEFAULT_DATASTORE": "local",
            "METAFLOW_DEFAULT_METADATA": "local",
        }
    )
    os.environ.setdefault("METAFLOW_USER", "demo")


def _prepare() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    (AIRFLOW_HOME / "dags").mkdir(parents=True)
    METAFLOW_ROOT.mkdir(parents=True)
    shutil.copy(ROOT / "dags_loader.py", AIRFLOW_HOME / "dags" / "dags_loader.py")
    print("• migrating Airflow's SQLite database in .demo/airflow ...", flush=True)
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _publish() -> None:
    from metaflow_airflow import PublishRequest, publish_flow

    request = PublishRequest(store=STORE, compute="local")
    for example, _, _ in RUNS:
        result = publish_flow(ROOT / "examples" / example, request)
        print(f"• published {example}: dag_id {result.dag_id} → {result.manifest_url}", flush=True)


def _run_all() -> bool:
    sys.path.insert(0, str(ROOT / "tests"))  # the in-process runner the tests use (dag.test())
    from airflow_harness import dag_bag_class, run_dag, run_state

    from metaflow_airflow.runtime.ids import metaflow_run_id

    bag = dag_bag_class()(dag_folder=str(AIRFLOW_HOME / "dags"))
    if bag.import_errors:
        print(f"✗ import errors: {bag.import_errors}")
        return False
    print(f"• Airflow parsed dags_loader.py: {sorted(bag.dag_ids)}", flush=True)
    all_ok = True
    for example, conf, artifact in RUNS:
        dag_id = _flow_name(example)
        dag_run = run_dag(bag.get_dag(dag_id), run_conf=conf)
        state = run_state(dag_run)
        run_id = metaflow_run_id(dag_run.run_id, dag_id)
        value = _artifact(dag_id, run_id, artifact) if state == "success" else "(run failed)"
        all_ok &= state == "success"
        mark = "✓" if state == "success" else "✗"
        print(
            f"{mark} {dag_id}: Airflow run {state}; Metaflow run {dag_id}/{run_id}; "
            f"{artifact} = {value!r}",
            flush=True,
        )
    return all_ok


def _artifact(flow: str, run_id: str, name: str) -> object:
    from metaflow import Run, namespace

    namespace(None)
    return Run(f"{flow}/{run_id}")["end"].task[name].data


def _flow_name(example: str) -> str:
    return "".join(part.title() for part in example.removesuffix(".py").split("_"))


def main() -> int:
    _environment()
    _prepare()
    _publish()
    ok = _run_all()
    print("demo: all runs succeeded" if ok else "demo: some runs FAILED")
    if ok:
        print("\nTry next (from this folder):")
        print("\n".join(f"  {line}" for line in next_steps(DEMO)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
