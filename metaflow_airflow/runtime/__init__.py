"""What a task runs: Metaflow ids, input paths and step commands, computed from the manifest and
the task instance's facts. Imports neither Airflow nor Metaflow."""
