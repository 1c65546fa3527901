//! Refused requests: exact status, `error.code` and `innerError` (graph-behaviours.md
//! "Responses"; rulings.md 3, 8, 12, 13), no state change, never a 500; and the
//! leniencies real clients need (clients.md §0; rulings.md 12).
#![allow(clippy::unwrap_used)]

mod common;

use common::{BETA, GRAPH_JSON, Server, TENANT, V1, Value, expect_error, get_ok, is_guid, json, send_raw};

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";

/// Everything a refused request could have touched.
fn snapshot(s: &Server) -> Vec<Value> {
    let mut out = vec![get_ok(s, CFG)];
    for v in get_ok(s, CFG)["value"].as_array().unwrap() {
        out.push(get_ok(s, &format!("{CFG}/{}/assignments", v["id"].as_str().unwrap())));
    }
    for c in [
        "appleUserInitiatedEnrollmentProfiles",
        "windowsAutopilotDeploymentProfiles",
        "windowsAutopilotDeviceIdentities",
    ] {
        out.push(get_ok(s, &format!("{BETA}/{c}")));
    }
    out
}

fn limit_body() -> Value {
    json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "L", "limit": 3})
}

#[test]
fn invalid_bodies_are_400_and_change_nothing() {
    let s = Server::start();
    let cid = s.create(CFG, &limit_body())["id"].as_str().unwrap().to_owned();
    let before = snapshot(&s);
    let cases: Vec<(String, &str, Value)> = vec![
        // unknown property
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": 1, "colour": "red"}),
        ),
        (format!("{CFG}/{cid}"), "PATCH", json!({"colour": "red"})),
        // a property of another derived type
        (format!("{CFG}/{cid}"), "PATCH", json!({"pinMinimumLength": 6})),
        // wrong JSON types
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": "five"}),
        ),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": 2.5}),
        ),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": 7}),
        ),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "roleScopeTagIds": "0"}),
        ),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration", "iosRestriction": true}),
        ),
        (format!("{CFG}/{cid}"), "PATCH", json!({"limit": true})),
        (format!("{CFG}/{cid}"), "PATCH", json!({"limit": 3_000_000_000_i64})),
        // bad enum values
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.windowsRestoreDeviceEnrollmentConfiguration", "state": "maybe"}),
        ),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration", "pinLowercaseCharactersUsage": "Allowed"}),
        ),
        (
            format!("{CFG}/{cid}/assignments"),
            "POST",
            json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}, "source": "everywhere"}),
        ),
        // @odata.type: unknown, not derived, abstract, absent on an abstract collection
        (CFG.into(), "POST", json!({"@odata.type": "#microsoft.graph.noSuchConfiguration", "displayName": "x"})),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.windowsAutopilotDeviceIdentity", "displayName": "x"}),
        ),
        (CFG.into(), "POST", json!({"@odata.type": "#microsoft.graph.enrollmentConfigurationAssignment"})),
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentConfiguration", "displayName": "x"}),
        ),
        (CFG.into(), "POST", json!({"displayName": "no type"})),
        (CFG.into(), "POST", json!({"@odata.type": 5, "displayName": "x"})),
        (
            format!("{BETA}/windowsAutopilotDeploymentProfiles"),
            "POST",
            json!({"@odata.type": "#microsoft.graph.windowsAutopilotDeploymentProfile", "displayName": "x"}),
        ),
        (format!("{BETA}/windowsAutopilotDeploymentProfiles"), "POST", json!({"displayName": "x"})),
        // PATCH to a sibling type
        (
            format!("{CFG}/{cid}"),
            "PATCH",
            json!({"@odata.type": "#microsoft.graph.windowsRestoreDeviceEnrollmentConfiguration", "state": "enabled"}),
        ),
        // non-nullable set to null
        (
            CFG.into(),
            "POST",
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "limit": null}),
        ),
        (format!("{CFG}/{cid}"), "PATCH", json!({"limit": null})),
        (format!("{BETA}/appleUserInitiatedEnrollmentProfiles"), "POST", json!({"displayName": "x", "platform": null})),
        (
            format!("{CFG}/{cid}/assignments"),
            "POST",
            json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}, "source": null}),
        ),
        // not an object
        (CFG.into(), "POST", json!([limit_body()])),
        (CFG.into(), "POST", json!("text")),
        (format!("{CFG}/{cid}"), "PATCH", json!(42)),
        // navigation set inline on a PATCH
        (format!("{CFG}/{cid}"), "PATCH", json!({"assignments": []})),
    ];
    for (path, method, body) in cases {
        let r = s.send(method, &path, &body);
        let status = r.status();
        assert_eq!(status, 400, "{method} {path} {body} → {status}: {}", r.text().unwrap());
    }
    // One of each again, for the whole error shape.
    expect_error(
        s.post(CFG, &json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "colour": "red"})),
        400,
        "BadRequest",
    );
    expect_error(s.patch(&format!("{CFG}/{cid}"), &json!({"limit": null})), 400, "BadRequest");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn malformed_json_is_400() {
    let s = Server::start();
    let before = snapshot(&s);
    for body in [&b"{"[..], b"{\"limit\": }", b"not json", b"{\"a\":1}}", b"\xff\xfe", b"{\"displayName\": \"x\",}"] {
        let r = send_raw(&s, "POST", CFG, Some("application/json"), body.to_vec());
        expect_error(r, 400, "BadRequest");
    }
    let r = send_raw(&s, "PATCH", &format!("{CFG}/{TENANT}_DefaultLimit"), Some("application/json"), b"{".to_vec());
    expect_error(r, 400, "BadRequest");
    assert_eq!(snapshot(&s), before);
}

