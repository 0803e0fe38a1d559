"""A foreach whose body has two steps before the join (Metaflow's own integration refuses this)."""

from metaflow import FlowSpec, Parameter, step


class ForeachFlow(FlowSpec):
    """Squares each item, adds an offset, and sums the results."""

    offset = Parameter("offset", default=1, type=int)

    @step
    def start(self):
        self.items = [1, 2, 3, 4]
        self.next(self.square, foreach="items")

    @step
    def square(self):
        """Body step one: runs once per item."""
        self.item = self.input
        self.squared = self.input * self.input
        self.next(self.shift)

    @step
    def shift(self):
        """Body step two: sees the same item as step one."""
        self.shifted = self.squared + self.offset
        self.next(self.join)

    @step
    def join(self, inputs):
        """Collect the body's results in split order."""
        self.results = [i.shifted for i in inputs]
        self.items_seen = [i.item for i in inputs]
        self.total = sum(self.results)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    ForeachFlow()
