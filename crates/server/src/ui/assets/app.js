// The enrollgraph inspector. Every page reads the admin API's answers under ./api/ and
// builds the DOM with textContent only: no string of data ever becomes markup.
"use strict";

const main = document.getElementById("main");
let stopLive = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: headers.length, class: "muted", text: "None." }))]));
}

async function api(path) {
  const r = await fetch("api/" + path, { headers: { accept: "application/json" }, credentials: "same-origin" });
  if (r.status === 401) { location.href = "signin"; throw new Error("signed out"); }
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: { message: text } }; }
  return { status: r.status, body };
}

function problem(where, r) {
  const m = r.body && r.body.error ? r.body.error.message : "status " + r.status;
  return el("p", { class: "error", role: "alert", text: where + ": " + m });
}

function page(title, ...kids) {
  main.replaceChildren(el("h1", { text: title }), ...kids.filter((k) => k !== null && k !== undefined));
  main.focus({ preventScroll: true });
}

function confirmThen(message, action) {
  const d = el("dialog", { "aria-label": "Confirm" });
  const yes = el("button", { class: "danger", id: "confirm-yes", text: "Yes, do it" });
  const no = el("button", { text: "Cancel" });
  d.append(el("p", { text: message }), el("div", { class: "row" }, no, yes));
  no.addEventListener("click", () => { d.close(); d.remove(); });
  yes.addEventListener("click", async () => { d.close(); d.remove(); await action(); });
  document.body.append(d);
  d.showModal();
  no.focus();
}

const enc = encodeURIComponent;

// --- tenants ------------------------------------------------------------------------------

async function tenantsPage() {
  const r = await api("tenants");
  if (r.status !== 200) return page("Tenants", problem("Tenants", r));
  const rows = r.body.value.map((t) => el("tr", {},
    el("td", { class: "mono" }, el("a", { href: "#/tenant/" + enc(t.id), text: t.id })),
    el("td", {}, el("a", { href: "#/effective/" + enc(t.id), text: "Effective view" })),
    el("td", {},
      el("a", { class: "button", href: "api/tenants/" + enc(t.id) + "/snapshot", download: "snapshot-" + t.id + ".json",
        "data-confirm": "1", onclick: (ev) => {
          if (ev.currentTarget.dataset.confirmed) return;
          ev.preventDefault();
          const a = ev.currentTarget;
          confirmThen("Download a snapshot of tenant " + t.id + "? It holds every object of the tenant.", () => {
            a.dataset.confirmed = "1"; a.click(); delete a.dataset.confirmed;
          });
        }, text: "Download snapshot" }), " ",
      el("button", { class: "danger", "data-reset": t.id, text: "Reset…", onclick: () =>
        confirmThen("Reset tenant " + t.id + "? Every object goes; the defaults come back.", async () => {
          const res = await fetch("api/tenants/" + enc(t.id) + "/reset", { method: "POST", credentials: "same-origin" });
          if (res.status !== 204) alert("Reset failed: status " + res.status);
          route();
        }) }))));
  page("Tenants", table(["Tenant", "", "Actions"], rows, { id: "tenants" }));
}

// The kinds of enrollment configuration, by OData type (the shape Intune's portal groups them in).
const KINDS = {
  "deviceEnrollmentLimitConfiguration": "Device limit restrictions",
  "deviceEnrollmentPlatformRestrictionsConfiguration": "Platform restrictions",
  "deviceEnrollmentPlatformRestrictionConfiguration": "Platform restrictions (per platform)",
  "deviceEnrollmentWindowsHelloForBusinessConfiguration": "Windows Hello for Business",
  "windows10EnrollmentCompletionPageConfiguration": "Enrollment status page",
  "windowsRestoreDeviceEnrollmentConfiguration": "Windows restore",
  "deviceComanagementAuthorityConfiguration": "Co-management authority",
  "deviceEnrollmentNotificationConfiguration": "Enrollment notifications",
};

