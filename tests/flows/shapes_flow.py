from metaflow import FlowSpec, step


class ShapesFlow(FlowSpec):
    """A foreach inside a static branch, and a static branch inside a foreach body."""

    @step
    def start(self):
        self.base = 10
        self.next(self.fan, self.plain)

    @step
    def fan(self):
        self.items = [1, 2, 3]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.item = self.input
        self.next(self.double, self.square)

    @step
    def double(self):
        self.value = self.item * 2
        self.next(self.body_join)

    @step
    def square(self):
        self.value = self.item ** 2
        self.next(self.body_join)

    @step
    def body_join(self, inputs):
        self.pair = sorted(i.value for i in inputs)
        self.item = inputs.double.item
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.pairs = [i.pair for i in inputs]
        self.next(self.join)

    @step
    def plain(self):
        self.offset = self.base + 1
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pairs = inputs.fan_join.pairs
        self.offset = inputs.plain.offset
        self.next(self.end)

    @step
    def end(self):
        print(self.pairs, self.offset)


if __name__ == "__main__":
    ShapesFlow()
