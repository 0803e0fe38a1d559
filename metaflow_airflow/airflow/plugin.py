"""The Airflow plugin (the ``airflow.plugins`` entry point): registers the "Metaflow UI" operator
extra link.

Airflow 2's webserver rebuilds a task's links from the serialized DAG and only accepts link
classes that a plugin registered; without this the link would be dropped with an error in the
webserver log. Airflow 3 stores each link's URL when the task ends, and lists the plugin.
Plugins cannot add DAGs: the loader file still goes into dags/.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from metaflow_airflow.airflow.ui import MetaflowUILink

PLUGIN_NAME = "metaflow_airflow"


class MetaflowAirflowPlugin(AirflowPlugin):
    """Registers :class:`~metaflow_airflow.airflow.ui.MetaflowUILink` with Airflow."""

    name = PLUGIN_NAME
    operator_extra_links = [MetaflowUILink()]
