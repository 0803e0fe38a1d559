"""Parameters of every type, passed from an Airflow run's conf into the flow."""

from metaflow import FlowSpec, JSONType, Parameter, step


class ParametersFlow(FlowSpec):
    """Echoes its parameters into artifacts: str, int, float, bool and JSON."""

    text = Parameter("text", default="hello", help="Any string; shell characters stay text.")
    count = Parameter("count", default=3, type=int, help="How many greetings.")
    ratio = Parameter("ratio", default=0.5, type=float)
    loud = Parameter("loud", default=False, type=bool)
    config = Parameter("config", default='{"colors": ["red", "green"]}', type=JSONType)

    @step
    def start(self):
        """Build the greetings."""
        greeting = self.text.upper() if self.loud else self.text
        self.greetings = [greeting] * self.count
        self.scaled = self.count * self.ratio
        self.next(self.end)

    @step
    def end(self):
        """Record what arrived, with its type."""
        self.received = {
            "text": self.text,
            "count": self.count,
            "ratio": self.ratio,
            "loud": self.loud,
            "config": self.config,
        }
        print("received", self.received)


if __name__ == "__main__":
    ParametersFlow()
