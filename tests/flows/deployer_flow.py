"""Typed parameters, a step that can sleep (a long run to terminate) or fail on request (the
failed step's log): what the Deployer, the flow command and `trigger` tests drive."""

import time

from metaflow import FlowSpec, JSONType, Parameter, step


class DeployerFlow(FlowSpec):
    alpha = Parameter("alpha", type=float, default=0.5)
    count = Parameter("count", type=int, default=2)
    label = Parameter("label", default="plain")
    options = Parameter("options", type=JSONType, default='{"k": 1}')
    sleep_seconds = Parameter("sleep_seconds", type=int, default=0)
    fail = Parameter("fail", type=bool, default=False)

    @step
    def start(self):
        self.total = self.alpha * self.count
        self.next(self.work)

    @step
    def work(self):
        if self.fail:
            raise RuntimeError("failing on request: fail=True")
        time.sleep(self.sleep_seconds)
        self.summary = f"{self.label}:{self.total}:{self.options['k']}"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeployerFlow()
