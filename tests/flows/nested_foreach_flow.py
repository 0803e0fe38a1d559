from metaflow import FlowSpec, JSONType, Parameter, step


class NestedForeachFlow(FlowSpec):
    """A foreach inside a foreach, the inner width chosen per outer item."""

    widths = Parameter("widths", default="[1, 2, 3]", type=JSONType)

    @step
    def start(self):
        self.outer = list(range(len(self.widths)))
        self.next(self.middle, foreach="outer")

    @step
    def middle(self):
        self.outer_item = self.input
        self.inner = [f"{self.input}.{j}" for j in range(self.widths[self.input])]
        self.next(self.leaf, foreach="inner")

    @step
    def leaf(self):
        self.label = self.input
        self.stack = self.foreach_stack()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.labels = [i.label for i in inputs]
        self.stacks = [i.stack for i in inputs]
        self.merge_artifacts(inputs, include=["outer_item"])
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.labels = [i.labels for i in inputs]
        self.stacks = [i.stacks for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print(self.labels)


if __name__ == "__main__":
    NestedForeachFlow()