/// rulings.md 3: server-owned properties in a create are accepted and ignored.
#[test]
fn read_only_properties_in_a_create_are_accepted_and_ignored() {
    let s = Server::start();
    let mut body = limit_body();
    body.as_object_mut().unwrap().extend(
        json!({"@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity",
            "id": "chosen_Limit", "createdDateTime": "2001-01-01T00:00:00Z", "lastModifiedDateTime": "2001-01-01T00:00:00Z",
            "version": 42, "deviceEnrollmentConfigurationType": "windowsRestore", "priority": 77})
        .as_object()
        .unwrap()
        .clone(),
    );
    let r = s.post(CFG, &body);
    assert_eq!(r.status(), 201);
    let c: Value = r.json().unwrap();
    assert_ne!(c["id"], "chosen_Limit");
    assert_ne!(c["createdDateTime"], "2001-01-01T00:00:00Z");
    assert_ne!(c["lastModifiedDateTime"], "2001-01-01T00:00:00Z");
    assert_eq!(c["version"], 0);
    assert_eq!(c["deviceEnrollmentConfigurationType"], "limit");
    assert_eq!(c["priority"], 1);
    expect_error(s.get(&format!("{CFG}/chosen_Limit")), 404, "ResourceNotFound");
    // Devices: the server-owned status properties too (schema/behaviour.json cites rulings.md 3).
    let d = s.create(
        &format!("{BETA}/windowsAutopilotDeviceIdentities"),
        &json!({"id": "mine", "serialNumber": "S", "lastContactedDateTime": "2001-01-01T00:00:00Z"}),
    );
    assert_ne!(d["id"], "mine");
    // Assignments: a client id is ignored too.
    let a = s.create(
        &format!("{CFG}/{TENANT}_DefaultLimit/assignments"),
        &json!({"id": "mine", "target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}),
    );
    assert_ne!(a["id"], "mine");
}

/// IntuneCD PATCHes back what it read (rulings.md 3): the whole GET body is a valid PATCH.
#[test]
fn a_get_body_patched_back_is_accepted() {
    let s = Server::start();
    let c = s.create(CFG, &limit_body());
    let id = c["id"].as_str().unwrap();
    let mut back = get_ok(&s, &format!("{CFG}/{id}"));
    back["displayName"] = json!("round trip");
    back["id"] = json!("something-else");
    back["priority"] = json!(9);
    let r = s.patch(&format!("{CFG}/{id}"), &back);
    assert_eq!(r.status(), 200);
    let got: Value = r.json().unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(got["displayName"], "round trip");
    assert_eq!(got["priority"], 1);
    assert_eq!(got["createdDateTime"], c["createdDateTime"]);
    // The same for a default (IntuneCD updates defaults too) and for an assignment.
    let d = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit"));
    let r = s.patch(&format!("{CFG}/{TENANT}_DefaultLimit"), &d);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["priority"], 0);
    let a = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit/assignments/{TENANT}_DefaultLimit"));
    assert_eq!(s.patch(&format!("{CFG}/{TENANT}_DefaultLimit/assignments/{TENANT}_DefaultLimit"), &a).status(), 200);
}

#[test]
fn unknown_segments_are_400_resource_not_found_for_the_segment() {
    let s = Server::start();
    for (path, segment) in [
        ("/beta/foo".to_owned(), "foo"),
        (format!("{BETA}/foo"), "foo"),
        (format!("{BETA}/deviceEnrollmentConfigurations/{TENANT}_DefaultLimit/bogus"), "bogus"),
        (format!("{V1}/appleUserInitiatedEnrollmentProfiles"), "appleUserInitiatedEnrollmentProfiles"),
        (format!("{V1}/windowsAutopilotDeploymentProfiles"), "windowsAutopilotDeploymentProfiles"),
    ] {
        let body = expect_error(s.get(&path), 400, "BadRequest");
        assert_eq!(
            body["error"]["message"],
            format!("Resource not found for the segment '{segment}'.").as_str(),
            "{path}"
        );
    }
    let body = expect_error(s.post(&format!("{BETA}/foo"), &json!({})), 400, "BadRequest");
    assert_eq!(body["error"]["message"], "Resource not found for the segment 'foo'.");
}

#[test]
fn unknown_ids_and_missing_parents_are_404() {
    let s = Server::start();
    let before = snapshot(&s);
    let missing = "00000000-0000-4000-8000-000000000000_Limit";
    for path in [
        format!("{CFG}/{missing}"),
        format!("{CFG}('{missing}')"),
        format!("{CFG}/{missing}/assignments"),
        format!("{CFG}('{missing}')/assignments"),
        format!("{CFG}/{TENANT}_DefaultLimit/assignments/nope"),
        format!("{CFG}/{missing}/assignments/{TENANT}_DefaultLimit"),
        // An assignment of one configuration is not reachable under another.
        format!("{CFG}/{TENANT}_DefaultPlatformRestrictions/assignments/{TENANT}_DefaultLimit"),
        format!("{BETA}/appleUserInitiatedEnrollmentProfiles/nope/assignments"),
        format!("{BETA}/windowsAutopilotDeploymentProfiles/nope/assignments"),
        format!("{BETA}/windowsAutopilotDeviceIdentities/nope/deploymentProfile"),
        format!("{V1}/deviceEnrollmentConfigurations/{missing}"),
    ] {
        expect_error(s.get(&path), 404, "ResourceNotFound");
    }
    expect_error(
        s.post(
            &format!("{CFG}/{missing}/assignments"),
            &json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
        ),
        404,
        "ResourceNotFound",
    );
    // A bad body under a missing parent: the missing parent is what Graph reports (a create
    // validates before any read, so this takes the slow path on purpose).
    expect_error(s.post(&format!("{CFG}/{missing}/assignments"), &json!({"target": 7})), 404, "ResourceNotFound");
    // The same bad body under a parent that exists is the body's error.
    expect_error(s.post(&format!("{CFG}/{TENANT}_DefaultLimit/assignments"), &json!({"target": 7})), 400, "BadRequest");
    // A valid body under a missing parent of another resource: the transaction finds it gone.
    expect_error(
        s.post(
            &format!("{BETA}/appleUserInitiatedEnrollmentProfiles/nope/assignments"),
            &json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
        ),
        404,
        "ResourceNotFound",
    );
    expect_error(s.patch(&format!("{CFG}/{missing}"), &json!({"displayName": "x"})), 404, "ResourceNotFound");
    expect_error(s.delete(&format!("{CFG}/{missing}")), 404, "ResourceNotFound");
    expect_error(s.delete(&format!("{CFG}/{TENANT}_DefaultLimit/assignments/nope")), 404, "ResourceNotFound");
    expect_error(s.post(&format!("{CFG}/{missing}/setPriority"), &json!({"priority": 1})), 404, "ResourceNotFound");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn a_deleted_parent_takes_its_assignments_with_it() {
    let s = Server::start();
    let cid = s.create(CFG, &limit_body())["id"].as_str().unwrap().to_owned();
    let a = s.create(
        &format!("{CFG}/{cid}/assignments"),
        &json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
    );
    assert_eq!(s.delete(&format!("{CFG}/{cid}")).status(), 204);
    expect_error(s.get(&format!("{CFG}/{cid}/assignments")), 404, "ResourceNotFound");
    expect_error(s.get(&format!("{CFG}/{cid}/assignments/{}", a["id"].as_str().unwrap())), 404, "ResourceNotFound");
    // A deleted profile: its devices have no profile any more.
    let p = s.create(
        &format!("{BETA}/windowsAutopilotDeploymentProfiles"),
        &json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "P"}),
    );
    let pid = p["id"].as_str().unwrap();
    let d = s.create(
        &format!("{BETA}/windowsAutopilotDeviceIdentities"),
        &json!({"serialNumber": "S", "deploymentProfile@odata.bind": format!("{BETA}/windowsAutopilotDeploymentProfiles('{pid}')")}),
    );
    let did = d["id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("{BETA}/windowsAutopilotDeploymentProfiles/{pid}")).status(), 204);
    expect_error(
        s.get(&format!("{BETA}/windowsAutopilotDeviceIdentities/{did}/deploymentProfile")),
        404,
        "ResourceNotFound",
    );
    expect_error(
        s.get(&format!("{BETA}/windowsAutopilotDeviceIdentities/{did}/deploymentProfile/assignments")),
        404,
        "ResourceNotFound",
    );
    assert_eq!(get_ok(&s, &format!("{BETA}/windowsAutopilotDeviceIdentities/{did}"))["id"], did);
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let s = Server::start();
    let before = snapshot(&s);
    let entity = format!("{CFG}/{TENANT}_DefaultLimit");
    let cases = [
        ("PUT", entity.clone(), vec!["DELETE", "GET", "PATCH"]),
        ("POST", entity.clone(), vec!["DELETE", "GET", "PATCH"]),
        ("DELETE", CFG.to_owned(), vec!["GET", "POST"]),
        ("PATCH", CFG.to_owned(), vec!["GET", "POST"]),
        ("PUT", CFG.to_owned(), vec!["GET", "POST"]),
        ("DELETE", format!("{entity}/assignments"), vec!["GET", "POST"]),
        ("PUT", format!("{entity}/assignments/{TENANT}_DefaultLimit"), vec!["DELETE", "GET", "PATCH"]),
        ("PATCH", format!("{entity}/setPriority"), vec!["POST"]),
        ("DELETE", format!("{entity}/assign"), vec!["POST"]),
    ];
    for (method, path, allow) in cases {
        let r = s.send(method, &path, &json!({}));
        let header = r.headers().get("allow").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        expect_error(r, 405, "MethodNotAllowed");
        let mut got: Vec<&str> = header.split(',').map(str::trim).collect();
        got.sort_unstable();
        assert_eq!(got, allow, "{method} {path}");
    }
    // Also for methods the server has no special handling for, and without a body.
    let r = s.raw().request("OPTIONS".parse().unwrap(), s.url(&entity)).send().unwrap();
    assert_ne!(r.status().as_u16() / 100, 5);
    let r = s.raw().put(s.url(&entity)).send().unwrap();
    assert!(r.headers().contains_key("allow"));
    expect_error(r, 405, "MethodNotAllowed");
    assert_eq!(snapshot(&s), before);
}

/// rulings.md 13: bodies must be JSON; curl's default form type included, anything else is 415.
#[test]
fn non_json_content_types_are_415() {
    let s = Server::start();
    let before = snapshot(&s);
    let body = limit_body().to_string().into_bytes();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let r = send_raw(&s, "POST", CFG, ct, body.clone());
        expect_error(r, 415, "UnsupportedMediaType");
        let r = send_raw(&s, "PATCH", &format!("{CFG}/{TENANT}_DefaultLimit"), ct, br#"{"displayName":"x"}"#.to_vec());
        expect_error(r, 415, "UnsupportedMediaType");
        let r = send_raw(
            &s,
            "POST",
            &format!("{CFG}/{TENANT}_DefaultLimit/assign"),
            ct,
            br#"{"enrollmentConfigurationAssignments":[]}"#.to_vec(),
        );
        expect_error(r, 415, "UnsupportedMediaType");
    }
    assert_eq!(snapshot(&s), before);
    // application/json with parameters, in any case, is JSON.
    for ct in ["application/json; charset=utf-8", "Application/JSON", "application/json;odata.metadata=minimal"] {
        assert_eq!(send_raw(&s, "POST", CFG, Some(ct), body.clone()).status(), 201, "{ct}");
    }
}

/// A JSON body of exactly `len` bytes: a limit configuration with long role scope tags and a
/// description, each string at most about 200 KiB (a property holds at most 256 KiB).
fn body_of(len: usize) -> Vec<u8> {
    let tag = format!("\"{}\"", "t".repeat(200 * 1024));
    let build = |tags: usize, description: usize| {
        format!(
            r##"{{"@odata.type":"#microsoft.graph.deviceEnrollmentLimitConfiguration","limit":1,"roleScopeTagIds":[{}],"description":"{}"}}"##,
            vec![tag.as_str(); tags].join(","),
            "a".repeat(description)
        )
    };
    let mut tags = 0;
    while build(tags + 1, 0).len() < len {
        tags += 1;
    }
    let body = build(tags, len - build(tags, 0).len());
    assert_eq!(body.len(), len);
    body.into_bytes()
}

const LIMIT: usize = 4 * 1024 * 1024;

/// Sends `head` and then `body` on a raw connection while another thread reads the answer,
/// so the response is seen even when the server closes before reading the whole body.
fn raw_exchange(s: &Server, head: String, body: Vec<u8>) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let read = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0_u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
        buf
    });
    // Writes may fail once the server has answered and closed: that is allowed.
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
    let buf = read.join().unwrap();
    let end = find(&buf, b"\r\n\r\n").unwrap_or_else(|| panic!("no response: {}", String::from_utf8_lossy(&buf)));
    let status: u16 = String::from_utf8_lossy(&buf[..end]).split(' ').nth(1).unwrap().parse().unwrap();
    let json: Value = serde_json::from_slice(&buf[end + 4..]).unwrap_or(Value::Null);
    (status, json)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// rulings.md 12 and 8: body limit 4 MiB, above it 413 `RequestEntityTooLarge`.
