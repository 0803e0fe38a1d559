"""A FlowMutator adds Parameters from a Config (Cap.CONFIG_EXPR, Cap.RUN_PARAMS): a trigger
with two run parameters must deliver both, typed as declared, to every task."""

from metaflow import Config, FlowMutator, FlowSpec, Parameter, config_expr, project, step

DEFAULTS = {
    "parameters": [{"name": "param1", "default": "41"}, {"name": "param2", "default": "42"}],
    "project_name": "mutable_project",
}


class ParametersFromConfig(FlowMutator):
    def pre_mutate(self, mutable_flow):
        for spec in mutable_flow.config.get("parameters", []):
            mutable_flow.add_parameter(
                spec["name"],
                Parameter(spec["name"], type=str, default=spec["default"]),
                overwrite=True,
            )


@ParametersFromConfig
@project(name=config_expr("config.project_name"))
class ConfigMutableFlow(FlowSpec):
    trigger_param = Parameter("trigger_param", default="")
    config = Config("config", default_value=DEFAULTS)

    @step
    def start(self):
        for spec in self.config.parameters:
            assert hasattr(self, spec["name"]), spec["name"]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ConfigMutableFlow()