function shortType(t) { return String(t || "").replace(/^#?microsoft\.graph\./, ""); }

function byPriority(a, b) {
  // The default (priority 0) is Intune's last resort: listed last.
  const pa = a.body.priority ?? 0, pb = b.body.priority ?? 0;
  return (pa === 0) - (pb === 0) || pa - pb || String(a.body.displayName).localeCompare(String(b.body.displayName));
}

function targetCell(t, groups, filters) {
  const kind = shortType(t["@odata.type"]).replace(/AssignmentTarget$/, "");
  const parts = [el("span", { class: "badge", text: kind })];
  if (t.groupId) {
    const g = groups.get(t.groupId);
    parts.push(" ", el("span", { text: g ? g.displayName : "(unknown group)" }), " ", el("code", { class: "muted", text: t.groupId }));
  }
  const ft = t.deviceAndAppManagementAssignmentFilterType;
  if (t.deviceAndAppManagementAssignmentFilterId && ft && ft !== "none") {
    const f = filters.get(t.deviceAndAppManagementAssignmentFilterId);
    parts.push(" ", el("span", { class: "badge " + ft, text: "filter " + ft }), " ", el("span", { text: f ? f.displayName : t.deviceAndAppManagementAssignmentFilterId }));
  }
  return el("li", {}, parts);
}

async function tenantPage(id) {
  const r = await api("tenants/" + enc(id) + "/snapshot");
  if (r.status !== 200) return page("Tenant " + id, problem("Snapshot", r));
  const ents = r.body.entities.map((e) => ({ ...e, body: e.body || {} }));
  const byKey = new Map(ents.map((e) => [e.key, e]));
  const kids = (e, nav) => ents.filter((c) => c.parent === e.key && c.nav === nav);
  const top = (nav) => ents.filter((e) => e.parent === 0 && e.nav === nav);
  const groups = new Map(top("groups").map((g) => [g.id, g.body]));
  const filters = new Map(top("assignmentFilters").map((f) => [f.id, f.body]));
  const assignments = (e) => el("ul", { class: "plain" }, kids(e, "assignments").map((a) => targetCell(a.body.target || {}, groups, filters)));

  const sections = [];
  const configs = top("deviceEnrollmentConfigurations");
  const kinds = new Map();
  for (const c of configs) {
    const k = shortType(c.type);
    if (!kinds.has(k)) kinds.set(k, []);
    kinds.get(k).push(c);
  }
  sections.push(el("h2", { text: "Enrollment configurations" }));
  for (const [k, list] of [...kinds.entries()].sort()) {
    list.sort(byPriority);
    sections.push(el("h3", { text: KINDS[k] || k }), table(["Priority", "Name", "Id", "Assignments"], list.map((c) => el("tr", { "data-config": c.id },
      el("td", { class: "num", text: c.body.priority ?? "" }),
      el("td", { text: c.body.displayName ?? "" }),
      el("td", { class: "mono muted", text: c.id }),
      el("td", {}, assignments(c)))), { class: "kind", "data-kind": k }));
  }
  const apple = top("appleUserInitiatedEnrollmentProfiles").sort(byPriority);
  sections.push(el("h2", { text: "Apple user-initiated enrollment profiles" }), table(["Priority", "Name", "Platform", "Assignments"], apple.map((p) => el("tr", {},
    el("td", { class: "num", text: p.body.priority ?? "" }), el("td", { text: p.body.displayName ?? "" }),
    el("td", { text: p.body.platform ?? "" }), el("td", {}, assignments(p)))), { id: "apple" }));
  const devices = top("windowsAutopilotDeviceIdentities");
  const links = r.body.links || [];
  const assigned = (p) => links.filter((l) => l.nav === "deploymentProfile" && l.target === p.key).map((l) => byKey.get(l.source)).filter(Boolean);
  const autopilot = top("windowsAutopilotDeploymentProfiles").sort((a, b) => String(a.body.displayName).localeCompare(String(b.body.displayName)));
  sections.push(el("h2", { text: "Autopilot deployment profiles" }), table(["Name", "Type", "Assignments", "Assigned devices"], autopilot.map((p) => el("tr", {},
    el("td", { text: p.body.displayName ?? "" }), el("td", { text: shortType(p.type) }), el("td", {}, assignments(p)),
    el("td", {}, el("ul", { class: "plain" }, assigned(p).map((d) => el("li", { class: "mono", text: (d.body.serialNumber || "(no serial)") + " · " + d.id })))))), { id: "autopilot" }));
  sections.push(el("p", { class: "muted", text: devices.length + " Autopilot device identities; " + groups.size + " groups; " + filters.size + " assignment filters." }));
  sections.push(el("h2", { text: "Groups" }), table(["Name", "Id"], [...groups.entries()].map(([gid, g]) => el("tr", {}, el("td", { text: g.displayName ?? "" }), el("td", { class: "mono muted", text: gid }))), { id: "groups" }));
  sections.push(el("h2", { text: "Assignment filters" }), table(["Name", "Platform", "Rule"], [...filters.values()].map((f) => el("tr", {}, el("td", { text: f.displayName ?? "" }), el("td", { text: f.platform ?? "" }), el("td", { class: "mono", text: f.rule ?? "" }))), { id: "filters" }));
  page("Tenant " + id, el("p", {}, el("a", { href: "#/effective/" + enc(id), text: "Effective view for a group →" })), ...sections);
}

// --- the effective view ------------------------------------------------------------------

async function effectivePage(id, query) {
  const snap = await api("tenants/" + enc(id) + "/snapshot");
  if (snap.status !== 200) return page("Effective assignments", problem("Snapshot", snap));
  const groups = snap.body.entities.filter((e) => e.parent === 0 && e.nav === "groups");
  const chosen = query.getAll("group");
  const select = el("select", { id: "effective-group", name: "group", multiple: true, size: Math.min(6, Math.max(2, groups.length)) },
    groups.map((g) => el("option", { value: g.id, selected: chosen.includes(g.id), text: (g.body.displayName || "") + " (" + g.id + ")" })));
  const form = el("form", { class: "bar", id: "effective-form", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const o of select.selectedOptions) q.append("group", o.value);
    location.hash = "#/effective/" + enc(id) + "?" + q.toString();
  } }, el("label", {}, "Groups (a member of all chosen)", select), el("button", { type: "submit", text: "Show" }));
  const out = el("div", { id: "effective" });
  page("Effective assignments · " + id, form, out);
  if (!chosen.length) { out.append(el("p", { class: "muted", text: "Choose a group." })); return; }
  const r = await api("tenants/" + enc(id) + "/effective?" + query.toString());
  if (r.status !== 200) { out.append(problem("Effective", r)); return; }
  const cand = (cs) => el("details", {}, el("summary", { text: cs.length + " candidates" }),
    table(["Priority", "Name", "Outcome", "Via", "Reason"], cs.map((c) => el("tr", {},
      el("td", { class: "num", text: c.priority ?? "" }), el("td", { text: c.displayName ?? "" }),
      el("td", {}, el("span", { class: "badge " + c.outcome, text: c.outcome })), el("td", { class: "mono", text: c.via ?? "" }), el("td", { text: c.reason ?? "" })))));
  const rows = (r.body.kinds || []).map((k) => el("tr", { "data-kind": k.kind },
    el("td", {}, el("strong", { text: k.title || k.kind }), el("div", { class: "muted", text: k.audience })),
    el("td", { class: "applies" }, k.applies ? [el("span", { text: k.applies.displayName }), el("div", { class: "muted mono", text: "priority " + k.applies.priority + " · " + k.applies.id })] : el("span", { class: "muted", text: "nothing" })),
    el("td", {}, el("ul", { class: "plain" }, (k.conditions || []).map((c) => el("li", {}, el("span", { class: "badge " + c.filterType, text: c.filterType }), " ", c.filterName || c.filterId, c.rule ? el("div", { class: "mono muted", text: c.rule }) : null)))),
    el("td", {}, el("ul", {}, (k.reasons || []).map((s) => el("li", { text: s }))), cand(k.candidates || []))));
  out.append(table(["Kind", "Applies", "Conditions", "Why"], rows, { id: "effective-kinds" }));
  const ap = r.body.autopilot;
  if (ap) {
    out.append(el("h2", { text: "Autopilot" }), el("div", { class: "card", id: "effective-autopilot" },
      el("p", {}, "Applies: ", el("strong", { text: ap.applies ? ap.applies.displayName : "nothing" })),
      el("ul", {}, (ap.reasons || []).map((s) => el("li", { text: s }))), cand(ap.candidates || [])));
  }
}

