from metaflow import FlowSpec, batch, step


class BatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @batch(cpu=2)
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchFlow()
