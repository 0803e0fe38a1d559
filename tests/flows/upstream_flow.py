from metaflow import FlowSpec, step


class UpstreamFlow(FlowSpec):
    """Produces a value; a successful run emits x-metaflow://flows/UpstreamFlow on Airflow."""

    @step
    def start(self):
        self.value = 21
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UpstreamFlow()
