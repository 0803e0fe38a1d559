"""The operators that run a step: a Kubernetes pod, or a local process on the worker."""
