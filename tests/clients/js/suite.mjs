// Conformance suite: @microsoft/microsoft-graph-client 3.0.7 (npm, unmodified, pinned in
// package-lock.json) against enrollgraph. Run by crates/cli/tests/clients_js.rs against
// `enrollgraph serve --tls --page-size 3` with:
//   AUTHORITY    https://localhost:PORT (token endpoint and Graph); empty: the client's
//                defaults (https://graph.microsoft.com, https://login.microsoftonline.com),
//                reached through `serve --proxy` with HTTPS_PROXY and `--import ./proxy-env.mjs`
//   TENANT, CLIENT_ID, CLIENT_SECRET   the development app
//   NODE_EXTRA_CA_CERTS                the server's CA
// The client attaches Authorization only on https to a Graph host or a `customHosts` entry
// (shared reference clients.md §3), hence TLS. Only baseUrl and customHosts change.
// By hand: npm ci --prefix tests/clients/js, then the variables above and
//   node tests/clients/js/suite.mjs
// Prints "ok: ..." / "FAIL: ..." per check and "all checks passed" at the end (exit 1 otherwise).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Client, BatchRequestContent, BatchResponseContent, PageIterator, GraphError } = require("@microsoft/microsoft-graph-client");

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.log(`FAIL: environment variable ${k} is not set`);
    process.exit(2);
  }
  return v;
};
const DIRECT = (process.env.AUTHORITY ?? "").replace(/\/$/, "");
const AUTHORITY = DIRECT || "https://graph.microsoft.com";
const LOGIN = DIRECT || "https://login.microsoftonline.com";
const failures = [];
const check = (cond, what) => {
  console.log((cond ? "ok: " : "FAIL: ") + what);
  if (!cond) failures.push(what);
  return cond;
};
const same = (got, want, what) => {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  return check(g === w, `${what}: ${g}` + (g === w ? "" : ` (want ${w})`));
};
const expectGraphError = async (promise, status, code, what) => {
  try {
    await promise;
    check(false, `${what}: no error (want GraphError ${status} ${code})`);
  } catch (e) {
    check(e instanceof GraphError && e.statusCode === status && e.code === code,
      `${what}: ${e.constructor.name} ${e.statusCode} ${e.code} (want GraphError ${status} ${code})`);
  }
};

// A token from enrollgraph's token endpoint (client credentials), as any daemon gets one.
const tokenResponse = await fetch(`${LOGIN}/${env("TENANT")}/oauth2/v2.0/token`, {
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({
    grant_type: "client_credentials",
    client_id: env("CLIENT_ID"),
    client_secret: env("CLIENT_SECRET"),
    scope: "https://graph.microsoft.com/.default",
  }),
});
const token = (await tokenResponse.json()).access_token;
check(typeof token === "string", "a token from the token endpoint");

// Without AUTHORITY the client keeps its default base URL and hosts.
const client = Client.init({
  ...(DIRECT ? { baseUrl: DIRECT, customHosts: new Set([new URL(DIRECT).hostname]) } : {}),
  defaultVersion: "beta",
  authProvider: (done) => done(null, token),
});
const DEC = "/deviceManagement/deviceEnrollmentConfigurations";
const GROUP = "6f1e2d3c-0000-4000-8000-000000000001";

// --- create, get, update -----------------------------------------------------------------
const filter = await client.api("/deviceManagement/assignmentFilters").post({
  displayName: "JS corporate", platform: "windows10AndLater", rule: '(device.deviceOwnership -eq "Corporate")',
});
check(typeof filter.id === "string", `create an assignment filter ${filter.id}`);
const group = await client.api("/groups").post({ displayName: "JS kiosks", mailEnabled: false, securityEnabled: true, mailNickname: "jskiosks" });
const found = await client.api("/groups").filter("displayName eq 'JS kiosks'").select("id,displayName").get();
same(found.value.map((g) => g.id), [group.id], "GET /groups?$filter=displayName eq 'JS kiosks'");

const cfg = await client.api(DEC).post({
  "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", displayName: "JS limit", limit: 4,
});
check(cfg.id.endsWith("_Limit") && cfg["@odata.type"] === "#microsoft.graph.deviceEnrollmentLimitConfiguration",
  `create a limit configuration ${cfg.id}`);
