"""The Amazon MWAA bundle (``metaflow-airflow mwaa-bundle``): wheels, requirements and the
loader file for an MWAA environment."""
