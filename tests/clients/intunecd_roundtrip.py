"""Conformance suite: IntuneCD (PyPI `intunecd`, unmodified) backs up one enrollgraph tenant,
updates a second, empty tenant from that backup, backs the second up; the backups must be
identical. Run by crates/cli/tests/clients_intunecd.rs with:
  ENROLLGRAPH_URL  the server's origin (plain http on loopback), for this script's own seeding
  ENROLLGRAPH_PROXY, ENROLLGRAPH_CA   `serve --proxy`'s address and the local CA: IntuneCD gets
                   only HTTPS_PROXY, REQUESTS_CA_BUNDLE and SSL_CERT_FILE (issue 14)
  ADMIN_KEY, TENANT_A   the admin key (the server runs with `--journal on`) and tenant A
  TOKEN_A, TOKEN_B tokens of apps in tenant A (seeded here) and tenant B (new, empty: only
                   Intune's defaults), each with DeviceManagementServiceConfig.ReadWrite.All and
                   Group.ReadWrite.All
  TENANT_B, CLIENT_ID_B, CLIENT_SECRET_B   tenant B's app: IntuneCD runs against B with its own
                   msal client-credentials flow (-m 1 with TENANT_NAME/CLIENT_ID/CLIENT_SECRET),
                   against A with `-t TOKEN_A`
  WORK_DIR         an empty directory for the backups and the request log
By hand: the same variables, then `.venv/bin/python tests/clients/intunecd_roundtrip.py`.

IntuneCD runs as its own console script (`.venv/bin/IntuneCD`), unmodified and unwrapped: its
hard-coded https://graph.microsoft.com and msal's https://login.microsoftonline.com reach
enrollgraph through `serve --proxy`. What it sent is read from the server's journal (cleared
before the first run). Every module runs (no `-e`), the updates with
`--remove`: tenant B also holds objects and assignments that are not in A's backup, and they
must be gone afterwards. Every request IntuneCD sends (and every `$batch` sub-request) must
answer 2xx, but for one: deviceManagement/applePushNotificationCertificate is 404, as the live
service answers a tenant without APNs (graph-behaviours.md "Single objects a tenant always
has"), and IntuneCD's APNs module logs its one error line then, against the live service too.

The backups are compared byte for byte, file by file, without any normalisation: IntuneCD
already drops ids and resolves group and filter ids to names.
"""

import filecmp
import json
import os
import subprocess
import sys

import requests

from checks import check, env, eq, failures, finish  # noqa: E402,F401

URL = os.environ["ENROLLGRAPH_URL"].rstrip("/")
WORK = os.environ["WORK_DIR"]
PROXY = os.environ["ENROLLGRAPH_PROXY"]
CA = os.environ["ENROLLGRAPH_CA"]
ADMIN = {"Authorization": "Bearer " + os.environ["ADMIN_KEY"]}
INTUNECD = os.path.join(os.path.dirname(sys.executable), "IntuneCD")
APNS = "https://graph.microsoft.com/beta/deviceManagement/applePushNotificationCertificate"
# What IntuneCD 2.6.0 logs when the live service answers a tenant without APNs 404: its
# make_graph_request tests `if response and ...` (a requests Response is falsy for 4xx), so
# it raises "no response" and backup/Intune/APNs.py logs it as an error and goes on.
APNS_ERROR = f"Error getting APNs data from {APNS}: "


class Tenant:
    def __init__(self, token):
        self.s = requests.Session()
        self.s.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def delete(self, path):
        r = self.s.delete(f"{URL}/beta/{path}")
        if r.status_code != 204:
            raise SystemExit(f"FAIL: DELETE {path} answered {r.status_code}: {r.text}")

    def post(self, path, body, status=201):
        r = self.s.post(f"{URL}/beta/{path}", data=json.dumps(body))
        if r.status_code != status:
            raise SystemExit(f"FAIL: POST {path} answered {r.status_code}: {r.text}")
        return r.json() if r.text else None

    def get(self, path):
        r = self.s.get(f"{URL}/beta/{path}")
        if r.status_code != 200:
            raise SystemExit(f"FAIL: GET {path} answered {r.status_code}: {r.text}")
        return r.json()

    def get_all(self, path):
        """Every item of a collection, following @odata.nextLink (the server pages small)."""
        page, items = self.get(path), []
        while True:
            items += page["value"]
            link = page.get("@odata.nextLink")
            if not link:
                return items
            r = self.s.get(link)
            if r.status_code != 200:
                raise SystemExit(f"FAIL: GET {link} answered {r.status_code}: {r.text}")
            page = r.json()


