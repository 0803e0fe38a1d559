"""The versioned manifest store on fsspec (publish, history, rollback, delete), and one module
per cloud in ``clouds/``. Imports neither Airflow nor Metaflow."""
