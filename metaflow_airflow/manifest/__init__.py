"""The shared language of both sides: the manifest models, and the one function that turns
stored bytes into an accepted manifest. Imports neither Airflow nor Metaflow."""
