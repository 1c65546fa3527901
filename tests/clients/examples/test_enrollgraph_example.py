"""An example test suite against enrollgraph (README "Test suites"): each suite owns a
tenant made in one call, every test starts from the same snapshot, asserts what the code
under test sent (the request journal), and proves its retry logic against an injected 429.

Run against a server started with an admin key:
  enrollgraph serve --admin-key my-long-random-admin-key &
  ENROLLGRAPH_URL=http://127.0.0.1:5080 ENROLLGRAPH_ADMIN_KEY=my-long-random-admin-key \
      python -m unittest tests/clients/examples/test_enrollgraph_example.py
Needs only `requests`. crates/cli/tests/admin_sdk.rs runs it in CI.
"""

import json
import os
import time
import unittest

import requests

URL = os.environ.get("ENROLLGRAPH_URL", "http://127.0.0.1:5080").rstrip("/")
ADMIN = {"Authorization": f"Bearer {os.environ['ENROLLGRAPH_ADMIN_KEY']}"}


def admin(method, path, **kw):
    r = requests.request(method, f"{URL}/_enrollgraph{path}", headers=ADMIN, timeout=30, **kw)
    r.raise_for_status()
    return r.json() if r.content else None


def patch_with_retry(session, url, body, attempts=3):
    """Stands in for the code under test: PATCH, honouring Retry-After on 429."""
    for _ in range(attempts):
        r = session.patch(url, json=body, timeout=30)
        if r.status_code != 429:
            return r
        time.sleep(int(r.headers["Retry-After"]))
    return r


class EnrollmentAutomationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.creds = admin("POST", "/tenants", json={"displayName": "example suite"})
        cls.tenant = cls.creds["tenantId"]
        token = requests.post(
            cls.creds["tokenEndpoint"],
            data={
                "grant_type": "client_credentials",
                "client_id": cls.creds["clientId"],
                "client_secret": cls.creds["clientSecret"],
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=30,
        ).json()["access_token"]
        cls.graph = requests.Session()
        cls.graph.headers["Authorization"] = f"Bearer {token}"
        cls.base = cls.creds["graphUrl"] + "/deviceManagement/deviceEnrollmentConfigurations"
        cls.snapshot = admin("GET", f"/tenants/{cls.tenant}/snapshot")
        admin("PUT", "/journal/settings", json={"enabled": True})

    @classmethod
    def tearDownClass(cls):
        admin("DELETE", f"/tenants/{cls.tenant}")

    def setUp(self):
        # Every test starts from the same state, with an empty journal and no fault rules.
        admin("PUT", f"/tenants/{self.tenant}/snapshot", json=self.snapshot)
        admin("DELETE", "/journal", params={"tenant": self.tenant})
        admin("DELETE", "/faults")

    def test_sends_exactly_one_patch(self):
        url = f"{self.base}/{self.tenant}_DefaultLimit"
        body = {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": 10}
        self.assertEqual(patch_with_retry(self.graph, url, body).status_code, 200)
        sent = admin("GET", "/journal", params={"tenant": self.tenant, "method": "PATCH"})["value"]
        self.assertEqual(len(sent), 1)
        self.assertEqual(json.loads(sent[0]["body"]), body)
        self.assertNotIn("authorization", sent[0]["headers"])

    def test_retries_after_a_429(self):
        admin("POST", "/faults", json={"tenant": self.tenant, "method": "PATCH", "status": 429, "retryAfter": 1, "times": 1})
        url = f"{self.base}/{self.tenant}_DefaultLimit"
        body = {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": 11}
        self.assertEqual(patch_with_retry(self.graph, url, body).status_code, 200)
        statuses = [e["status"] for e in admin("GET", "/journal", params={"tenant": self.tenant, "method": "PATCH"})["value"]]
        self.assertEqual(statuses, [429, 200])

    def test_starts_from_the_snapshot(self):
        got = self.graph.get(f"{self.base}/{self.tenant}_DefaultLimit", timeout=30).json()
        self.assertEqual(got["limit"], 5)


if __name__ == "__main__":
    unittest.main()
