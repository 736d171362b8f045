#!/usr/bin/env python3
"""Hostile clients against `facelive serve` on 127.0.0.1 (docs/SECURITY.md).

usage: hostile.py [--bin ./target/release/facelive] [--port 18091]

Starts the server (FACELIVE_MODELS_DIR must point at the models), then in turn:
  bombs     3 and 8 concurrent 6320x6320 RGBA PNGs (170 kB each): the server's peak RSS
  slow      20 clients with a valid key sending bodies at ~5 bytes/s while 200 normal
            requests are made one after another: their success rate and p99, beside p99
            of the same requests without the slow clients
  slowurl   20 clients whose image.url points at an origin (on 127.0.0.1) that sends a
            byte every 0.5 s, while 200 normal requests are made: as for slow
  flood     10 s of requests with a wrong key: bytes of log written
  headers   50 connections sending headers at 1 byte/s: how many are open after 15 s
  iccp      8 concurrent 640x480 PNGs whose colour profile inflates to 1 GiB: peak RSS
  idle      1,030 connections that send nothing, from one client, while 100 other requests
            are made: their success rate, and how many idle sockets are closed after 12 s
  authflood 10 s of failing requests with the right key and 60 KB request ids: log bytes
  tokens    32 session tokens running 2 uploads each at 10 kB/s (64 in all) while the key
            makes 100 requests of its own: their success rate
  ipv6      image URLs at the four IPv6 forms outside global unicast: statuses and codes
  memory    RSS before the load, at its peak, and 60 s after
With --edges, instead (each with a server of its own; needs root for the full disk's mount
namespace):
  eval      `facelive eval --endpoint` against an endpoint answering 1 GiB: its peak RSS
  trail     answered requests against audit trail lines: a FIFO sink read by no one until
            SIGTERM (then at once, or 6 s later), kill -9 and SIGTERM under load, rotation
            every 20 kB with keep 1000 (and keep 100000 refused), a 64 kB disk that fills
            and empties again; lines lost uncounted
  shutdown  exit time after SIGTERM with a client that pipelined 3,000 requests and reads
            nothing; whether a connection after the drain is accepted
  keepalive 136 keep-alive POSTs on one reused connection while ~500 silent connections a
            second arrive at the default 1,024 places
Python standard library only; every connection goes to 127.0.0.1.
"""
import argparse, base64, json, os, resource, socket, struct, subprocess, sys, tempfile, threading, time, zlib

KEY = "hostile-test-key"


def rss_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def bomb_png(side=6320):
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    row = b"\x00" + bytes([200, 180, 160, 255]) * side
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row * side, 9)) + chunk(b"IEND", b"")