#[test]
fn bodies_over_4_mib_are_413() {
    let s = Server::start();
    let before = snapshot(&s);
    let host = s.base.trim_start_matches("http://").to_owned();
    let token = &s.token;
    // Declared by Content-Length.
    let body = body_of(LIMIT + 1);
    let head = format!(
        "POST {CFG} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, json) = raw_exchange(&s, head, body);
    assert_eq!(status, 413);
    assert_eq!(common::error_code(&json), "RequestEntityTooLarge", "{json}");
    // Chunked, without Content-Length.
    let mut chunked = Vec::new();
    for piece in body_of(LIMIT + 64 * 1024).chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST {CFG} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (status, json) = raw_exchange(&s, head, chunked);
    assert_eq!(status, 413);
    assert_eq!(common::error_code(&json), "RequestEntityTooLarge", "{json}");
    // The whole error shape, for a body the server has read.
    let small_declared = format!(
        "POST {CFG} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        LIMIT + 1
    );
    let (status, json) = raw_exchange(&s, small_declared, Vec::new());
    assert_eq!(status, 413);
    assert!(json["error"]["innerError"]["request-id"].is_string(), "{json}");
    assert_eq!(snapshot(&s), before);
    // Exactly 4 MiB is within the limit.
    let r = send_raw(&s, "POST", CFG, Some("application/json"), body_of(LIMIT));
    assert_eq!(r.status(), 201);
}

/// What an ordinary HTTP client sees when it sends more than 4 MiB: it must get the 413
/// Graph error (rulings.md 8, 12), not a broken connection. The server answers before
/// reading the body and closes, so the client's write can fail with EPIPE/ECONNRESET
/// before it reads the answer (seen about one time in ten with reqwest).
#[test]
fn an_ordinary_client_sending_over_4_mib_sees_413() {
    let s = Server::start();
    for _ in 0..20 {
        let r = s.raw().post(s.url(CFG)).header("content-type", "application/json").body(body_of(LIMIT + 1)).send();
        match r {
            Ok(r) => {
                expect_error(r, 413, "RequestEntityTooLarge");
            }
            Err(e) => panic!("the client saw a transport error instead of 413: {e:?}"),
        }
    }
}

#[test]
fn unknown_versions_and_paths_without_a_version_are_the_gateways_404() {
    // graph-behaviours.md "Shapes": `/deviceManagement/...` is 404 ResourceNotFound
    // "Invalid version: devicemanagement" (the gateway answers, lower-casing the segment).
    let s = Server::start();
    for (path, segment) in [
        ("/deviceManagement/deviceEnrollmentConfigurations", "devicemanagement"),
        ("/DeviceManagement", "devicemanagement"),
        ("/v2.0/deviceManagement/deviceEnrollmentConfigurations", "v2.0"),
        ("/v1/deviceManagement", "v1"),
        ("/Alpha/deviceManagement/deviceEnrollmentConfigurations", "alpha"),
    ] {
        let body = expect_error(s.get(path), 404, "ResourceNotFound");
        assert_eq!(body["error"]["message"], format!("Invalid version: {segment}"), "{path}");
    }
    let body = expect_error(
        s.post("/deviceManagement/deviceEnrollmentConfigurations", &limit_body()),
        404,
        "ResourceNotFound",
    );
    assert_eq!(body["error"]["message"], "Invalid version: devicemanagement");
}

#[test]
fn client_request_id_is_echoed_in_header_and_error() {
    let s = Server::start();
    let crid = "c0ffee00-1111-4222-8333-444455556666";
    let r = s.raw().get(s.url(&format!("{CFG}/nope"))).header("client-request-id", crid).send().unwrap();
    assert_eq!(r.headers()["client-request-id"], crid);
    let body = expect_error(r, 404, "ResourceNotFound");
    assert_eq!(body["error"]["innerError"]["client-request-id"], crid);
    // Intune's JSON-in-message: the Activity ID is the client-request-id, the Operation ID
    // the all-zero GUID (graph-behaviours.md "Shapes").
    let inner: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    let message = inner["Message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            " - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {crid} - Url: "
        )),
        "{message}"
    );
    // Without a client-request-id, the Activity ID is the one the response echoes.
    let r = s.get(&format!("{CFG}/nope"));
    let echoed = r.headers()["client-request-id"].to_str().unwrap().to_owned();
    let body = expect_error(r, 404, "ResourceNotFound");
    let inner: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    assert!(inner["Message"].as_str().unwrap().contains(&format!("Activity ID: {echoed} - ")), "{inner}");
    // On success too.
    let r = s.raw().get(s.url(CFG)).header("client-request-id", crid).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["client-request-id"], crid);
}

