from metaflow import FlowSpec, Parameter, step


class SwitchInBranchFlow(FlowSpec):
    """A conditional inside one side of a static branch; the join meets what ran."""

    route = Parameter("route", default="c")

    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.where = self.route
        self.next({"c": self.c, "d": self.d}, condition="where")

    @step
    def b(self):
        self.from_b = "b"
        self.next(self.join)

    @step
    def c(self):
        self.from_a = "c"
        self.next(self.join)

    @step
    def d(self):
        self.from_a = "d"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = sorted(getattr(i, "from_a", None) or i.from_b for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("seen", self.seen)


if __name__ == "__main__":
    SwitchInBranchFlow()
