from metaflow import FlowSpec, step


class SwitchInForeachFlow(FlowSpec):
    """A conditional inside a foreach body: each split takes its own side, the join sees all."""

    @step
    def start(self):
        self.items = [1, 2, 3, 4]
        self.next(self.decide, foreach="items")

    @step
    def decide(self):
        self.value = self.input
        self.side = "even" if self.value % 2 == 0 else "odd"
        self.next({"even": self.even, "odd": self.odd}, condition="side")

    @step
    def even(self):
        self.result = self.value * 10
        self.next(self.join)

    @step
    def odd(self):
        self.result = -self.value
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = [i.result for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print("results", self.results)


if __name__ == "__main__":
    SwitchInForeachFlow()