def directory(t):
    """Groups and filters: tenant B needs the same names for IntuneCD's name resolution."""
    groups = {
        "Kiosk devices": {"groupTypes": [], "membershipRule": None},
        "Windows dynamic": {"groupTypes": ["DynamicMembership"],
                            "membershipRule": '(device.deviceOSType -eq "Windows")'},
        "Sales users": {"groupTypes": [], "membershipRule": None},
    }
    ids = {}
    for name, extra in groups.items():
        g = t.post("groups", {"displayName": name, "mailEnabled": False, "securityEnabled": True,
                              "mailNickname": name.replace(" ", "").lower(), **extra})
        ids[name] = g["id"]
    for name, platform, rule in [
        ("Corporate Windows", "windows10AndLater", '(device.deviceOwnership -eq "Corporate")'),
        ("Personal iOS", "iOS", '(device.deviceOwnership -eq "Personal")'),
    ]:
        f = t.post("deviceManagement/assignmentFilters",
                   {"displayName": name, "platform": platform, "rule": rule,
                    "assignmentFilterManagementType": "devices"})
        ids[name] = f["id"]
    return ids


def seed(t, ids):
    """Tenant A: configurations of several kinds and Autopilot profiles, assigned to groups
    with include/exclude filters, and to the virtual groups."""
    dm = "deviceManagement"

    def group(name, filt=None, kind="include", exclusion=False):
        target = {"@odata.type": "#microsoft.graph." + ("exclusionGroupAssignmentTarget" if exclusion else "groupAssignmentTarget"),
                  "groupId": ids[name]}
        if filt:
            target["deviceAndAppManagementAssignmentFilterId"] = ids[filt]
            target["deviceAndAppManagementAssignmentFilterType"] = kind
        return {"target": target}

    configs = [
        ({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Sales limit",
          "description": "three devices", "limit": 3},
         [group("Sales users", "Corporate Windows", "include"), group("Kiosk devices", exclusion=True)]),
        ({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Kiosk limit", "limit": 1},
         [group("Kiosk devices", "Corporate Windows", "exclude")]),
        # Not a single-platform restriction (deviceEnrollmentPlatformRestrictionConfiguration):
        # IntuneCD's update pops its platformType before creating it, so that type cannot
        # round-trip through IntuneCD against any server (update/Intune/EnrollmentConfigurations.py).
        ({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
          "displayName": "Restrictions sales",
          "iosRestriction": {"platformBlocked": False, "personalDeviceEnrollmentBlocked": True,
                             "osMinimumVersion": "16.0", "osMaximumVersion": None,
                             "blockedManufacturers": [], "blockedSkus": []}},
         [group("Sales users", "Personal iOS", "include")]),
        ({"@odata.type": "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration",
          "displayName": "WHfB kiosks", "state": "enabled", "pinMinimumLength": 6},
         [group("Windows dynamic")]),
        ({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
          "displayName": "ESP kiosks", "showInstallationProgress": True, "installProgressTimeoutInMinutes": 90},
         [group("Kiosk devices", "Corporate Windows", "include")]),
    ]
    for body, assignments in configs:
        c = t.post(f"{dm}/deviceEnrollmentConfigurations", body)
        t.post(f"{dm}/deviceEnrollmentConfigurations/{c['id']}/assign",
               {"enrollmentConfigurationAssignments": assignments}, status=200)
    # As IntuneCD writes them: update/Intune/WindowsEnrollmentProfile.py sets an empty
    # managementServiceAppId to "" before it writes (rulings.md 14: a profile nobody set
    # it on reads null, as live; a client's value is kept).
    profiles = [
        ({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "Shared kiosk",
          "description": "self-deploying", "deviceNameTemplate": "KIOSK-%RAND:5%", "language": "os-default",
          "managementServiceAppId": ""},
         [group("Kiosk devices"), group("Sales users", exclusion=True)]),
        ({"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile",
          "displayName": "Hybrid sales", "deviceNameTemplate": "SALES-", "managementServiceAppId": ""},
         [group("Windows dynamic")]),
    ]
    for body, assignments in profiles:
        p = t.post(f"{dm}/windowsAutopilotDeploymentProfiles", body)
        for a in assignments:
            t.post(f"{dm}/windowsAutopilotDeploymentProfiles/{p['id']}/assignments", a)


def intunecd(*args, msal=None):
    # Only the environment a user would set: the proxy and the CA.
    env = dict(os.environ, HTTPS_PROXY=PROXY, https_proxy=PROXY, REQUESTS_CA_BUNDLE=CA, SSL_CERT_FILE=CA)
    for k in ("TENANT_NAME", "CLIENT_ID", "CLIENT_SECRET", "ENROLLGRAPH_URL", "ADMIN_KEY"):
        env.pop(k, None)
    if msal:
        env.update(msal)
    cmd = [INTUNECD, *args]
    print("$ IntuneCD " + " ".join(a if not a.startswith("eyJ") else "TOKEN" for a in args), flush=True)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    errors = [l for l in (r.stdout + r.stderr).splitlines()
              if ("[ERROR]" in l and APNS_ERROR not in l) or "Traceback" in l]
    check(r.returncode == 0 and not errors,
          f"IntuneCD {args[0]} exited {r.returncode} with {len(errors)} error line(s)" +
          ("" if not errors else ":\n  " + "\n  ".join(errors[:20])))
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-4000:])
    return r


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = p
    return out


