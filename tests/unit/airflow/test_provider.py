"""The package as Airflow sees it through its entry points: a provider with a
``[metaflow_airflow]`` configuration section (validated by Airflow's provider schema), and a
plugin that registers the Metaflow UI link."""

from __future__ import annotations

import pytest
from airflow_harness import loaded_plugin_names

from metaflow_airflow.airflow.plugin import PLUGIN_NAME, MetaflowAirflowPlugin
from metaflow_airflow.airflow.provider import CONFIG_SECTION, PACKAGE_NAME, get_provider_info
from metaflow_airflow.airflow.ui import MetaflowUILink
from metaflow_airflow.settings import Settings

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_airflow_discovers_the_provider_and_its_config_section():
    from airflow.configuration import conf
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager()
    assert providers.providers[PACKAGE_NAME].data["config"] == get_provider_info()["config"]
    assert PACKAGE_NAME in dict(providers.provider_configs)  # what Airflow's CLI and UI load
    conf.load_providers_configuration()
    assert conf.get(CONFIG_SECTION, "strict") == "False"
    assert conf.get(CONFIG_SECTION, "ui_url", fallback=None) in (None, "")


def test_config_section_describes_every_setting():
    options = get_provider_info()["config"][CONFIG_SECTION]["options"]
    assert set(Settings.model_fields) <= set(options)
    for name, option in options.items():
        assert option["description"].endswith(f" Variable: METAFLOW_AIRFLOW_{name.upper()}.")
    assert options["store"]["description"].startswith("The store URL")
    assert (options["strict"]["type"], options["strict"]["default"]) == ("boolean", "False")


def test_plugin_registers_the_link_class():
    assert PLUGIN_NAME in loaded_plugin_names()
    assert [type(link) for link in MetaflowAirflowPlugin.operator_extra_links] == [MetaflowUILink]
