"""The Metaflow extension shipped with metaflow-airflow (found by Metaflow's extension mechanism
when both are installed; ``metaflow_extensions/`` has no ``__init__.py``, it is a namespace).

Adds, under the name ``airflow-manifest`` (Metaflow's own ``airflow`` command compiles DAG
files; this one publishes manifests that the metaflow-airflow loader turns into DAGs):

- ``python flow.py airflow-manifest create|trigger|status|terminate|list-runs|delete``;
- ``Deployer("flow.py").airflow_manifest(...)``, ``DeployedFlow.from_airflow_manifest(...)``.

Only names here: Metaflow imports this module in every process, the heavy modules load when used.
"""

CLIS_DESC = [("airflow-manifest", ".airflow_manifest.airflow_manifest_cli.cli")]
DEPLOYER_IMPL_PROVIDERS_DESC = [
    ("airflow-manifest", ".airflow_manifest.airflow_manifest_deployer.AirflowManifestDeployer")
]