def iccp_bomb_png(w=640, h=480, inflated=1 << 30):
    """A w x h RGB PNG of noise whose iCCP chunk (a zlib stream) inflates to `inflated` bytes."""
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    block = bytes(16 << 20)
    profile = b"".join(z.compress(block) for _ in range(inflated // len(block))) + z.flush()
    rows = b"".join(b"\x00" + os.urandom(w * 3) for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"iCCP", b"bomb\x00\x00" + profile)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def post(port, body, key=KEY, timeout=60, path="/v1/liveness", extra=""):
    """One native-API request; returns (status, seconds)."""
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    s.sendall(head.encode() + body)
    data = b""
    while True:
        part = s.recv(65536)
        if not part:
            break
        data += part
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, time.perf_counter() - t


def json_body(img):
    return json.dumps({"image": {"base64": base64.b64encode(img).decode()}}).encode()


def concurrently(n, fn):
    out = [None] * n
    def run(i):
        try:
            out[i] = fn()
        except OSError as e:
            out[i] = (0, str(e))
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return out


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000


def slow_origin():
    """An HTTP origin on 127.0.0.1 (a port image URLs may use) that answers every request
    with a JPEG header and then a byte every 0.5 s. Returns its port."""
    srv = socket.socket()
    for port in range(11500, 12000):
        try:
            srv.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
    srv.listen(64)
    def serve(c):
        try:
            c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n\xff\xd8")
            while True:
                time.sleep(0.5)
                c.sendall(b"\x00")
        except OSError:
            c.close()
    def accept():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return port


def idle_sockets(port, normal, n=1030):
    """n connections that send nothing, then 100 requests from another client."""
    idle = []
    for _ in range(n):
        try:
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    t0 = time.time()
    res = [post(port, normal, timeout=10) for _ in range(100)]
    ok = sum(1 for c, _ in res if c == 200)
    time.sleep(max(0.0, 12 - (time.time() - t0)))
    closed = 0
    for s in idle:
        s.setblocking(False)
        try:
            closed += 1 if s.recv(1) == b"" else 0
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(f"idle: with {len(idle)} idle connections from one client, {ok}/100 other requests answered 200 "
          f"({ok}%); {closed}/{len(idle)} idle connections closed by the server 12 s after they opened")


def auth_flood(port, log):
    """10 s of failing requests with the right key and a 60 KB request id."""
    log.flush()
    before = os.path.getsize(log.name)
    t_end = time.time() + 10
    rid = "X-Request-Id: " + "r" * 60000 + "\r\n"
    def flood():
        n = 0
        while time.time() < t_end:
            post(port, b"{}", path="/v1/quality", extra=rid)
            n += 1
        return n
    sent = sum(concurrently(4, flood))
    time.sleep(0.5)
    print(f"authflood: {sent} failing requests with the right key and 60 KB request ids in 10 s "
          f"wrote {os.path.getsize(log.name) - before} bytes of log")


def token_uploads(port, normal):
    """32 session tokens, each running 2 uploads at 10 kB/s, while the key makes 100 requests."""
    tokens = []
    for _ in range(32):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall((f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                   "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
        data = b""
        while part := s.recv(65536):
            data += part
        tokens.append(json.loads(data.split(b"\r\n\r\n", 1)[1])["token"])
    stop = threading.Event()
    def upload(token):
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                s.sendall((f"POST /v1/quality HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                           "Content-Type: application/json\r\nContent-Length: 15000000\r\n\r\n").encode())
                while not stop.is_set():
                    s.sendall(b" " * 1000)
                    time.sleep(0.1)
            except OSError:
                pass
    ts = [threading.Thread(target=upload, args=(t,), daemon=True) for t in tokens for _ in range(2)]
    [t.start() for t in ts]
    time.sleep(2)
    res = [post(port, normal) for _ in range(100)]
    stop.set()
    ok = sum(1 for c, _ in res if c == 200)
    print(f"tokens: with {len(ts)} uploads at 10 kB/s from {len(tokens)} session tokens, "
          f"{ok}/100 of the key's own requests answered 200 ({ok}%)")


def ipv6_forms(port):
    out = []
    for host in ["[::ffff:0:0:7f00:2]", "[4000::1]", "[1::1]", "[::1:0:0:7f00:1]"]:
        body = json.dumps({"image": {"url": f"http://{host}/selfie.jpg"}}).encode()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = (f"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        s.sendall(head.encode() + body)
        data = b""
        while part := s.recv(65536):
            data += part
        code = json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"]
        out.append(f"{host} {data.split(b' ', 2)[1].decode()} {code}")
    print("ipv6: " + "; ".join(out))


# ---- Shutdown and the audit trail (issue 33): each scenario starts its own server. ----

def start(bin_, port, *args, env=None, wrap=(), stderr=None):
    """`facelive serve` on 127.0.0.1:port, returned once it accepts connections."""
    env = dict(os.environ, FACELIVE_API_KEY=KEY, **(env or {}))
    srv = subprocess.Popen([*wrap, bin_, "serve", "--listen", f"127.0.0.1:{port}", *args], env=env,
                           stdout=subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL)
    for _ in range(1200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return srv
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server never listened")


def load(port, body, seconds, threads=4):
    """Requests from `threads` clients for `seconds`: how many were answered 200."""
    t_end = time.time() + seconds
    def client():
        ok = 0
        while time.time() < t_end:
            try:
                ok += post(port, body, timeout=30)[0] == 200
            except OSError:
                pass
        return ok
    return sum(concurrently(threads, client))


def trail_lines(path):
    """Whole JSON lines in a trail and its rotated files; broken lines counted apart."""
    good = bad = 0
    for p in [path] + [f"{path}.{k}" for k in range(1, 1001)]:
        if not os.path.exists(p):
            continue
        for line in open(p, "rb").read().split(b"\n"):
            if not line:
                continue
            try:
                json.loads(line)
                good += 1
            except ValueError:
                bad += 1
    return good, bad


def counted(log, reason):
    """Lines the server said it lost at shutdown (its log line), or 0."""
    for line in open(log, errors="replace"):
        if "were not written" in line and "lines=" in line:
            return int(line.split("lines=")[1].split()[0])
    return 0


def trail_slow_sink(bin_, port, normal, reader_back):
    """The trail on a FIFO read by no one until SIGTERM (a log shipper under
    back-pressure), then read `reader_back` seconds after it."""
    d = tempfile.mkdtemp()
    fifo, log = f"{d}/trail", f"{d}/log"
    os.mkfifo(fifo)
    opened = {}
    t = threading.Thread(target=lambda: opened.setdefault("f", open(fifo, "rb")))
    t.start()
    srv = start(bin_, port, "--audit-log", fifo, "--drain", "0", stderr=open(log, "w"))
    t.join()
    answered = load(port, normal, 8)
    srv.send_signal(15)
    time.sleep(reader_back)
    lines = sum(1 for l in opened["f"].read().split(b"\n") if l.endswith(b"}"))
    srv.wait()
    left = counted(log, "shutdown")
    print(f"trail, slow sink, reader back after {reader_back} s: {answered} answered 200, "
          f"{lines} lines written, {left} counted as not written at shutdown, "
          f"{answered - lines - left} lost uncounted")


def trail_signal(bin_, port, normal, sig):
    """The trail in a file while 4 clients post; `sig` mid-load."""
    d = tempfile.mkdtemp()
    trail = f"{d}/trail"
    srv = start(bin_, port, "--audit-log", trail, "--drain", "0")
    done = []
    th = threading.Thread(target=lambda: done.append(load(port, normal, 6)))
    th.start()
    time.sleep(3)
    srv.send_signal(sig)
    srv.wait()
    th.join()
    good, bad = trail_lines(trail)
    name = {9: "kill -9", 15: "SIGTERM"}[sig]
    print(f"trail, {name} under load: {done[0]} answered 200, {good} lines ({bad} broken)")


def trail_rotation(bin_, port, normal):
    """A trail rotated every ~20 kB with keep at its bound (1000), under load; keep above it
    refused at start."""
    d = tempfile.mkdtemp()
    trail = f"{d}/trail"
    srv = start(bin_, port, "--audit-log", trail, "--audit-log-max-bytes", "20000",
                "--audit-log-keep", "1000")
    answered = load(port, normal, 8)
    srv.send_signal(15)
    srv.wait()
    good, bad = trail_lines(trail)
    files = len([f for f in os.listdir(d)])
    refused = subprocess.run([bin_, "serve", "--listen", f"127.0.0.1:{port}", "--audit-log", trail,
                              "--audit-log-keep", "100000"], env=dict(os.environ, FACELIVE_API_KEY=KEY),
                             capture_output=True, text=True, timeout=60)
    print(f"trail, rotation every 20 kB, keep 1000: {answered} answered 200, {good} lines "
          f"({bad} broken) in {files} files; keep 100000: exit {refused.returncode}, "
          f"{refused.stderr.strip().splitlines()[-1]}")


def trail_full_disk(bin_, port, normal):
    """The trail on a 256 kB tmpfs (a mount namespace of the server's own), 32 kB of it
    free, until it is full, then 256 kB free again: every line whole, and lines written + counted = answered."""
    d = tempfile.mkdtemp()
    log, freed = f"{d}/log", f"{d}/freed"
    disk = f"{d}/disk"
    os.mkdir(disk)
    script = (f"mount --make-rprivate / && mount -t tmpfs -o size=262144 tmpfs {disk} && "
              f"head -c 229376 /dev/zero > {disk}/filler && "
              f"( while [ ! -e {freed} ]; do sleep 0.1; done; rm {disk}/filler ) & "
              f"\"$0\" \"$@\"; cp {disk}/trail {d}/trail")
    srv = start(bin_, port, "--audit-log", f"{disk}/trail", "--drain", "0",
                wrap=("unshare", "-m", "sh", "-c", script), stderr=open(log, "w"))
    full = load(port, normal, 6)
    ready = get(port, "/ready", status=True)
    open(freed, "w").close()
    time.sleep(0.5)
    more = sum(post(port, normal)[0] == 200 for _ in range(20))
    ready_after = get(port, "/ready", status=True)
    failed = sum(int(float(l.split()[-1])) for l in get(port, "/metrics").splitlines()
                 if l.startswith("facelive_audit_failures_total{"))
    for child in open(f"/proc/{srv.pid}/task/{srv.pid}/children").read().split():
        if b"serve" in open(f"/proc/{child}/cmdline", "rb").read():
            os.kill(int(child), 15)
    srv.wait()
    good, bad = trail_lines(f"{d}/trail")
    print(f"trail, full disk: {full} answered 200 while it filled, /ready then {ready}; "
          f"room again: {more} more answered, /ready then {ready_after}; {good} whole lines "
          f"({bad} broken), {failed} counted as failed, {full + more - good - failed} lost uncounted")


def get(port, path, status=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while part := s.recv(65536):
        data += part
    s.close()
    if status:
        return data.split(b" ", 2)[1].decode() + " " + data.split(b"\r\n\r\n", 1)[1].decode()
    return data.decode(errors="replace")


def shutdown_pipeliner(bin_, port):
    """SIGTERM with the defaults (drain 5 s, shutdown timeout 30 s) while an
    unauthenticated client has pipelined 3,000 requests and reads none of the answers."""
    srv = start(bin_, port)
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reqs = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 3000
    threading.Thread(target=lambda: s.sendall(reqs), daemon=True).start()
    time.sleep(1)
    t0 = time.time()
    srv.send_signal(15)
    time.sleep(6)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        late = "accepted"
    except OSError as e:
        late = f"refused ({e.strerror})"
    srv.wait()
    print(f"shutdown: a non-reading pipeliner of 3,000 requests; SIGTERM to exit {time.time() - t0:.1f} s "
          f"(drain 5 s + shutdown timeout 30 s; grace period 40 s); a connection 6 s after SIGTERM {late}")
    s.close()


def keepalive_vs_silent(bin_, port, normal):
    """~500 silent connections a second at the default 1,024 places while one client posts
    136 requests on one reused keep-alive connection."""
    srv = start(bin_, port)
    stop = threading.Event()
    def silent():
        held = []
        while not stop.is_set():
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                pass
            held = held[-600:]
            time.sleep(0.004)
        [h.close() for h in held]
    ts = [threading.Thread(target=silent, daemon=True) for _ in range(2)]
    [t.start() for t in ts]
    time.sleep(3)
    failed, c = 0, None
    for _ in range(136):
        try:
            if c is None:
                c = socket.create_connection(("127.0.0.1", port), timeout=30)
            c.sendall((f"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(normal)}\r\n\r\n").encode() + normal)
            head = b""
            while b"\r\n\r\n" not in head:
                part = c.recv(65536)
                if not part:
                    raise OSError("closed")
                head += part
            length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n")[0])
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += c.recv(65536)
            failed += not head.startswith(b"HTTP/1.1 200")
        except OSError:
            failed += 1
            c = None
        time.sleep(0.05)
    stop.set()
    [t.join() for t in ts]
    srv.terminate()
    srv.wait()
    print(f"keepalive: with ~500 silent connections a second, {136 - failed}/136 keep-alive POSTs "
          f"answered 200 on their reused connection ({failed} failed)")


def eval_huge_answer(bin_, image):
    """`facelive eval --endpoint` against an endpoint answering 1 GiB: eval's peak RSS."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    def serve():
        while True:
            c, _ = srv.accept()
            def one(c=c):
                try:
                    c.recv(1 << 20)
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\n\r\n")
                    chunk = b" " * (1 << 20)
                    for _ in range(1024):
                        c.sendall(chunk)
                except OSError:
                    pass
                c.close()
            threading.Thread(target=one, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    d = tempfile.mkdtemp()
    name = os.path.basename(image)
    os.symlink(os.path.abspath(image), f"{d}/{name}")
    open(f"{d}/set.csv", "w").write(f"file,label,attack_type\n{name},live,none\n")
    r = subprocess.run(["/usr/bin/env", bin_, "eval", f"{d}/set.csv", "--out", f"{d}/out", "--allow-outside-set",
                        "--endpoint", f"http://127.0.0.1:{port}/v1/liveness", "--dialect", "native"],
                       capture_output=True, text=True, timeout=600)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"eval: an endpoint answering 1 GiB: exit {r.returncode}, peak RSS of the children so far "
          f"{peak / 1024:.0f} MB; {r.stderr.strip().splitlines()[-1][:160]}")


def edges(bin_, port, image):
    normal = json_body(open(image, "rb").read())
    eval_huge_answer(bin_, image)
    trail_slow_sink(bin_, port, normal, 0)
    trail_slow_sink(bin_, port + 1, normal, 6)
    trail_signal(bin_, port + 2, normal, 9)
    trail_signal(bin_, port + 3, normal, 15)
    trail_rotation(bin_, port + 4, normal)
    trail_full_disk(bin_, port + 5, normal)
    shutdown_pipeliner(bin_, port + 6)
    keepalive_vs_silent(bin_, port + 7, normal)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./target/release/facelive")
    ap.add_argument("--port", type=int, default=18091)
    ap.add_argument("--image", default="../shared/data/dev/live/nuaa_ClientRaw_0001_00_00_01_134.jpg")
    ap.add_argument("--edges", action="store_true",
                    help="only the shutdown, audit-trail, keep-alive and eval scenarios (issue 33)")
    a = ap.parse_args()
    # 1,030 idle sockets and the server's own: both inherit this.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.edges:
        return edges(a.bin, a.port, a.image)
    log = tempfile.NamedTemporaryFile(delete=False)
    env = dict(os.environ, FACELIVE_API_KEY=KEY)
    # The slow origin is on 127.0.0.1, which image URLs may not reach unless allowed.
    srv = subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{a.port}",
                            "--url-allow-network", "127.0.0.1/32"], env=env,
                           stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", a.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(1)
        normal = json_body(open(a.image, "rb").read())
        post(a.port, normal)
        idle = rss_kb(srv.pid)
        print(f"memory: idle RSS {idle / 1024:.0f} MB")

        bomb = json_body(bomb_png())
        for n in (3, 8):
            res = concurrently(n, lambda: post(a.port, bomb))
            codes = sorted(r[0] for r in res)
            print(f"bombs: {n} concurrent 6320x6320 RGBA PNGs ({len(bomb) // 1024} kB bodies): statuses {codes}, "
                  f"peak RSS so far {rss_kb(srv.pid, 'VmHWM') / 1024:.0f} MB")

        base = [post(a.port, normal) for _ in range(100)]
        base_p99 = p99([t for _, t in base])
        stop = threading.Event()
        def slow_client():
            while not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
                    s.sendall((f"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                               "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n").encode())
                    while not stop.is_set():
                        s.sendall(b" ")
                        time.sleep(0.2)
                except OSError:
                    pass
        slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(20)]
        [t.start() for t in slow]
        time.sleep(1)
        loaded = [post(a.port, normal) for _ in range(200)]
        stop.set()
        ok = sum(1 for c, _ in loaded if c == 200)
        print(f"slow: with 20 slow-body clients, {ok}/200 other requests answered 200 "
              f"({100 * ok / 200:.1f}%), p99 {p99([t for _, t in loaded]):.0f} ms; without them p99 {base_p99:.0f} ms")

        origin = slow_origin()
        url_body = json.dumps({"image": {"url": f"http://127.0.0.1:{origin}/selfie.jpg"}}).encode()
        stop = threading.Event()
        def slow_url_client():
            while not stop.is_set():
                post(a.port, url_body, timeout=30)
        slow = [threading.Thread(target=slow_url_client, daemon=True) for _ in range(20)]
        [t.start() for t in slow]
        time.sleep(1)
        loaded = [post(a.port, normal) for _ in range(200)]
        stop.set()
        [t.join(timeout=15) for t in slow]  # their answers (url_timeout) are logged before the flood
        ok = sum(1 for c, _ in loaded if c == 200)
        print(f"slowurl: with 20 clients whose image URL trickles, {ok}/200 other requests answered 200 "
              f"({100 * ok / 200:.1f}%), p99 {p99([t for _, t in loaded]):.0f} ms; without them p99 {base_p99:.0f} ms")

        log.flush()
        before = os.path.getsize(log.name)
        t_end = time.time() + 10
        def flood():
            n = 0
            while time.time() < t_end:
                post(a.port, b"{}", key="wrong")
                n += 1
            return n
        sent = sum(concurrently(4, flood))
        time.sleep(0.5)
        print(f"flood: {sent} requests with a wrong key in 10 s wrote {os.path.getsize(log.name) - before} bytes of log")

        conns = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", a.port))
            s.setblocking(False)
            conns.append(s)
        t0 = time.time()
        while time.time() - t0 < 15:
            for s in conns:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            time.sleep(1)
        open_ = 0
        for s in conns:
            try:
                s.send(b"X")
                open_ += 1 if s.recv(1) != b"" else 0
            except BlockingIOError:
                open_ += 1
            except OSError:
                pass
        print(f"headers: {open_}/50 slow-header connections still open after 15 s")

        iccp = json_body(iccp_bomb_png())
        res = concurrently(8, lambda: post(a.port, iccp))
        print(f"iccp: 8 concurrent 640x480 PNGs whose iCCP inflates to 1 GiB ({len(iccp) // 1024} kB bodies): "
              f"statuses {sorted(r[0] for r in res)}, peak RSS so far {rss_kb(srv.pid, 'VmHWM') / 1024:.0f} MB")

        idle_sockets(a.port, normal)
        auth_flood(a.port, log)
        token_uploads(a.port, normal)
        ipv6_forms(a.port)

        peak = rss_kb(srv.pid, "VmHWM")
        time.sleep(60)
        print(f"memory: idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB, 60 s after the load {rss_kb(srv.pid) / 1024:.0f} MB")
    finally:
        srv.terminate()
        srv.wait()
        os.unlink(log.name)


if __name__ == "__main__":
    sys.exit(main())
