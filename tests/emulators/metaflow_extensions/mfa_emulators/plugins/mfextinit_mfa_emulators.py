"""A Metaflow extension for the tests: client providers for the local storage emulators.

Metaflow's gs datastore asks ``google.auth.default()`` for credentials, and its Azure datastore
asks Azure AD for an OAuth token; neither exists on a test machine. Metaflow lets an extension
provide those clients: these point them at the emulators. Selected with
``METAFLOW_DEFAULT_GCP_CLIENT_PROVIDER=gcs-emulator`` and
``METAFLOW_DEFAULT_AZURE_CLIENT_PROVIDER=azurite``.
"""

GCP_CLIENT_PROVIDERS_DESC = [("gcs-emulator", ".gcs_emulator.GcsEmulatorClientProvider")]
AZURE_CLIENT_PROVIDERS_DESC = [("azurite", ".azurite.AzuriteClientProvider")]
