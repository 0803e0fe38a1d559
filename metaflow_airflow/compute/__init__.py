"""Ways of running a Metaflow step from Airflow: one module each, one shared command renderer."""
