#!/usr/bin/env python3
"""The slow-client flood, measured: start the demo binary with at most 256 open files,
open N sockets that each send half a request head and then nothing, then time how long
a fresh client waits for GET /healthz (bounded by DEADLINE seconds). Loopback only.

    cargo build -p portcullis-demo
    python3 bench/slow-clients.py target/debug/portcullis-demo 300 60

Served by plain axum::serve the fresh client is never answered; through
portcullis::serve it is answered once the slow sockets' slots are reclaimed.
"""
import os, re, socket, subprocess, sys, tempfile, time

BIN, N, DEADLINE = os.path.abspath(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
data = tempfile.mkdtemp()
env = {"PATH": os.environ["PATH"], "PORTCULLIS_ADDR": "127.0.0.1:0",
       "PORTCULLIS_DATA_DIR": data, "PORTCULLIS_LOG": "info"}
server = subprocess.Popen(["prlimit", "--nofile=256:256", BIN], env=env, cwd=data,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
try:
    for line in server.stderr:
        found = re.search(r"listening on http://([\d.:]+)", line)
        if found:
            break
    else:
        sys.exit(f"{BIN} did not start")
    host, port = found.group(1).rsplit(":", 1)
    port = int(port)
    slow = []
    for _ in range(N):
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError as error:  # the listen queue is full
            print(f"connect failed after {len(slow)} slow sockets: {error}")
            break
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        slow.append(s)
    start = time.monotonic()
    result = "no answer"
    while time.monotonic() - start < DEADLINE:
        try:
            left = DEADLINE - (time.monotonic() - start)
            fresh = socket.create_connection((host, port), timeout=max(0.1, left))
            fresh.settimeout(max(0.1, left))
            fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n")
            reply = fresh.recv(100)
            fresh.close()
            result = reply.split(b"\r\n")[0].decode() or "closed without an answer"
            if result.startswith("HTTP/1.1 200"):
                break
        except OSError as error:
            result = type(error).__name__
            time.sleep(0.1)
    print(f"slow sockets: {len(slow)}, fresh /healthz: {result} "
          f"after {time.monotonic() - start:.1f} s (deadline {DEADLINE:.0f} s)")
    for s in slow:
        s.close()
finally:
    server.kill()
    server.wait()
