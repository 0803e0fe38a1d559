"""A foreach inside a foreach (Cap.NESTED_FOREACH): outer_join must collect every inner
result, in order."""

from metaflow import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer_items = ["x", "y"]
        self.next(self.outer, foreach="outer_items")

    @step
    def outer(self):
        self.letter = self.input
        self.inner_items = [1]
        self.next(self.inner, foreach="inner_items")

    @step
    def inner(self):
        self.result = f"{self.letter}-{self.input}"
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.results = [i.result for i in inputs]
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_results = [r for i in inputs for r in i.results]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedForeachFlow()
