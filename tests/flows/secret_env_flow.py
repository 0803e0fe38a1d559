"""Credentials written into @environment: publish refuses them unless told otherwise."""

from metaflow import FlowSpec, environment, step


class SecretEnvFlow(FlowSpec):
    @environment(
        vars={"API_TOKEN": "tok-123", "TOKENIZERS_PARALLELISM": "false", "LOG_LEVEL": "info"}
    )
    @step
    def start(self):
        self.next(self.end)

    @environment(vars={"AWS_SECRET_ACCESS_KEY": "abc", "DB_PASSWORD": ""})
    @step
    def end(self):
        pass


if __name__ == "__main__":
    SecretEnvFlow()
