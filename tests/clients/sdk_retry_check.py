"""The Microsoft Graph Python SDK's retry handler against enrollgraph's 429s.

Run by crates/cli/tests/admin_sdk.rs against `enrollgraph serve --tls --admin-key ...`, with:
  BASE           https://localhost:PORT (the server's origin)
  ADMIN_KEY      the admin key
  TENANT, CLIENT_ID, CLIENT_SECRET   the development app
  REQUESTS_CA_BUNDLE, SSL_CERT_FILE   the server's CA

Checks, each printed as "ok: ..." or "FAIL: ...":
  1. A fault rule answers the first two GETs of deviceEnrollmentConfigurations with 429 and
     Retry-After: 1; msgraph-sdk's GraphServiceClient (its default middleware, kiota's
     RetryHandler) sleeps and retries, and returns the 4 v1.0 default configurations; the rule
     saw 3 requests and fired twice; the call took at least the 2 s the server asked for.
  2. Throttling (custom limits, 1 request per 3 s per tenant): two calls in a row both
     succeed, the second after the SDK waited out the 429's Retry-After.
Exits 1 if any check failed.
"""

import asyncio
import os
import ssl
import sys
import time

import httpx
import requests
from azure.identity.aio import ClientSecretCredential
from msgraph import GraphServiceClient
from msgraph_core import GraphClientFactory

SCOPE = "https://graph.microsoft.com/.default"
# msgraph-sdk is the v1.0 SDK: the v1.0 view lists 4 of the 5 defaults (the Windows
# restore configuration's type is beta-only; rulings.md 6).
V1_DEFAULTS = 4
failures = []


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"FAIL: environment variable {name} is not set")
        sys.exit(2)
    return value


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


async def main():
    base = env("BASE")
    key = env("ADMIN_KEY")
    tenant, client_id, secret = env("TENANT"), env("CLIENT_ID"), env("CLIENT_SECRET")
    ca = env("SSL_CERT_FILE")

    def admin(method, path, **kw):
        return requests.request(
            method, f"{base}/_enrollgraph{path}", headers={"Authorization": f"Bearer {key}"}, verify=ca, timeout=30, **kw
        )

    r = admin(
        "POST",
        "/faults",
        json={"method": "GET", "path": "*/deviceEnrollmentConfigurations", "status": 429, "retryAfter": 1, "times": 2},
    )
    check(r.status_code == 201, f"fault rule added ({r.status_code} {r.text[:200]})")
    rule_id = r.json().get("id")

    cred = ClientSecretCredential(tenant, client_id, secret, authority=base, disable_instance_discovery=True)
    # The SDK's own client and middleware (retry included), trusting the server's CA.
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)))
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter

    auth = AzureIdentityAuthenticationProvider(cred, scopes=[SCOPE], allowed_hosts=[base.split("://", 1)[1].split(":")[0]])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{base}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)

    t0 = time.monotonic()
    try:
        result = await client.device_management.device_enrollment_configurations.get()
        elapsed = time.monotonic() - t0
        n = len(result.value or [])
        check(n == V1_DEFAULTS, f"the SDK's call succeeded after two 429s with {n} configurations (want {V1_DEFAULTS})")
        check(elapsed >= 2.0, f"the SDK waited out Retry-After: {elapsed:.2f} s >= 2 s")
    except Exception as e:  # noqa: BLE001 - report any failure of the client
        check(False, f"the SDK's call raised {type(e).__name__}: {e}")
    rules = admin("GET", "/faults").json().get("value", [])
    rule = next((x for x in rules if x.get("id") == rule_id), {})
    check(
        rule.get("matched") == 3 and rule.get("fired") == 2,
        f"the rule saw 3 requests and fired twice (matched {rule.get('matched')}, fired {rule.get('fired')})",
    )
    admin("DELETE", "/faults")

    r = admin("PUT", f"/tenants/{tenant}/throttling", json={"mode": "custom", "tenantRequests": 1, "windowSeconds": 3})
    check(r.status_code == 200, f"throttling set to 1 request per 3 seconds ({r.status_code} {r.text[:200]})")
    try:
        first = await client.device_management.device_enrollment_configurations.get()
        t1 = time.monotonic()
        second = await client.device_management.device_enrollment_configurations.get()
        waited = time.monotonic() - t1
        ok = len(first.value) == V1_DEFAULTS and len(second.value) == V1_DEFAULTS
        check(ok, f"both throttled calls returned the {V1_DEFAULTS} configurations")
        check(waited >= 0.9, f"the second call waited for its token ({waited:.2f} s)")
    except Exception as e:  # noqa: BLE001
        check(False, f"a throttled call raised {type(e).__name__}: {e}")
    admin("DELETE", f"/tenants/{tenant}/throttling")
    await cred.close()

    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