same(cfg.priority, 1, "its priority");
const patched = await client.api(`${DEC}/${cfg.id}`).patch({ "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", limit: 6 });
same(patched?.limit, 6, "PATCH answers the updated configuration");
const got = await client.api(`${DEC}/${cfg.id}`).select("id,displayName,version").get();
same([got.displayName, got.version, "limit" in got], ["JS limit", 1, false], "GET with $select after PATCH");

// --- assignments: every target type, list across pages with the PageIterator -----------
const targets = [
  { "@odata.type": "#microsoft.graph.groupAssignmentTarget", groupId: group.id,
    deviceAndAppManagementAssignmentFilterId: filter.id, deviceAndAppManagementAssignmentFilterType: "include" },
  { "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", groupId: GROUP },
  { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget",
    deviceAndAppManagementAssignmentFilterId: filter.id, deviceAndAppManagementAssignmentFilterType: "exclude" },
  { "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" },
  { "@odata.type": "#microsoft.graph.configurationManagerCollectionAssignmentTarget", collectionId: "SMS00001" },
];
const created = [];
for (const target of targets) {
  const a = await client.api(`${DEC}/${cfg.id}/assignments`).post({ target });
  created.push(a.id);
  same(a.target["@odata.type"], target["@odata.type"], "create an assignment");
}
const firstPage = await client.api(`${DEC}/${cfg.id}/assignments`).get();
check(Boolean(firstPage["@odata.nextLink"]), `the first page has a nextLink (${firstPage.value.length} items)`);
const seen = [];
await new PageIterator(client, firstPage, (a) => { seen.push(a.id); return true; }).iterate();
same(seen, created, "PageIterator returns every assignment in order");
const one = await client.api(`${DEC}/${cfg.id}/assignments/${created[0]}`).get();
same([one.target.groupId, one.target.deviceAndAppManagementAssignmentFilterType], [group.id, "include"], "GET one assignment");
await client.api(`${DEC}/${cfg.id}/assignments/${created[1]}`).patch({
  target: { "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", groupId: group.id },
});
same((await client.api(`${DEC}/${cfg.id}/assignments/${created[1]}`).get()).target.groupId, group.id, "PATCH an assignment");
await client.api(`${DEC}/${cfg.id}/assignments/${created[4]}`).delete();
await expectGraphError(client.api(`${DEC}/${cfg.id}/assignments/${created[4]}`).get(), 404, "ResourceNotFound", "GET a deleted assignment");

const included = await client.api(`${DEC}/${cfg.id}/assignments`)
  .filter("target/deviceAndAppManagementAssignmentFilterType eq 'include'").get();
same(included.value.map((a) => a.id), [created[0]], "$filter on assignments");
const expanded = await client.api(DEC).filter("displayName eq 'JS limit'").expand("assignments").select("id,displayName").get();
same(expanded.value.map((c) => [c.id, c.assignments.length]), [[cfg.id, 4]], "$filter + $expand=assignments + $select");

// --- actions -------------------------------------------------------------------------------
await client.api(`${DEC}/${cfg.id}/assign`).post({
  enrollmentConfigurationAssignments: [{ target: targets[3] }, { target: targets[0] }],
});
let all = [];
await new PageIterator(client, await client.api(`${DEC}/${cfg.id}/assignments`).get(), (a) => { all.push(a.target["@odata.type"]); return true; }).iterate();
same(all.sort(), [targets[3]["@odata.type"], targets[0]["@odata.type"]].sort(), "assign replaced the set");
const cfg2 = await client.api(DEC).post({ "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", displayName: "JS limit 2", limit: 1 });
await client.api(`${DEC}/${cfg2.id}/setPriority`).post({ priority: 1 });
same([(await client.api(`${DEC}/${cfg2.id}`).get()).priority, (await client.api(`${DEC}/${cfg.id}`).get()).priority], [1, 2], "setPriority");

