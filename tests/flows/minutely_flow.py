"""Scheduled every minute (Metaflow's six-field form): the kit's optional schedule capability,
checked on the production topology by a run that Airflow's scheduler starts by itself."""

from metaflow import FlowSpec, schedule, step


@schedule(cron="* * * * ? *")
class MinutelyFlow(FlowSpec):
    @step
    def start(self):
        self.greeting = "scheduled"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MinutelyFlow()
