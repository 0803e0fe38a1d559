import sys

from metaflow import FlowSpec, step


class LogsFlow(FlowSpec):
    """Prints to both streams in every step: Metaflow keeps them per task."""

    @step
    def start(self):
        print("start says hello")
        print("start warns", file=sys.stderr)
        self.items = [1, 2]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        print(f"body {self.input} out")
        print(f"body {self.input} err", file=sys.stderr)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        print("end says bye")


if __name__ == "__main__":
    LogsFlow()
