import os
import time

from metaflow import FlowSpec, step, timeout


class TimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.sleepy)

    @timeout(seconds=4)
    @step
    def sleepy(self):
        with open(os.environ["SLEEPY_PID_FILE"], "w") as out:
            out.write(str(os.getpid()))
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
