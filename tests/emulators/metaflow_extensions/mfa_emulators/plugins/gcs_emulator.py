"""GCS clients for an emulator at ``$STORAGE_EMULATOR_HOST``: anonymous, as emulators expect."""


class GcsEmulatorClientProvider:
    name = "gcs-emulator"

    @staticmethod
    def get_gs_storage_client(*args, **kwargs):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        # With STORAGE_EMULATOR_HOST set, the client sends every request to the emulator.
        return storage.Client(credentials=AnonymousCredentials(), project="test")

    @staticmethod
    def get_credentials(scopes, *args, **kwargs):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials(), "test"