// --- Apple and Autopilot -----------------------------------------------------------------
const apple = await client.api("/deviceManagement/appleUserInitiatedEnrollmentProfiles").post({ displayName: "JS iOS", platform: "iOS" });
const appleA = await client.api(`/deviceManagement/appleUserInitiatedEnrollmentProfiles/${apple.id}/assignments`).post({ target: targets[0] });
same(appleA.target.groupId, group.id, "create an Apple profile assignment");
const ap = await client.api("/deviceManagement/windowsAutopilotDeploymentProfiles").post({
  "@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", displayName: "JS shared",
});
const apA = await client.api(`/deviceManagement/windowsAutopilotDeploymentProfiles/${ap.id}/assignments`).post({
  target: { "@odata.type": "#microsoft.graph.groupAssignmentTarget", groupId: group.id },
});
same(apA.id, `${ap.id}_${group.id}_0`, "create an Autopilot profile assignment");

// --- v1.0 ----------------------------------------------------------------------------------
const v1 = await client.api(`${DEC}/${cfg.id}`).version("v1.0").get();
same([v1.id, v1.limit, "roleScopeTagIds" in v1], [cfg.id, 6, false], "v1.0 shows the configuration through the v1.0 schema (no beta-only roleScopeTagIds)");

// --- $batch with dependsOn -------------------------------------------------------------------
const abs = (p) => `${AUTHORITY}/beta${p}`; // Node's Request needs an absolute URL; the client keeps the path
const json = (method, path, body) => new Request(abs(path), { method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
const batch = new BatchRequestContent([
  { id: "1", request: json("POST", `${DEC}/${cfg2.id}/assignments`, { target: targets[1] }) },
  { id: "2", request: new Request(abs(`${DEC}/${cfg2.id}/assignments`), { method: "GET" }), dependsOn: ["1"] },
  { id: "3", request: json("POST", `${DEC}/${cfg2.id}/setPriority`, { priority: 2 }), dependsOn: ["2"] },
  { id: "4", request: new Request(abs(`${DEC}/${cfg2.id}?$select=id,priority`), { method: "GET" }), dependsOn: ["3"] },
  // The client accepts only serial, parallel or same-dependency batches: a serial chain.
  { id: "5", request: new Request(abs(`${DEC}/nope`), { method: "GET" }), dependsOn: ["4"] },
  { id: "6", request: new Request(abs(`${DEC}/${cfg2.id}`), { method: "DELETE" }), dependsOn: ["5"] },
]);
const content = await batch.getContent();
same(content.requests.map((r) => [r.id, r.url.split("?")[0].startsWith("/beta/deviceManagement/"), r.dependsOn ?? []]),
  [["1", true, []], ["2", true, ["1"]], ["3", true, ["2"]], ["4", true, ["3"]], ["5", true, ["4"]], ["6", true, ["5"]]],
  "BatchRequestContent built /beta/... urls with dependsOn");
const batchResponse = new BatchResponseContent(await client.api("/$batch").post(content));
const status = (id) => batchResponse.getResponseById(id)?.status;
same(["1", "2", "3", "4", "5", "6"].map(status), [201, 200, 200, 200, 404, 424], "per-request statuses");
const listed = await batchResponse.getResponseById("2").json();
same(listed.value.length, 1, "batch response 2: the assignment created by request 1");
same((await batchResponse.getResponseById("4").json()).priority, 2, "batch response 4 sees setPriority of request 3");
const missing = await batchResponse.getResponseById("5").json();
same(missing.error?.code, "ResourceNotFound", "batch response 5 is a Graph error");
check((await client.api(`${DEC}/${cfg2.id}`).get()).id === cfg2.id, "request 6 did not run (its dependency failed)");

// --- errors ----------------------------------------------------------------------------------
await expectGraphError(client.api(`${DEC}/nope`).get(), 404, "ResourceNotFound", "GET an unknown configuration");
await expectGraphError(client.api(DEC).filter("displayName eqq 'x'").get(), 400, "BadRequest", "a bad $filter");
await expectGraphError(client.api(DEC).post({ "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", nope: 1 }), 400, "BadRequest", "an unknown property");

// --- delete ----------------------------------------------------------------------------------
await client.api(`${DEC}/${cfg.id}`).delete();
await expectGraphError(client.api(`${DEC}/${cfg.id}`).get(), 404, "ResourceNotFound", "GET a deleted configuration");

if (failures.length) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("all checks passed");
