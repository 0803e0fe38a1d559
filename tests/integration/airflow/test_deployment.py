"""Flow- and publish-level options mapped onto the Airflow DAG: @schedule (with timezone),
Airflow sensors, @project naming and production tokens, --tag, --with, --max-workers,
--worker-pool, --is-paused-upon-creation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from metaflow_airflow import CompileError, ManifestStore
from metaflow_airflow.airflow.dag.factory import build_dag

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("airflow_db")]


@pytest.fixture
def deployment_dag(publish, store_url):
    result = publish(
        "deployment_flow.py",
        tags=("team:forecasting", "nightly"),
        max_workers=2,
        pool="metaflow",
        is_paused_upon_creation=True,
        metaflow_options=("--branch=feature_x", "--with=retry:times=3"),
    )
    manifest = ManifestStore(store_url).read(result.dag_id)
    return result, manifest, build_dag(manifest)


def test_project_names_the_dag_like_metaflow(deployment_dag):
    result, manifest, dag = deployment_dag
    assert result.dag_id == "forecasting.test.feature_x.DeploymentFlow"
    assert dag.dag_id == result.dag_id
    assert manifest.project.name == "forecasting" and manifest.project.branch == "test.feature_x"
    assert "--branch" in " ".join(manifest.metaflow.top_level_options)
    token = manifest.metaflow.env["METAFLOW_PRODUCTION_TOKEN"]
    assert token.startswith("mfprj-")


def test_schedule_is_a_timezone_aware_cron_timetable(deployment_dag):
    _, manifest, dag = deployment_dag
    assert manifest.schedule.cron == "30 6 * * *"
    assert manifest.schedule.timezone == "Europe/Berlin"
    timetable = dag.timetable
    assert type(timetable).__name__ == "CronTriggerTimetable"
    assert timetable._expression == "30 6 * * *"
    assert str(timetable._timezone) in ("Europe/Berlin", "Timezone('Europe/Berlin')")
    assert dag.catchup is False


def test_sensors_gate_the_start_step(deployment_dag):
    _, _, dag = deployment_dag
    external = dag.get_task("wait_for_ingest")
    assert type(external).__name__ == "ExternalTaskSensor"
    assert external.external_dag_id == "ingest"
    assert list(external.external_task_ids) == ["load"]
    assert external.execution_delta == timedelta(hours=1)
    assert external.mode == "poke" and external.timeout == 600
    (s3_sensor,) = [t for t in dag.tasks if type(t).__name__ == "S3KeySensor"]
    assert s3_sensor.bucket_key == "s3://landing/ready.flag"
    assert s3_sensor.poke_interval == 30
    assert dag.get_task("start").upstream_task_ids == {"wait_for_ingest", s3_sensor.task_id}


def test_publish_options_reach_the_dag(deployment_dag):
    _, manifest, dag = deployment_dag
    assert set(dag.tags) == {"metaflow", "nightly", "team:forecasting"}
    assert manifest.tags == ("nightly", "team:forecasting")
    assert dag.is_paused_upon_creation is True
    assert all(task.pool == "metaflow" for task in dag.tasks if task.task_id in {"start", "end"})
    assert dag.get_task("work").max_active_tis_per_dagrun == 2
    assert dag.get_task("start").max_active_tis_per_dagrun is None


def test_with_decorator_applies_to_every_step_and_every_task(deployment_dag):
    _, manifest, dag = deployment_dag
    for step in manifest.steps:
        assert step.decorator_specs and step.decorator_specs[0].startswith("retry:")
        assert step.max_user_code_retries == 3
        assert dag.get_task(step.name).retries == 3


def test_a_second_publish_keeps_the_production_token(publish, store_url):
    first = publish("branch_flow.py")
    token = ManifestStore(store_url).read(first.dag_id).metaflow.env["METAFLOW_PRODUCTION_TOKEN"]
    publish("branch_flow.py")
    again = ManifestStore(store_url).read(first.dag_id).metaflow.env["METAFLOW_PRODUCTION_TOKEN"]
    assert again == token


def test_name_is_refused_for_projects(publish):
    with pytest.raises(CompileError, match="--name is not supported for @projects"):
        publish("deployment_flow.py", dag_id="custom")
