"""@project with --branch: every step must run on the deployed branch (Cap.PROJECT_BRANCH);
its dotted DAG id (project.branch.Flow) must come back through from_deployment."""

from metaflow import FlowSpec, current, project, step


@project(name="kit_project")
class HelloProjectFlow(FlowSpec):
    @step
    def start(self):
        self.start_branch = current.branch_name
        self.next(self.end)

    @step
    def end(self):
        self.branch = current.branch_name
        assert self.branch == self.start_branch


if __name__ == "__main__":
    HelloProjectFlow()
