"""The conformance suite: every graph shape × behaviour of tests/conformance/matrix.py, each
flow run under ``python flow.py run`` and on real Airflow (local compute) and compared through
Metaflow's Client (tests/conformance/differential.py). ``make test`` runs a subset per Airflow
line; ``make test-conformance`` (``pytest --conformance=all``) runs the whole matrix."""

from __future__ import annotations

import pytest
from behaviours import BEHAVIOURS
from check import check_conformance
from matrix import ci_subset, combinations, known_failures, xfail_reason
from shapes import SHAPES

from metaflow_airflow.airflow.compat import AIRFLOW_VERSION

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(900)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "combination" not in metafunc.fixturenames:
        return
    if metafunc.config.getoption("conformance") == "all":
        selected = combinations()
    else:
        selected = list(ci_subset(AIRFLOW_VERSION))
    params = []
    for shape, behaviour in selected:
        labels = known_failures(shape, behaviour)
        marks = [pytest.mark.xfail(strict=True, reason=xfail_reason(labels))] if labels else []
        params.append(pytest.param((shape, behaviour), id=f"{shape}-{behaviour}", marks=marks))
    metafunc.parametrize("combination", params)


def test_flow_on_airflow_behaves_as_under_run(combination, publish, dagbag, store_url, tmp_path):
    shape, behaviour = combination
    check_conformance(
        SHAPES[shape], BEHAVIOURS[behaviour], publish, dagbag, store_url, tmp_path / "flow"
    )
