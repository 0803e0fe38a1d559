"""The resume test's flow: its middle step fails in production until the fix is in (here: the
variable RESUME_FLOW_FIXED), like a bug that only shows on production data."""

import os

from metaflow import FlowSpec, step


class ResumeFlow(FlowSpec):
    """Load, transform, report: the transform fails until RESUME_FLOW_FIXED is set."""

    @step
    def start(self):
        """Expensive load: what resume must not run again."""
        self.rows = [3, 1, 2]
        self.next(self.transform)

    @step
    def transform(self):
        """Fails without the fix."""
        if not os.environ.get("RESUME_FLOW_FIXED"):
            raise RuntimeError("transform: unexpected data (the production bug)")
        self.ordered = sorted(self.rows)
        self.next(self.end)

    @step
    def end(self):
        """Report."""
        self.report = f"{len(self.ordered)} rows, first {self.ordered[0]}"


if __name__ == "__main__":
    ResumeFlow()
