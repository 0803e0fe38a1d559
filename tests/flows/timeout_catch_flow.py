import time

from metaflow import FlowSpec, catch, step, timeout


class TimeoutCatchFlow(FlowSpec):
    """@timeout fires inside the step and @catch keeps Metaflow's TimeoutException."""

    @step
    def start(self):
        self.next(self.slow)

    @catch(var="failure")
    @timeout(seconds=3)
    @step
    def slow(self):
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        self.failure_type = self.failure.type if self.failure else None
        print("caught", self.failure_type)


if __name__ == "__main__":
    TimeoutCatchFlow()