def main():
    os.makedirs(WORK, exist_ok=True)
    a, b = Tenant(os.environ["TOKEN_A"]), Tenant(os.environ["TOKEN_B"])
    ids_a = directory(a)
    seed(a, ids_a)
    ids_b = directory(b)
    # Two stale objects in B, so that the update also PATCHes (the rest it creates); the
    # configuration with an assignment A's backup does not have (IntuneCD's /assign sends
    # the whole set, so it goes); and two objects A does not have at all, assigned, which
    # --remove must delete with their assignments (DELETE .../assignments, then the object).
    # Not a stale assignment on a kept Autopilot profile: IntuneCD 2.6.0 only POSTs the
    # assignments it finds added there (BaseUpdateModule.handle_iterable_assignments), and
    # its DeepDiff pairs a replaced target as "changed", not added, so no server could
    # round-trip that.
    stale = b.post("deviceManagement/deviceEnrollmentConfigurations",
                   {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Sales limit",
                    "description": "stale", "limit": 9})
    b.post(f"deviceManagement/deviceEnrollmentConfigurations/{stale['id']}/assign",
           {"enrollmentConfigurationAssignments": [
               {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": ids_b["Windows dynamic"]}}]},
           status=200)
    b.post("deviceManagement/windowsAutopilotDeploymentProfiles",
           {"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile",
            "displayName": "Hybrid sales", "deviceNameTemplate": "OLD-", "managementServiceAppId": ""})
    obsolete = b.post("deviceManagement/deviceEnrollmentConfigurations",
                      {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
                       "displayName": "Obsolete limit", "limit": 2})
    b.post(f"deviceManagement/deviceEnrollmentConfigurations/{obsolete['id']}/assign",
           {"enrollmentConfigurationAssignments": [
               {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": ids_b["Kiosk devices"]}}]},
           status=200)
    gone = b.post("deviceManagement/windowsAutopilotDeploymentProfiles",
                  {"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
                   "displayName": "Obsolete profile", "managementServiceAppId": ""})
    b.post(f"deviceManagement/windowsAutopilotDeploymentProfiles/{gone['id']}/assignments",
           {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": ids_b["Kiosk devices"]}})
    backup_a, backup_b = os.path.join(WORK, "backup-a"), os.path.join(WORK, "backup-b")
    # IntuneCD 2.6.0 races itself: its backup modules run in a thread pool, and
    # IntuneCDBase.save_to_file checks os.path.exists(path) before os.makedirs(path), so the
    # Windows enrollment profile module fails with "[Errno 17] File exists" when the ESP
    # module made ".../Enrollment Profiles/Windows/ESP/" in between (seen once in CI-like
    # runs). The directory made ahead closes that window; the server is not involved.
    for root in (backup_a, backup_b):
        os.makedirs(os.path.join(root, "Enrollment Profiles", "Windows"), exist_ok=True)

    r = requests.delete(f"{URL}/_enrollgraph/journal", headers=ADMIN)
    check(r.status_code == 200, f"the journal was cleared: {r.status_code} {r.text}")
    intunecd("backup", "-p", backup_a, "-m", "1", "-t", os.environ["TOKEN_A"])
    files_a = tree(backup_a)
    want = [
        "Enrollment Configurations/Sales limit_deviceEnrollmentLimitConfiguration.json",
        "Enrollment Configurations/Restrictions sales_deviceEnrollmentPlatformRestrictionsConfiguration.json",
        "Enrollment Profiles/Windows/Shared kiosk_azureADWindowsAutopilotDeploymentProfile.json",
        "Enrollment Profiles/Windows/ESP/ESP kiosks_windows10EnrollmentCompletionPageConfiguration.json",
        "Device Management Settings/settings.json",
    ]
    for f in want:
        check(f in files_a, f"backup A holds {f}")
    sales = json.load(open(files_a.get(want[0], os.devnull))) if want[0] in files_a else {}
    targets = sorted(json.dumps(x.get("target"), sort_keys=True) for x in sales.get("assignments", []))
    check(any('"groupName": "Sales users"' in t and '"deviceAndAppManagementAssignmentFilterId": "Corporate Windows"' in t
              for t in targets), f"the backup resolved the group and the filter to names: {targets}")

    # Tenant B holds only Intune's defaults and the same-named groups and filters.
    # Two passes: IntuneCD sets a configuration's priority only when it existed before the run
    # (BaseUpdateModule.create_downstream_data creates without EnrollmentConfigurations
    # ._update_priority), so the first pass creates, the second moves priorities (setpriority).
    # Against B, IntuneCD signs in itself: msal's discovery and client-credentials token
    # request go to login.microsoftonline.com, which the proxy serves itself.
    b_app = {"TENANT_NAME": os.environ["TENANT_B"], "CLIENT_ID": os.environ["CLIENT_ID_B"],
             "CLIENT_SECRET": os.environ["CLIENT_SECRET_B"]}
    intunecd("update", "-p", backup_a, "-m", "1", "-u", "--remove", msal=b_app)
    intunecd("update", "-p", backup_a, "-m", "1", "-u", "--remove", msal=b_app)
    intunecd("backup", "-p", backup_b, "-m", "1", msal=b_app)
    # What IntuneCD sent, before this script reads B again.
    sent = []
    for tenant in (os.environ["TENANT_A"], os.environ["TENANT_B"]):
        r = requests.get(f"{URL}/_enrollgraph/journal", params={"tenant": tenant}, headers=ADMIN)
        check(r.status_code == 200, f"the journal of {tenant} answered {r.status_code}")
        sent += r.json().get("value", []) if r.status_code == 200 else []
    # What A's backup does not have is gone from B: objects, and assignments of kept ones.
    names = lambda path: sorted(x["displayName"] for x in b.get_all(path))  # noqa: E731
    configs_b = names("deviceManagement/deviceEnrollmentConfigurations")
    profiles_b = names("deviceManagement/windowsAutopilotDeploymentProfiles")
    check("Obsolete limit" not in configs_b, f"--remove deleted the configuration A has not: {configs_b}")
    check("Obsolete profile" not in profiles_b, f"--remove deleted the Autopilot profile A has not: {profiles_b}")
    check(configs_b.count("Sales limit") == 1 and profiles_b.count("Hybrid sales") == 1,
          f"the stale objects were updated in place: {configs_b} {profiles_b}")
    files_b = tree(backup_b)
    check(sorted(files_a) == sorted(files_b),
          f"both backups hold the same files: only A {sorted(set(files_a) - set(files_b))}, only B {sorted(set(files_b) - set(files_a))}")
    for rel in sorted(set(files_a) & set(files_b)):
        same = filecmp.cmp(files_a[rel], files_b[rel], shallow=False)
        if not check(same, f"identical: {rel}"):
            import difflib
            print("".join(difflib.unified_diff(open(files_a[rel]).readlines(), open(files_b[rel]).readlines(),
                                               "A/" + rel, "B/" + rel)))

    # Every request IntuneCD sent answered 2xx. The journal has no host: IntuneCD was given
    # no other way to the server than the proxy, so its Graph paths were sent to
    # https://graph.microsoft.com and its token requests to https://login.microsoftonline.com.
    # (`$batch` sub-requests are in the journal as the batch's body only: their answers are
    # checked by the backups being identical, the assignments they read being in them.)
    bad = []
    calls = set()
    for e in sent:
        host = "https://login.microsoftonline.com" if "/oauth2/" in e["path"] else "https://graph.microsoft.com"
        url = host + e["path"]
        calls.add(f"{e['method']} {url}")
        if not 200 <= e["status"] < 300 and not (e["status"] == 404 and url == APNS):
            bad.append(f"{e['status']} {e['method']} {url}")
    for verb in ("GET https://graph.microsoft.com/beta/deviceManagement/settings",
                 "GET https://graph.microsoft.com/beta/deviceManagement/androidManagedStoreAccountEnterpriseSettings",
                 "GET " + APNS,
                 "DELETE https://graph.microsoft.com/beta/deviceManagement/deviceEnrollmentConfigurations/",
                 "DELETE https://graph.microsoft.com/beta/deviceManagement/windowsAutopilotDeploymentProfiles/",
                 "PATCH https://graph.microsoft.com/beta/deviceManagement/deviceEnrollmentConfigurations/",
                 "PATCH https://graph.microsoft.com/beta/deviceManagement/windowsAutopilotDeploymentProfiles/",
                 "POST https://graph.microsoft.com/beta/deviceManagement/windowsAutopilotDeploymentProfiles/",
                 "POST https://graph.microsoft.com/beta/$batch"):
        check(any(c.startswith(verb) for c in calls), f"IntuneCD sent {verb}...")
    check(any(c.startswith("POST https://login.microsoftonline.com/") for c in calls),
          "IntuneCD's msal got its token from enrollgraph's token endpoint")
    check(not bad, f"every request answered 2xx ({len(calls)} distinct calls)" + ("" if not bad else ":\n  " + "\n  ".join(bad[:30])))
    with open(os.path.join(WORK, "calls.txt"), "w") as f:
        f.write("\n".join(sorted(calls)) + "\n")

    finish()


if __name__ == "__main__":
    main()
