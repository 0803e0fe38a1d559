"""The ``airflow-manifest`` flow command and Deployer provider (see ``mfextinit_airflow_manifest``)."""
