"""Configs at deploy time (Cap.CONFIG_EXPR): a Config from a file, a Config with a default
value that the deployment overrides, and @project named by a config expression. Every task must
see the deployed values, and the init command must not receive the configs as parameters."""

import os

from metaflow import Config, FlowSpec, Parameter, config_expr, environment, project, step

DEFAULTS = {"a": {"project_name": "config_project", "b": "41"}}


@project(name=config_expr("cfg_default_value.a.project_name"))
class ConfigSimple(FlowSpec):
    trigger_param = Parameter("trigger_param", default="")
    cfg = Config("cfg", default=os.path.join(os.path.dirname(__file__), "config_simple.json"))
    cfg_default_value = Config("cfg_default_value", default_value=DEFAULTS)

    @environment(vars={"FROM_CONFIG": config_expr("str(cfg.some.value)")})
    @step
    def start(self):
        self.config_from_env = os.environ.get("FROM_CONFIG")
        self.config_val = self.cfg.some.value
        self.config_val_2 = self.cfg_default_value.a.b
        self.next(self.end)

    @step
    def end(self):
        assert self.cfg_default_value.a.b == self.config_val_2


if __name__ == "__main__":
    ConfigSimple()
