from metaflow import FlowSpec, catch, step


class CatchInForeachFlow(FlowSpec):
    """Every split fails the same way; @catch keeps it, and the join merges identical catches."""

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.body, foreach="items")

    @catch(var="failure")
    @step
    def body(self):
        raise ValueError("the same failure in every split")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.merge_artifacts(inputs, exclude=["items"])
        self.failure_type = self.failure.type
        self.next(self.end)

    @step
    def end(self):
        print("merged", self.failure_type)


if __name__ == "__main__":
    CatchInForeachFlow()
