"""What runs when a task runs: the operators of a step (a Kubernetes pod, or a local process on
the worker) and the small task that flattens a nested foreach's splits."""
