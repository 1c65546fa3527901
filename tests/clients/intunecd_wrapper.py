#!/usr/bin/env python3
"""Run the real IntuneCD CLI (PyPI `intunecd`, unmodified) against enrollgraph.

IntuneCD 2.x hard-codes "https://graph.microsoft.com" (BaseBackupModule/BaseUpdateModule.endpoint,
and literal URLs for `beta/$batch`, `/beta/groups`, `/beta/deviceManagement/assignmentFilters`,
`roleScopeTags`, `auditEvents`) and msal's authority "https://login.microsoftonline.com/"; it has
no option or variable for them (shared reference clients.md §1). So this wrapper changes the one
thing that differs, the origin, at the one place every request passes:
requests.Session.request (IntuneCD calls requests.request(); msal uses its own Session). Nothing
else about the requests changes. It asks the server to build its links (nextLink) on the real
origin (X-Forwarded-Proto/-Host), as behind a reverse proxy, and rewrites those back too.

  ENROLLGRAPH_URL=http://127.0.0.1:5080 python3 tests/clients/intunecd_wrapper.py \
      backup -p OUT -m 1 -t TOKEN [-e ...]

ENROLLGRAPH_REQUEST_LOG (optional): a file that gets one JSON line per request:
{"method", "url" (as IntuneCD built it, before rewriting), "status"}.
"""
import json
import os
import sys

import requests

GRAPH = os.environ.get("ENROLLGRAPH_URL", "http://127.0.0.1:5080").rstrip("/")
LOGIN = os.environ.get("ENROLLGRAPH_LOGIN_URL", GRAPH).rstrip("/")
REWRITES = (("https://graph.microsoft.com", GRAPH), ("https://login.microsoftonline.com", LOGIN))
LOG = os.environ.get("ENROLLGRAPH_REQUEST_LOG")

_orig_request = requests.Session.request


def _request(self, method, url, *args, **kwargs):
    original = url
    if isinstance(url, str):
        for real, local in REWRITES:
            if url.startswith(real):
                url = local + url[len(real):]
                headers = dict(kwargs.get("headers") or {})
                headers.setdefault("X-Forwarded-Proto", "https")
                headers.setdefault("X-Forwarded-Host", real.split("://", 1)[1])
                kwargs["headers"] = headers
                break
    resp = _orig_request(self, method, url, *args, **kwargs)
    if LOG:
        entry = {"method": method.upper(), "url": original, "status": resp.status_code}
        if isinstance(original, str) and original.endswith("$batch"):
            try:
                body = kwargs.get("json") or json.loads(kwargs.get("data") or "{}")
                answers = {str(r.get("id")): r.get("status") for r in resp.json().get("responses", [])}
                entry["batch"] = [
                    {"method": r.get("method"), "url": r.get("url"), "status": answers.get(str(r.get("id")))}
                    for r in body.get("requests", [])
                ]
            except (ValueError, AttributeError, TypeError):
                entry["batch"] = "unreadable"
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    return resp


requests.Session.request = _request

if __name__ == "__main__":
    from IntuneCD.__main__ import main

    sys.argv = ["IntuneCD"] + sys.argv[1:]
    main()