// --- the journal --------------------------------------------------------------------------

function statusBadge(s) { return el("span", { class: "badge s" + String(s)[0], text: s }); }

async function journalPage(query) {
  const settings = await api("journal/settings");
  const fields = ["tenant", "method", "path", "status"];
  const inputs = Object.fromEntries(fields.map((f) => [f, el("input", { name: f, id: "journal-" + f, value: query.get(f) || "", size: f === "path" ? 30 : 12 })]));
  const form = el("form", { class: "bar", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const f of fields) if (inputs[f].value) q.set(f, inputs[f].value);
    location.hash = "#/journal?" + q.toString();
  } }, fields.map((f) => el("label", {}, f, inputs[f])), el("button", { type: "submit", text: "Filter" }));
  const q = new URLSearchParams();
  for (const f of fields) if (query.get(f)) q.set(f, query.get(f));
  const r = await api("journal?" + q.toString());
  const state = el("span", { class: "muted", id: "journal-state" });
  const tbody = el("tbody", { id: "journal-rows" });
  const detail = el("div", { id: "journal-detail" });
  const note = settings.body && settings.body.enabled ? null : el("p", { class: "card", text: "The journal is off: start the server with --journal on (or PUT /_enrollgraph/journal/settings) to record requests." });
  page("Request journal", note, form, el("p", {}, state), el("table", {},
    el("thead", {}, el("tr", {}, ["#", "Time", "Tenant", "Method", "Path", "Status", "ms", ""].map((h) => el("th", { scope: "col", text: h })))), tbody), detail);
  if (r.status !== 200) { main.append(problem("Journal", r)); return; }
  let last = 0;
  const add = (e) => {
    last = Math.max(last, e.sequence);
    tbody.prepend(el("tr", { "data-sequence": e.sequence },
      el("td", { class: "num", text: e.sequence }), el("td", { class: "mono", text: e.time.replace("T", " ").replace(/\.\d+/, "") }),
      el("td", { class: "mono", text: e.tenant }), el("td", { text: e.method }),
      el("td", { class: "mono", text: e.path + (e.query ? "?" + e.query : "") }), el("td", {}, statusBadge(e.status)),
      el("td", { class: "num", text: e.durationMs }),
      el("td", {}, el("button", { text: "Details", "aria-label": "Details of request " + e.sequence, onclick: () => showEntry(e, detail) }))));
  };
  r.body.value.forEach(add);
  const live = new URLSearchParams(q);
  live.set("after", String(last));
  const source = new EventSource("api/live?" + live.toString());
  source.addEventListener("entry", (ev) => { const e = JSON.parse(ev.data); if (e.sequence > last) add(e); });
  source.addEventListener("open", () => { state.className = "live"; state.textContent = "Live"; });
  source.addEventListener("error", () => { state.className = "muted"; state.textContent = "Reconnecting…"; });
  stopLive = () => source.close();
}

