//! Conformance: IntuneCD (PyPI `intunecd`, pinned in tests/clients/requirements.txt, its own
//! console script, unmodified and unwrapped: it reaches enrollgraph through `serve --proxy`
//! with HTTPS_PROXY and the CA variables only, issue 14) backs up tenant A (with `-t TOKEN`), updates a second tenant B (made with `enrollgraph
//! tenant create` and `app create`; IntuneCD signs in there with msal against enrollgraph's
//! token endpoint) from that backup with `--remove`, backs B up; the two backup trees must be
//! identical, objects A does not have must be gone from B, and every request IntuneCD sends
//! must answer 2xx, but the 404 of a tenant without APNs (`tests/clients/intunecd_roundtrip.py`).
//! Every module runs: no `-e` (issue 19).
#![allow(clippy::unwrap_used)]

#[path = "support/clients.rs"]
mod clients;
#[allow(unused_imports)] // not every re-export of the harness is used here
mod common;
#[path = "support/proxy_server.rs"]
mod proxy_server;

use std::time::Duration;

use common::TENANT;
use proxy_server::{ADMIN_KEY, ProxyServer};

#[test]
fn intunecd_backup_update_backup_round_trip_is_identical() {
    let Some(py) = clients::python() else { return };
    // A small page size, so that IntuneCD follows @odata.nextLink through several pages; a
    // journal large enough for every request of the four runs.
    let s = ProxyServer::start(&["--page-size", "3", "--journal-size", "10000"]);
    let tenant_b = s.cli(&["tenant", "create"]).trim().to_owned();
    let app = s.cli(&[
        "app",
        "create",
        "--tenant",
        &tenant_b,
        "--role",
        "DeviceManagementServiceConfig.ReadWrite.All",
        "--role",
        "Group.ReadWrite.All",
    ]);
    let field = |k: &str| app.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_owned();
    let (client_id, secret) = (field("client id:"), field("client secret:"));
    let token_a = s.cli(&["token"]).trim().to_owned();
    let base = s.base.clone();
    let token_b = s.cli(&["token", "--tenant", &tenant_b, "--app", &client_id]).trim().to_owned();
    let work = s.data_dir.join("intunecd");
    let out = clients::run_script(
        &py,
        &["tests/clients/intunecd_roundtrip.py"],
        &[
            ("ENROLLGRAPH_URL", base),
            ("ENROLLGRAPH_PROXY", s.proxy.clone()),
            ("ENROLLGRAPH_CA", s.ca.display().to_string()),
            ("ADMIN_KEY", ADMIN_KEY.to_owned()),
            ("TENANT_A", TENANT.to_owned()),
            ("TOKEN_A", token_a),
            ("TOKEN_B", token_b),
            ("TENANT_B", tenant_b.clone()),
            ("CLIENT_ID_B", client_id.clone()),
            ("CLIENT_SECRET_B", secret),
            ("WORK_DIR", work.display().to_string()),
        ],
        Duration::from_secs(600),
        "intunecd_roundtrip.py",
    );
    // The script's own checks passed; make sure it really compared the enrollment files.
    for file in [
        "identical: Enrollment Configurations/Sales limit_deviceEnrollmentLimitConfiguration.json",
        "identical: Enrollment Profiles/Windows/Shared kiosk_azureADWindowsAutopilotDeploymentProfile.json",
        "identical: Enrollment Profiles/Windows/ESP/ESP kiosks_windows10EnrollmentCompletionPageConfiguration.json",
        // Listed filters carry no @odata.type (rulings.md 4, as live), so IntuneCD names the
        // file without a type suffix, as it does against the live service.
        "identical: Filters/Corporate Windows.json",
        // The three single objects (graph-behaviours.md "Single objects a tenant always has").
        "identical: Device Management Settings/settings.json",
        "identical: Managed Google Play/_androidManagedStoreAccountEnterpriseSettings.json",
        "--remove deleted the configuration A has not",
        "--remove deleted the Autopilot profile A has not",
        "IntuneCD sent DELETE https://graph.microsoft.com/beta/deviceManagement/windowsAutopilotDeploymentProfiles/",
        "IntuneCD sent GET https://graph.microsoft.com/beta/deviceManagement/applePushNotificationCertificate",
    ] {
        assert!(out.stdout.contains(&format!("ok: {file}")), "{file} was not compared:\n{}", out.stdout);
    }
}
