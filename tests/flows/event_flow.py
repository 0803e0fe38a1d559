from metaflow import FlowSpec, Parameter, schedule, step, trigger


@schedule(daily=True)
@trigger(event={"name": "data_ready", "parameters": {"table": "table_name", "rows": "row_count"}})
class EventFlow(FlowSpec):
    """Runs daily and whenever an Airflow task emits x-metaflow://events/data_ready; the event's
    payload names the table."""

    table = Parameter("table", default="nothing")
    rows = Parameter("rows", default=0)
    note = Parameter("note", default="from the default")

    @step
    def start(self):
        self.received = {"table": self.table, "rows": self.rows, "note": self.note}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EventFlow()
