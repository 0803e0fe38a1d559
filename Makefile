# The two commands of the README contract: `make demo` and `make test`.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# tox with tox-uv, in its own virtualenv, for the Airflow version matrix of tox.ini.
TOX_VENV := .tools/tox
TOX      := $(TOX_VENV)/bin/tox
# The other Airflow lines of tox.ini: `make test` runs them after the default environment
# (Airflow 3.3): the whole suite on 2.11 (what MWAA users run), the unit and integration tests
# (parsing, DAGs, stores, publish; no runs of whole flows) on 3.0 and 2.10; `make test-matrix`
# runs everything on every line (README "Tested versions").
# `make test TEST_ALSO= TEST_LIGHT= TOPOLOGY_ALSO=` runs the default environment only.
TEST_ALSO ?= airflow211
TEST_LIGHT ?= airflow30,airflow210
LIGHT_TESTS := -m "not mwaa and not once and not topology" tests/unit tests/integration
# The production topology's shorter part runs on 2.11 as well (what MWAA users run), less the
# orchestrator kit's compliance suite (Metaflow's side of the contract: on 3.3 only) and the
# metadata service's tests (where the service's URL comes from is the workers' environment on
# every line; they pass on 2.11 too: make test-topology ENV=airflow211).
TOPOLOGY_ALSO ?= airflow211
TOPOLOGY_TESTS := -m "topology and not topology_full" tests/topology \
	--ignore=tests/topology/test_orchestrator_kit.py \
	--ignore=tests/topology/test_service_metadata.py
ENV  ?= airflow211
ARGS ?=

.PHONY: install demo test test-topology airflow test-matrix test-conformance tox clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	$(PYTHON) scripts/demo.py

test: $(STAMP) $(TOX)
	$(PYTHON) -m pytest -p no:cacheprovider -m "not topology_full" tests
	$(if $(TEST_ALSO),$(TOX) -e $(TEST_ALSO))
	$(if $(TOPOLOGY_ALSO),$(TOX) -e $(TOPOLOGY_ALSO) -- $(TOPOLOGY_TESTS))
	$(if $(TEST_LIGHT),$(TOX) -e $(TEST_LIGHT) -- $(LIGHT_TESTS))

# The production topology (tests/topology: PostgreSQL, Redis, CeleryExecutor, a real scheduler),
# every test of it; `make test` runs its shorter part. With ENV=airflow211: on that tox line.
test-topology: $(STAMP)
	$(if $(filter command line,$(origin ENV)),.tox/$(ENV)/bin/python,$(PYTHON)) -m pytest -p no:cacheprovider -m topology tests/topology $(ARGS)

# The same stack by hand, with the examples published: prints the UI's URL and a login; Ctrl-C
# stops it.
airflow: $(STAMP)
	$(PYTHON) tests/topology/stack.py

# Every Airflow line of tox.ini (3.3, 3.0, 2.11, 2.10), one after the other.
test-matrix: $(STAMP) $(TOX)
	$(TOX)

# The whole conformance matrix (tests/conformance/: every graph shape x behaviour, each flow run
# under `python flow.py run` and on Airflow and compared) on Airflow 3.3 and 2.11; `make test`
# runs a subset of it on each line.
test-conformance: $(STAMP) $(TOX)
	$(PYTHON) -m pytest -p no:cacheprovider tests/conformance --conformance=all
	$(TOX) -e airflow211 -- tests/conformance --conformance=all

tox: $(STAMP) $(TOX)
	$(TOX) -e $(ENV) $(if $(ARGS),-- $(ARGS))

$(TOX): $(STAMP)
	$(VENV)/bin/uv venv --quiet --clear --python python3 $(TOX_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(TOX_VENV)/bin/python "tox>=4.11" "tox-uv>=1.11"

clean:
	rm -rf $(VENV) .demo .pytest_cache .tox $(TOX_VENV)
