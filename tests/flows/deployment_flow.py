from datetime import timedelta

from metaflow import (
    FlowSpec,
    airflow_external_task_sensor,
    airflow_s3_key_sensor,
    project,
    schedule,
    step,
)


@project(name="forecasting")
@schedule(cron="30 6 * * ? *", timezone="Europe/Berlin")
@airflow_external_task_sensor(
    name="wait_for_ingest",
    external_dag_id="ingest",
    external_task_ids=["load"],
    execution_delta=timedelta(hours=1),
    mode="poke",
    timeout=600,
)
@airflow_s3_key_sensor(bucket_key="s3://landing/ready.flag", poke_interval=30)
class DeploymentFlow(FlowSpec):
    """Scheduled, gated by sensors, named by @project."""

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeploymentFlow()
