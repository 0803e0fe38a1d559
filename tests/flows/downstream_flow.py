from metaflow import FlowSpec, Parameter, step, trigger_on_finish


@trigger_on_finish(flow="UpstreamFlow")
class DownstreamFlow(FlowSpec):
    """Runs after each successful run of UpstreamFlow."""

    factor = Parameter("factor", default=2)

    @step
    def start(self):
        self.factor_seen = self.factor
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DownstreamFlow()