#[test]
fn graph_headers_on_every_response() {
    let s = Server::start();
    let responses = [
        s.get(CFG),
        s.get(&format!("{CFG}/nope")),
        s.post(CFG, &limit_body()),
        s.delete(CFG),
        send_raw(&s, "POST", CFG, Some("text/plain"), b"x".to_vec()),
        s.get("/v2.0/x"),
    ];
    for r in responses {
        let h = r.headers();
        assert!(is_guid(h["request-id"].to_str().unwrap()), "{:?}", r.status());
        assert!(is_guid(h["client-request-id"].to_str().unwrap()));
        assert_eq!(h["odata-version"], "4.0");
        assert!(h.contains_key("x-ms-ags-diagnostic"));
        assert!(h.contains_key("strict-transport-security"));
        assert_eq!(h["content-type"], GRAPH_JSON);
    }
}

// --- leniencies (clients.md §0) ---------------------------------------------------------

#[test]
fn double_slashes_and_trailing_slashes_are_accepted() {
    let s = Server::start();
    let plain = get_ok(&s, CFG);
    for path in [
        "/beta//deviceManagement/deviceEnrollmentConfigurations".to_owned(),
        "/beta/deviceManagement//deviceEnrollmentConfigurations".to_owned(),
        format!("{CFG}/"),
        "/beta//deviceManagement//deviceEnrollmentConfigurations/".to_owned(),
    ] {
        assert_eq!(get_ok(&s, &path), plain, "{path}");
    }
    let one = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit"));
    assert_eq!(get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit/")), one);
    assert_eq!(
        get_ok(&s, &format!("/beta//deviceManagement/deviceEnrollmentConfigurations//{TENANT}_DefaultLimit")),
        one
    );
    // Writes too (the Python SDK's stock base URL sends beta//deviceManagement).
    let c = s.create("/beta//deviceManagement/deviceEnrollmentConfigurations/", &limit_body());
    let id = c["id"].as_str().unwrap();
    let r = s.post(
        &format!("/beta//deviceManagement/deviceEnrollmentConfigurations/{id}/setPriority/"),
        &json!({"priority": 1}),
    );
    assert_eq!(r.status(), 200);
    let a = s.create(
        &format!("{CFG}/{id}/assignments/"),
        &json!({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
    );
    // The canonical URL has no doubled or trailing slash.
    assert_eq!(
        a["@odata.context"],
        format!(
            "{}/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('{id}')/assignments/$entity",
            s.base
        )
        .as_str()
    );
}

#[test]
fn get_with_json_content_type_and_no_body_is_accepted() {
    let s = Server::start();
    let r = s.raw().get(s.url(CFG)).header("content-type", "application/json").send().unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .raw()
        .get(s.url(&format!("{CFG}/{TENANT}_DefaultLimit/assignments")))
        .header("content-type", "application/json")
        .header("accept", "*/*")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // DELETE with the same header and no body, as IntuneCD sends it.
    let c = s.create(CFG, &limit_body());
    let r = s
        .raw()
        .delete(s.url(&format!("{CFG}/{}", c["id"].as_str().unwrap())))
        .header("content-type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[test]
fn a_missing_client_request_id_gets_a_new_guid() {
    let s = Server::start();
    let a = s.get(CFG);
    let b = s.get(CFG);
    let ca = a.headers()["client-request-id"].to_str().unwrap().to_owned();
    let cb = b.headers()["client-request-id"].to_str().unwrap().to_owned();
    assert!(is_guid(&ca) && is_guid(&cb));
    assert_ne!(ca, cb);
    assert_ne!(a.headers()["request-id"], b.headers()["request-id"]);
}

#[test]
fn navigation_and_singleton_segments_match_in_any_case() {
    let s = Server::start();
    let plain = get_ok(&s, &format!("{CFG}/{TENANT}_DefaultLimit/assignments"));
    let mut other =
        get_ok(&s, &format!("/beta/devicemanagement/DeviceEnrollmentConfigurations/{TENANT}_DefaultLimit/Assignments"));
    // The context is canonical whatever the request's spelling.
    assert_eq!(other["@odata.context"], plain["@odata.context"]);
    other.as_object_mut().unwrap().remove("@odata.context");
    let mut plain = plain;
    plain.as_object_mut().unwrap().remove("@odata.context");
    assert_eq!(other, plain);
}

/// Issue 19: a path of the full Graph schema that enrollgraph does not serve answers 501
/// NotImplemented, naming it and pointing at the README; a name Graph does not have stays
/// 400 (rulings.md 8). The list is schema/graph-paths.txt (schema/tools/graph-paths.py).
#[test]
fn real_but_unserved_paths_are_501_and_made_up_ones_400() {
    let s = Server::start();
    let group = s.create(
        "/beta/groups",
        &json!({"displayName": "G", "mailEnabled": false, "securityEnabled": true, "mailNickname": "g"}),
    );
    let gid = group["id"].as_str().unwrap();
    let unserved = [
        "/beta/deviceManagement/exchangeConnectors".to_owned(),
        "/beta/deviceManagement/exchangeConnectors/abc".to_owned(),
        "/beta/deviceManagement/exchangeConnectors('abc')".to_owned(),
        "/beta/deviceManagement/detectedApps('x')/managedDevices".to_owned(),
        "/beta/deviceAppManagement".to_owned(),
        "/beta/deviceAppManagement/iosManagedAppProtections".to_owned(),
        "/beta/identity/conditionalAccess".to_owned(),
        format!("/beta/groups/{gid}/members"),
        format!("/v1.0/groups('{gid}')/owners"),
        "/v1.0/deviceManagement/managedDevices".to_owned(),
        "/v1.0/deviceManagement/MANAGEDDEVICES/abc".to_owned(),
        "/v1.0/deviceAppManagement/mobileApps".to_owned(),
    ];
    for path in &unserved {
        let body = expect_error(s.get(path), 501, "NotImplemented");
        let message = body["error"]["message"].as_str().unwrap();
        let named = path.split_once('/').unwrap().1.split_once('/').unwrap().1;
        assert!(message.contains(&format!("'{named}'")), "{path}: {message}");
        assert!(message.contains("README") && message.contains("What is served"), "{message}");
    }
    // Any method: a write to it is not served either.
    expect_error(s.post("/beta/deviceManagement/exchangeConnectors", &json!({})), 501, "NotImplemented");
    let made_up = [
        "/beta/deviceManagement/exchangeConnectorz",
        "/beta/deviceManagement/exchangeConnectors/abc/notAThing",
        "/beta/deviceAppManagement/nothingHere",
        "/beta/identity/nope",
        "/beta/nothing",
        "/v1.0/deviceManagement/assignmentFilters", // beta only
        "/v1.0/deviceManagement/managedDevicez",
    ];
    for path in made_up {
        let body = expect_error(s.get(path), 400, "BadRequest");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("Resource not found for the segment"), "{path}");
    }
    // A served path under a real Graph name still resolves its ids first.
    expect_error(s.get("/beta/groups/00000000-0000-0000-0000-000000000000/members"), 404, "ResourceNotFound");
}
