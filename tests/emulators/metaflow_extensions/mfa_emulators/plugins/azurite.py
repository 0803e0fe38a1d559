"""An Azure credential for azurite in ``--oauth basic`` mode.

Metaflow's Azure datastore sends only OAuth bearer tokens, which the Azure SDK sends only over
HTTPS. Azurite's basic OAuth mode checks a token's issuer, audience and lifetime but not its
signature (there is no Azure AD to sign it), so this credential issues such a token.
"""

import base64
import json
import time

TENANT = "00000000-0000-0000-0000-000000000000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AzuriteCredential:
    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{TENANT}/",
            "tid": TENANT,
            "oid": "metaflow-airflow-tests",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
        }
        header = {"alg": "RS256", "typ": "JWT"}
        token = ".".join(
            [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(b"-")]
        )
        return AccessToken(token, now + 3600)

    # Metaflow caches its blob service clients by credential.
    def __hash__(self):
        return hash(AzuriteCredential)

    def __eq__(self, other):
        return isinstance(other, AzuriteCredential)


class AzuriteClientProvider:
    name = "azurite"

    @staticmethod
    def create_cacheable_azure_credential(*args, **kwargs):
        return AzuriteCredential()
