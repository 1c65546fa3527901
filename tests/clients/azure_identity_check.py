"""azure-identity's ClientSecretCredential against enrollgraph's built-in token endpoint.

Run by crates/cli/tests/azure_identity.rs against `enrollgraph serve --tls`, with:
  AUTHORITY      https://localhost:PORT (the server's origin)
  TENANT         the tenant id
  CLIENT_ID      an app registered in that tenant
  CLIENT_SECRET  its secret
  GRAPH_URL      https://localhost:PORT/beta
  REQUESTS_CA_BUNDLE, SSL_CERT_FILE   the server's CA (its banner: "trust this CA: ...")
Optional: MODE=sync|async|both (default both) picks the credentials to check;
VERBOSE=1 logs every HTTP request the clients send (msal, azure-core, aiohttp).

Checks, each printed as "ok: ..." or "FAIL: ...":
  1. sync  azure.identity.ClientSecretCredential (msal: OIDC discovery, then the token POST)
  2. async azure.identity.aio.ClientSecretCredential (its own client over aiohttp; no discovery)
and with each token GET {GRAPH_URL}/deviceManagement/deviceEnrollmentConfigurations, which must
answer 200 with the 5 default configurations. Exits 1 if any check failed.
"""

import asyncio
import logging
import os
import sys
import time

import requests
from azure.identity import ClientSecretCredential

from checks import check, env, eq, failures, finish  # noqa: E402,F401

SCOPE = "https://graph.microsoft.com/.default"
DEFAULTS = 5


def check_token(tok, label):
    check(isinstance(tok.token, str) and tok.token.count(".") == 2, f"{label}: the access token is a JWT")
    now = time.time()
    check(now + 60 < tok.expires_on <= now + 86400 + 60, f"{label}: expires_on {tok.expires_on} is in the next day")


def call_graph(token, label):
    url = os.environ["GRAPH_URL"].rstrip("/") + "/deviceManagement/deviceEnrollmentConfigurations"
    r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if not check(r.status_code == 200, f"{label}: GET {url} answered {r.status_code}"):
        print(r.text[:2000])
        return
    items = r.json().get("value", [])
    check(len(items) == DEFAULTS, f"{label}: {len(items)} configurations listed (want {DEFAULTS} defaults)")


def sync_credential(tenant, client_id, secret, authority):
    label = "sync ClientSecretCredential"
    cred = ClientSecretCredential(
        tenant, client_id, secret, authority=authority, disable_instance_discovery=True
    )
    try:
        tok = cred.get_token(SCOPE)
    except Exception as e:  # noqa: BLE001 - report any failure of the client
        check(False, f"{label}: get_token raised {type(e).__name__}: {e}")
        return
    finally:
        cred.close()
    check(True, f"{label}: get_token")
    check_token(tok, label)
    call_graph(tok.token, label)

    # A wrong secret must surface as the client's authentication error, not a hang or crash.
    from azure.core.exceptions import ClientAuthenticationError

    bad = ClientSecretCredential(
        tenant, client_id, secret + "-wrong", authority=authority, disable_instance_discovery=True
    )
    try:
        bad.get_token(SCOPE)
        check(False, f"{label}: a wrong secret was refused")
    except ClientAuthenticationError as e:
        check("AADSTS7000215" in str(e), f"{label}: a wrong secret is refused with AADSTS7000215")
    finally:
        bad.close()


async def async_credential(tenant, client_id, secret, authority):
    label = "async ClientSecretCredential"
    from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

    cred = AsyncClientSecretCredential(
        tenant, client_id, secret, authority=authority, disable_instance_discovery=True
    )
    try:
        async with cred:
            tok = await cred.get_token(SCOPE)
    except Exception as e:  # noqa: BLE001
        check(False, f"{label}: get_token raised {type(e).__name__}: {e}")
        return
    check(True, f"{label}: get_token")
    check_token(tok, label)
    call_graph(tok.token, label)


def main():
    if os.environ.get("VERBOSE"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
    authority = env("AUTHORITY")
    tenant = env("TENANT")
    client_id = env("CLIENT_ID")
    secret = env("CLIENT_SECRET")
    env("GRAPH_URL")
    mode = os.environ.get("MODE", "both")
    if mode not in ("sync", "async", "both"):
        print(f"FAIL: MODE must be sync, async or both, not {mode!r}")
        sys.exit(2)
    if mode in ("sync", "both"):
        sync_credential(tenant, client_id, secret, authority)
    if mode in ("async", "both"):
        asyncio.run(async_credential(tenant, client_id, secret, authority))
    finish()


if __name__ == "__main__":
    main()
