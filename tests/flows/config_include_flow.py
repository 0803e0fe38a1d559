import os

from metaflow import Config, FlowSpec, IncludeFile, Parameter, step

HERE = os.path.dirname(os.path.abspath(__file__))  # the tests run flows from other folders


class ConfigIncludeFlow(FlowSpec):
    """A Config (its values fixed at publish, as on Argo) and an IncludeFile (read at publish
    and kept in the datastore) next to a plain Parameter."""

    config = Config("config", default=os.path.join(HERE, "config_include_flow.json"))
    table = IncludeFile("table", default=os.path.join(HERE, "config_include_flow.csv"))
    scale = Parameter("scale", default=2)

    @step
    def start(self):
        self.rows = [line.split(",") for line in self.table.splitlines() if line]
        self.threshold = self.config.threshold * self.scale
        self.labels = list(self.config.labels)
        self.next(self.end)

    @step
    def end(self):
        print("threshold", self.threshold, "rows", len(self.rows))


if __name__ == "__main__":
    ConfigIncludeFlow()
