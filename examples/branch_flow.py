"""A static split into two branches and a join."""

from metaflow import FlowSpec, step


class BranchFlow(FlowSpec):
    """Computes two things in parallel and merges them."""

    @step
    def start(self):
        self.numbers = list(range(1, 11))
        self.next(self.sum_them, self.multiply_them)

    @step
    def sum_them(self):
        """Branch one: the sum."""
        self.total = sum(self.numbers)
        self.next(self.join)

    @step
    def multiply_them(self):
        """Branch two: the product."""
        product = 1
        for n in self.numbers:
            product *= n
        self.product = product
        self.next(self.join)

    @step
    def join(self, inputs):
        """Merge both branches."""
        self.total = inputs.sum_them.total
        self.product = inputs.multiply_them.product
        self.merge_artifacts(inputs, include=["numbers"])
        self.next(self.end)

    @step
    def end(self):
        self.summary = f"sum={self.total} product={self.product}"
        print(self.summary)


if __name__ == "__main__":
    BranchFlow()
