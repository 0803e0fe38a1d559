import os
import signal
import subprocess
import time

from metaflow import FlowSpec, step, timeout


class TimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.sleepy)

    @timeout(seconds=4)
    @step
    def sleepy(self):
        # Metaflow's own timeout (SIGALRM) cannot fire here: only Airflow's backstop stops
        # this step, and with it the child process it started.
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "300"])
        with open(os.environ["SLEEPY_PID_FILE"], "w") as out:
            out.write(f"{os.getpid()} {child.pid}")
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