function showEntry(e, detail) {
  const headers = Object.entries(e.headers || {}).map(([k, v]) => k + ": " + v).join("\n");
  detail.replaceChildren(el("div", { class: "card", id: "journal-entry" },
    el("h2", { text: e.method + " " + e.path }),
    el("p", { class: "muted", text: "status " + e.status + " · " + e.durationMs + " ms · request-id " + (e.requestId || "–") + " · client-request-id " + (e.clientRequestId || "–") }),
    el("h3", { text: "Request headers" + (e.headersTruncated ? " (cut)" : "") }), el("pre", { text: headers || "(none)" }),
    el("h3", { text: "Request body" + (e.bodyTruncated ? " (cut)" : "") }), el("pre", { text: e.body ?? "(none)" })));
  detail.scrollIntoView({ block: "nearest" });
}

// --- faults and throttling ----------------------------------------------------------------

async function controlsPage() {
  const [faults, throttling, clock, tenants] = await Promise.all([api("faults"), api("throttling"), api("clock"), api("tenants")]);
  const kids = [];
  kids.push(el("h2", { text: "Fault rules" }));
  if (faults.status === 200) {
    kids.push(table(["Id", "Rule"], faults.body.value.map((f) => el("tr", {}, el("td", { class: "mono", text: f.id ?? "" }),
      el("td", {}, el("pre", { text: JSON.stringify(f, null, 2) })))), { id: "faults" }));
  } else kids.push(problem("Faults", faults));
  kids.push(el("h2", { text: "Throttling" }));
  if (throttling.status === 200) kids.push(el("pre", { id: "throttling", text: "Default: " + JSON.stringify(throttling.body) }));
  if (tenants.status === 200) {
    const per = await Promise.all(tenants.body.value.map((t) => api("tenants/" + enc(t.id) + "/throttling")));
    kids.push(table(["Tenant", "Own", "Effective"], per.filter((p) => p.status === 200).map((p) => el("tr", {},
      el("td", { class: "mono", text: p.body.tenant }), el("td", { class: "mono", text: JSON.stringify(p.body.own) }),
      el("td", { class: "mono", text: JSON.stringify(p.body.effective) }))), { id: "throttling-tenants" }));
  }
  if (clock.status === 200) kids.push(el("p", { class: "muted", text: (clock.body.manual ? "Manual clock at " : "Real clock at ") + clock.body.nowMilliseconds + " ms" }));
  page("Faults & throttling", ...kids);
}

// --- routing ------------------------------------------------------------------------------

async function route() {
  if (stopLive) { stopLive(); stopLive = null; }
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = hash.split("?");
  const query = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const nav = parts[0] === "journal" ? "journal" : parts[0] === "controls" ? "controls" : "tenants";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    if (parts[0] === "tenant" && parts[1]) await tenantPage(parts[1]);
    else if (parts[0] === "effective" && parts[1]) await effectivePage(parts[1], query);
    else if (parts[0] === "journal") await journalPage(query);
    else if (parts[0] === "controls") await controlsPage();
    else await tenantsPage();
    document.body.dataset.ready = hash;
  } catch (e) {
    if (String(e.message) !== "signed out") page("Something went wrong", el("p", { class: "error", text: String(e) }));
  }
}

window.addEventListener("hashchange", route);
route();
