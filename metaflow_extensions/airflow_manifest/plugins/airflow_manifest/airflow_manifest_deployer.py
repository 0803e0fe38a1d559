"""``Deployer("flow.py").airflow_manifest(...)``: Metaflow's Deployer API for metaflow-airflow.

The deployer runs the flow command (``python flow.py airflow-manifest create ...``) as Metaflow's
own deployers do, so a deployment from a notebook or a CI script is the same publish as from the
command line; the deployed flow and its runs then talk to the store and Airflow's REST API.

Keyword arguments of ``airflow_manifest(...)`` are the flow command's group options: ``name``
(the DAG id), ``store``, ``storage_options`` (JSON text), ``api_url``; credentials come from
``METAFLOW_AIRFLOW_API_*`` in the environment (or ``Deployer(env=...)``). ``create(...)`` takes
``airflow-manifest create``'s options: ``compute``, ``image``, ``tags``, ``max_workers``...

Capabilities of the orchestrator-kit contract (metaflow-orchestrator-kit): every required one
but conda, and the optional ones (nested foreach, resume, schedule). Conda is not supported on
``--compute local``: the step runs in the Airflow worker's Python, and publish refuses a
``conda``/``pypi`` environment with that compute; on ``--compute kubernetes`` the environment
type reaches every step command as ``--environment`` (the manifest's ``environment`` field).
"""

from __future__ import annotations

from typing import Any, ClassVar

from metaflow.runner.deployer_impl import DeployerImpl

try:  # the kit documents the contract; it is a test dependency, not a runtime one
    from metaflow_orchestrator_kit import REQUIRED, Cap

    SUPPORTED_CAPABILITIES = (REQUIRED - {Cap.CONDA}) | {
        Cap.NESTED_FOREACH,
        Cap.RESUME,
        Cap.SCHEDULE,
    }
except ImportError:
    SUPPORTED_CAPABILITIES = frozenset()

# Why a capability is missing (the kit asks for a reason with each one).
NOT_SUPPORTED = {
    "CONDA": "conda is not supported with --compute local (steps run in the Airflow worker's "
    "Python); with --compute kubernetes the pod's image and --environment carry it",
}


class AirflowManifestDeployer(DeployerImpl):
    """Deployer for Apache Airflow through metaflow-airflow's manifest store.

    Parameters
    ----------
    name : str, optional, default None
        DAG id. The flow's name is used if not given (``project.branch.Flow`` under @project).
    store : str, optional, default None
        Manifest store URL (default: ``$METAFLOW_AIRFLOW_STORE``).
    storage_options : str, optional, default None
        fsspec options for the store, as JSON text.
    api_url : str, optional, default None
        Airflow API server (default: ``$METAFLOW_AIRFLOW_API_URL``).
    """

    TYPE: ClassVar[str | None] = "airflow-manifest"

    def __init__(self, deployer_kwargs: dict[str, Any], **kwargs: Any) -> None:
        self._deployer_kwargs = deployer_kwargs
        super().__init__(**kwargs)

    @property
    def deployer_kwargs(self) -> dict[str, Any]:
        return self._deployer_kwargs

    @staticmethod
    def deployed_flow_type() -> type:
        from .airflow_manifest_objects import AirflowManifestDeployedFlow

        return AirflowManifestDeployedFlow

    def create(self, **kwargs: Any) -> Any:
        """Publish the flow (``airflow-manifest create``).

        Parameters
        ----------
        compute : str, optional, default "kubernetes"
            ``kubernetes`` (a pod per step) or ``local`` (a process on the Airflow worker).
        image : str, optional, default None
            Default container image for Kubernetes compute.
        tags : List[str], optional, default None
            DAG tags and Metaflow run tags.
        max_workers : int, optional, default None
            Concurrent tasks of each foreach body step within one run.
        pool : str, optional, default None
            Airflow pool for every task (``--worker-pool``).
        is_paused_upon_creation : bool, optional, default None
            The DAG starts paused when Airflow first sees it.
        authorize : str, optional, default None
            Production token authorizing a take-over of another user's deployment.
        generate_new_token : bool, optional, default False
            Start a new production namespace.

        Returns
        -------
        AirflowManifestDeployedFlow
        """
        from .airflow_manifest_objects import AirflowManifestDeployedFlow

        if kwargs.get("tags") is not None:
            kwargs["tags"] = list(kwargs["tags"])  # click gives tuples; the API wants lists
        return self._create(AirflowManifestDeployedFlow, **kwargs)

    def from_deployment(self, identifier: str, metadata: str | None = None) -> Any:
        """The deployed flow of a DAG id (dotted ``project.branch.Flow`` names too): see
        ``AirflowManifestDeployedFlow.from_deployment``."""
        return self.deployed_flow_type().from_deployment(identifier, metadata)


_addl_stubgen_modules = [
    "metaflow_extensions.airflow_manifest.plugins.airflow_manifest.airflow_manifest_objects"
]
