"""@retry with the scheduler's own attempt count (Cap.RETRY): the first attempt of `flaky`
fails, Airflow retries it, and the retry sees attempt 1."""

from metaflow import FlowSpec, current, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        self.attempts = current.retry_count
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()
