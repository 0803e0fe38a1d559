import os

from metaflow import (
    FlowSpec,
    Parameter,
    card,
    catch,
    current,
    environment,
    retry,
    step,
)


def stamp(context):
    return f"{context.flow_name}-published-by-{context.user_name}"


class FeaturesFlow(FlowSpec):
    """Retry, catch, environment, cards and parameter corner cases."""

    who = Parameter("name", default="bob", help="A parameter Metaflow's own integration drops.")
    size = Parameter("size", type=int, required=True)
    published = Parameter("published", default=stamp)

    @retry(times=2, minutes_between_retries=0)
    @step
    def start(self):
        self.start_attempt = current.retry_count
        if current.retry_count == 0:
            raise RuntimeError("the first attempt fails on purpose")
        self.next(self.caught)

    @catch(var="failure")
    @retry(times=1, minutes_between_retries=0)
    @step
    def caught(self):
        self.caught_attempt = current.retry_count
        if self.size > 0:
            raise ValueError("this step always fails")
        self.next(self.end)

    @card
    @environment(vars={"GREETING": "hello from @environment"})
    @step
    def end(self):
        self.greeting = os.environ["GREETING"]
        self.summary = f"{self.who} {self.size} {self.published}"


if __name__ == "__main__":
    FeaturesFlow()
