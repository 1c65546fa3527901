#!/usr/bin/env python3
"""Instruction counts of enrollgraph's hot paths under callgrind (docs/performance.md).

    python3 crates/bench/callgrind.py [BIN] [OUTDIR] [PHASES]
      BIN     the server (default target/release/enrollgraph)
      OUTDIR  where callgrind writes (default /tmp/enrollgraph-callgrind)
      PHASES  comma-separated, of w2 (1,000 point reads), w3 (200 lists of 100) and
              w1 (500 creates, one client); default w2,w3,w1
    VALGRIND_EXTRA="--cache-sim=yes --branch-sim=yes" adds cache and branch simulation.

Starts `serve --auth off` on a fresh data dir under valgrind with instrumentation off,
seeds a configuration with 100 assignments over HTTP (loopback), and for each phase sends
20 unmeasured requests, then turns instrumentation on, zeroes the counters, sends the
measured requests and dumps: OUTDIR/cg.<pid>.<n>, one file per phase in order. Divide a
file's totals by the phase's count for per-request figures; read them with
`callgrind_annotate --inclusive=yes --tree=calling FILE`. Only the server's threads are
counted, never the client's. It stops by itself (timeouts on every step).
"""
import http.client, json, os, re, subprocess, sys, tempfile, threading, uuid

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/enrollgraph"
OUT = sys.argv[2] if len(sys.argv) > 2 else "/tmp/enrollgraph-callgrind"
PHASES = sys.argv[3].split(",") if len(sys.argv) > 3 else ["w2", "w3", "w1"]
COUNTS = {"w2": 1000, "w3": 200, "w1": 500}
CONF = "/beta/deviceManagement/deviceEnrollmentConfigurations"

os.makedirs(OUT, exist_ok=True)
data = tempfile.mkdtemp(prefix="enrollgraph-callgrind-")
env = dict(os.environ, ENROLLGRAPH_LOG="warn")
cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", *os.environ.get("VALGRIND_EXTRA", "").split(),
       f"--callgrind-out-file={OUT}/cg.%p", BIN, "serve", "--port", "0", "--data-dir", data, "--auth", "off"]
server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(f"{OUT}/server.log", "w"), env=env, text=True)
banner = server.stdout.readline()
found = re.search(r"http://([\d.]+):(\d+)", banner)
if not found:
    server.kill()
    sys.exit(f"no address in the server's first line: {banner!r}")
# Drain stdout so the server never blocks on it.
threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
conn = http.client.HTTPConnection("127.0.0.1", int(found.group(2)), timeout=60)


def send(method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def config(name):
    status, body = send("POST", CONF, {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
                                       "displayName": name, "limit": 5})
    assert status == 201, (status, body)
    return json.loads(body)["id"]


def assignment(cfg):
    target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": str(uuid.uuid4())}
    status, body = send("POST", f"{CONF}/{cfg}/assignments", {"target": target})
    assert status == 201, (status, body)
    return json.loads(body)["id"]


def control(*args):
    subprocess.run(["callgrind_control", *args, str(server.pid)], check=True, stdout=subprocess.DEVNULL, timeout=120)


try:
    read_cfg, write_cfg = config("read"), config("write")
    ids = [assignment(read_cfg) for _ in range(100)]

    def w2(i):
        assert send("GET", f"{CONF}/{read_cfg}/assignments/{ids[i % 100]}")[0] == 200

    def w3(i):
        assert send("GET", f"{CONF}/{read_cfg}/assignments")[0] == 200

    def w1(i):
        assignment(write_cfg)

    for phase in PHASES:
        step = {"w2": w2, "w3": w3, "w1": w1}[phase]
        for i in range(20):
            step(i)
        control("-i", "on")
        control("-z")
        for i in range(COUNTS[phase]):
            step(i)
        control("-d", phase)
        control("-i", "off")
        print(f"{phase}: {COUNTS[phase]} requests", flush=True)
finally:
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
