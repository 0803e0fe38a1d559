from metaflow import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    """A conditional step: one branch of two steps, one of one; both meet again at merge."""

    route = Parameter("route", default="small")

    @step
    def start(self):
        self.value = 10
        self.next({"small": self.small, "large": self.large}, condition="route")

    @step
    def small(self):
        self.result = self.value + 1
        self.next(self.merge)

    @step
    def large(self):
        self.result = self.value * 100
        self.next(self.large_more)

    @step
    def large_more(self):
        self.result += 1
        self.next(self.merge)

    @step
    def merge(self):
        self.final = self.result
        self.next(self.end)

    @step
    def end(self):
        print("final", self.final)


if __name__ == "__main__":
    SwitchFlow()
