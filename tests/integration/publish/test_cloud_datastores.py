"""The code package and the Metaflow datastore on the same cloud as the store.

GCS: a flow published with ``--datastore=gs`` against the GCS emulator, its package read back
and unpacked the way local compute does, and a run on real Airflow whose artifacts land there.
Azure: published with ``--datastore=azure`` against azurite (HTTPS, OAuth), the package read back
and unpacked by local compute's code in a process that trusts the test certificate.

Metaflow's own client factories need cloud credentials that no test machine has, so the
publishing and task processes load a small Metaflow extension (``tests/emulators``) that gives
Metaflow clients for the emulators (see its module docstrings).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow_harness import run_dag, run_state
from conftest import (
    AZURITE,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    azurite_connection_string,
)
from helpers import REPO
from servers import free_port, server

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.compute.local import unpack_code_package
from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(300)

EXTENSION = REPO / "tests" / "emulators"


def with_emulators() -> str:
    """PYTHONPATH with the emulators' Metaflow extension first, and what it had (a checkout's
    own packages and metaflow_extensions) after it."""
    return os.pathsep.join(filter(None, [str(EXTENSION), os.environ.get("PYTHONPATH")]))


UNPACK = """\
import sys
from pathlib import Path
from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.compute.local import unpack_code_package
manifest = ManifestStore(sys.argv[1]).read(sys.argv[2])
root = Path(unpack_code_package(manifest, sys.argv[3]))
print((root / manifest.metaflow.flow_file).is_file())
"""

READ_RUN = """\
import json, sys
from metaflow import Run, namespace
namespace(None)
run = Run(sys.argv[1])
print(json.dumps({"successful": run.successful, "received": run["end"].task["received"].data}))
"""


@pytest.fixture
def gs_datastore(gcs_bucket, monkeypatch: pytest.MonkeyPatch) -> str:
    """Metaflow configured (in this test's environment) for a gs datastore on the emulator;
    returns the datastore root."""
    monkeypatch.setenv("PYTHONPATH", with_emulators())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_bucket.server.endpoint)
    monkeypatch.setenv("METAFLOW_DEFAULT_GCP_CLIENT_PROVIDER", "gcs-emulator")
    return f"{gcs_bucket.url}/metaflow"


def test_gs_datastore_code_package_and_run(
    publish, dagbag, gcs_bucket, gs_datastore: str, tmp_path: Path
) -> None:
    store_url = f"{gcs_bucket.url}/flows"
    options = gcs_bucket.storage_options
    result = publish(
        "parameters_flow.py",
        store=store_url,
        storage_options=options,
        compute="local",
        metaflow_options=("--datastore=gs", f"--datastore-root={gs_datastore}"),
    )

    manifest = ManifestStore(store_url, options).read("ParametersFlow")
    package = manifest.code_package
    assert manifest.metaflow.datastore == "gs"
    assert manifest.metaflow.datastore_root == gs_datastore
    assert package.url.startswith(f"{gs_datastore}/ParametersFlow/data/")
    assert result.code_package_url == package.url
    blob = gcs_bucket.fs().cat_file(package.url)
    assert hashlib.sha1(blob).hexdigest() == package.sha
    env = manifest.metaflow.env
    assert env["METAFLOW_DATASTORE_SYSROOT_GS"] == gs_datastore
    assert env["STORAGE_EMULATOR_HOST"] == gcs_bucket.server.endpoint
    assert env["METAFLOW_DEFAULT_GCP_CLIENT_PROVIDER"] == "gcs-emulator"

    # Local compute fetches the package from GCS with options derived from the manifest alone.
    root = Path(unpack_code_package(manifest, str(tmp_path)))
    assert (root / manifest.metaflow.flow_file).is_file()

    # A run on Airflow: every step reads and writes its artifacts in the emulator.
    conf = {"text": "on gcs", "count": 2}
    bag = dagbag(store_url, options)
    assert bag.import_errors == {}
    dag_run = run_dag(bag.get_dag("ParametersFlow"), run_conf=conf)
    assert run_state(dag_run) == "success"
    run_id = metaflow_run_id(dag_run.run_id, "ParametersFlow")
    objects = gcs_bucket.fs().find(f"{gcs_bucket.name}/metaflow/ParametersFlow/{run_id}")
    assert any("/end/" in path for path in objects)

    completed = subprocess.run(
        [sys.executable, "-c", READ_RUN, f"ParametersFlow/{run_id}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    read = json.loads(completed.stdout.strip().splitlines()[-1])
    assert read["successful"] is True
    assert read["received"]["text"] == "on gcs" and read["received"]["count"] == 2


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@pytest.fixture(scope="module")
def azurite_tls(tmp_path_factory: pytest.TempPathFactory):
    """Azurite over HTTPS with OAuth (basic mode: tokens are checked but not their signature),
    as Metaflow's Azure datastore needs; yields (endpoint, certificate)."""
    import ssl

    folder = tmp_path_factory.mktemp("azurite-tls")
    cert, key = _self_signed_certificate(folder)
    port = free_port()
    endpoint = f"https://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    argv = [
        str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
        "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--cert", str(cert), "--key",
        str(key), "--oauth", "basic",
    ]
    context = ssl.create_default_context(cafile=str(cert))
    with server("azurite (https)", argv, folder / "azurite.log", endpoint, context=context):
        yield endpoint, cert


def test_azure_datastore_code_package(
    publish, azurite_tls, monkeypatch: pytest.MonkeyPatch, store_url: str, tmp_path: Path
) -> None:
    from azure.storage.blob import BlobServiceClient

    endpoint, cert = azurite_tls
    service = BlobServiceClient.from_connection_string(
        azurite_connection_string(endpoint), connection_verify=str(cert)
    )
    container = "mfa-datastore"
    service.create_container(container)
    monkeypatch.setenv("PYTHONPATH", with_emulators())
    monkeypatch.setenv("METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT", endpoint)
    monkeypatch.setenv("METAFLOW_DEFAULT_AZURE_CLIENT_PROVIDER", "azurite")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the Azure SDK's (requests) trust

    result = publish(
        "branch_flow.py",
        compute="local",
        metaflow_options=("--datastore=azure", f"--datastore-root={container}/metaflow"),
    )

    manifest = ManifestStore(store_url).read("BranchFlow")
    package = manifest.code_package
    assert manifest.metaflow.datastore == "azure"
    assert package.url.startswith(f"{container}/metaflow/BranchFlow/data/")
    assert result.code_package_url == package.url
    env = manifest.metaflow.env
    assert env["METAFLOW_DATASTORE_SYSROOT_AZURE"] == f"{container}/metaflow"
    assert env["METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT"] == endpoint
    assert env["METAFLOW_DEFAULT_AZURE_CLIENT_PROVIDER"] == "azurite"
    blob = service.get_blob_client(container, package.url.split("/", 1)[1])
    assert hashlib.sha1(blob.download_blob().readall()).hexdigest() == package.sha

    # Local compute's own download, in a process that trusts the test certificate and has the
    # worker's credential for the account (adlfs reads AZURE_STORAGE_ACCOUNT_KEY).
    unpacked = subprocess.run(
        [sys.executable, "-c", UNPACK, store_url, "BranchFlow", str(tmp_path)],
        env={**os.environ, "SSL_CERT_FILE": str(cert), "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unpacked.returncode == 0, unpacked.stderr
    assert unpacked.stdout.strip().splitlines()[-1] == "True"
