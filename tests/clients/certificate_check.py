"""Certificate credentials against enrollgraph's token endpoint (issue 14): azure-identity's
`CertificateCredential` (sync and async) and MSAL Python's confidential client with a
certificate sign RFC 7523 client assertions; the tokens they get call Graph.

Run by crates/cli/tests/azure_identity.rs against `enrollgraph serve --tls --admin-key KEY`:
  AUTHORITY   https://localhost:PORT      TENANT     the tenant id
  ADMIN_KEY   the admin key               GRAPH_URL  https://localhost:PORT/beta
  REQUESTS_CA_BUNDLE, SSL_CERT_FILE       the server's CA
and through `serve --proxy` (issue 14, "any tool, unchanged"): AUTHORITY empty, so each client
keeps its default authority (login.microsoftonline.com, instance discovery on), GRAPH_URL
https://graph.microsoft.com/beta, HTTPS_PROXY the proxy, ADMIN_URL the direct listener (the
admin API is not an intercepted host).
The script makes an RSA key and a self-signed certificate (the `cryptography` package),
registers an app holding the certificate (public part only) through the admin API, then
signs in with each client. Prints one ok/FAIL line per check; exits 1 if any failed.
"""

import asyncio
import datetime
import os
import tempfile

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from checks import check, env, eq, finish

SCOPE = "https://graph.microsoft.com/.default"


def make_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enrollgraph certificate check")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    return key_pem, cert_pem, thumbprint


def call_graph(token, label):
    url = os.environ["GRAPH_URL"].rstrip("/") + "/deviceManagement/deviceEnrollmentConfigurations"
    r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    check(r.status_code == 200, f"{label}: GET {url} answered {r.status_code}")


def main():
    authority, tenant = os.environ.get("AUTHORITY", ""), env("TENANT")
    admin_url = os.environ.get("ADMIN_URL") or authority
    # No authority: every client keeps its own default (the public cloud's login host).
    own = {"authority": authority, "disable_instance_discovery": True} if authority else {}
    msal_authority = f"{authority or 'https://login.microsoftonline.com'}/{tenant}"
    msal_discovery = not authority
    admin_key = env("ADMIN_KEY")
    env("GRAPH_URL")
    key_pem, cert_pem, thumbprint = make_certificate()
    r = requests.post(
        f"{admin_url}/_enrollgraph/tenants/{tenant}/apps",
        json={"displayName": "certificate check", "certificates": [cert_pem]},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    if not check(r.status_code == 201, f"admin API registers the app with its certificate ({r.status_code})"):
        print(r.text)
        finish()
    app = r.json()
    client_id = app["clientId"]
    eq(app["certificateThumbprints"], [thumbprint], "the app's certificate thumbprint")

    # A private key in the upload is refused: the server never stores one.
    r = requests.post(
        f"{admin_url}/_enrollgraph/tenants/{tenant}/apps",
        json={"certificates": [cert_pem + key_pem]},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    eq(r.status_code, 400, "a PEM with a private key is refused")

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "app.pem")
        with open(path, "w") as f:
            f.write(key_pem + cert_pem)

        from azure.identity import CertificateCredential

        for chain in (False, True):
            label = f"sync CertificateCredential (send_certificate_chain={chain})"
            cred = CertificateCredential(tenant, client_id, path, send_certificate_chain=chain, **own)
            try:
                tok = cred.get_token(SCOPE)
                check(True, f"{label}: get_token")
                call_graph(tok.token, label)
            except Exception as e:  # noqa: BLE001 - report any failure of the client
                check(False, f"{label}: get_token raised {type(e).__name__}: {e}")
            finally:
                cred.close()

        async def run_async():
            from azure.identity.aio import CertificateCredential as AsyncCertificateCredential

            label = "async CertificateCredential"
            cred = AsyncCertificateCredential(tenant, client_id, path, **own)
            try:
                async with cred:
                    tok = await cred.get_token(SCOPE)
                check(True, f"{label}: get_token")
                call_graph(tok.token, label)
            except Exception as e:  # noqa: BLE001
                check(False, f"{label}: get_token raised {type(e).__name__}: {e}")

        asyncio.run(run_async())

    import msal

    label = "msal ConfidentialClientApplication with a certificate"
    cca = msal.ConfidentialClientApplication(
        client_id,
        authority=msal_authority,
        client_credential={"private_key": key_pem, "thumbprint": thumbprint},
        instance_discovery=msal_discovery,
    )
    result = cca.acquire_token_for_client(scopes=[SCOPE])
    if check("access_token" in result, f"{label}: acquire_token_for_client"):
        call_graph(result["access_token"], label)
    else:
        print(result)

    # A certificate the app does not hold: Entra's AADSTS700027.
    other_key, _, _ = make_certificate()
    bad = msal.ConfidentialClientApplication(
        client_id,
        authority=msal_authority,
        client_credential={"private_key": other_key, "thumbprint": thumbprint},
        instance_discovery=msal_discovery,
    )
    result = bad.acquire_token_for_client(scopes=[SCOPE])
    eq(result.get("error_codes"), [700027], f"{label}: a key the certificate is not for is refused")
    finish()


if __name__ == "__main__":
    main()
