#!/usr/bin/env python3
"""The capture page end to end: `facelive serve` on 127.0.0.1, headless Chromium whose
fake camera plays a video made from a dev image, driven with selenium.

- live and spoof feeds: the guidance enables the shutter, the page shows the outcome and the
  score of `facelive check` on the very frame the page sent (score to 3 decimals);
- a dark feed and a small-face feed: the hints are shown and the shutter stays disabled;
  a still forced through anyway is answered `retry` with its hints;
- tokens: a forged, an expired (signed with the server's secret) and a used token are
  refused by the page's first call;
- axe-core finds no serious or critical accessibility violation in the guiding, ready and
  result states;
- screenshots of the states go to --screenshots; the server cost of guidance per second
  of preview is printed (from /metrics).

Run by scripts/browser-test.sh, which installs what this needs.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

LIVE = "live/nuaa_ClientRaw_0001_00_00_01_134.jpg"
# A spoof whose score is not 0 to 3 decimals, in a portrait frame.
SPOOF = "spoof/silentface_image_F1.jpg"
KEY = "browser-test-key"
SECRET = "browser-test-session-secret"
FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print(f"FAIL {msg}", flush=True)


def ok(msg):
    print(f"ok   {msg}", flush=True)


def expect(cond, msg):
    (ok if cond else fail)(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, headers=None, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_server(args, port):
    env = dict(os.environ, FACELIVE_API_KEY=KEY, FACELIVE_SESSION_SECRET=SECRET,
               FACELIVE_MODELS_DIR=args.models, FACELIVE_WORKERS="1")
    proc = subprocess.Popen([args.binary, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if http("GET", f"{base}/ready")[0] == 200:
                return proc, base
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the server never became ready")


def new_token(base):
    status, body = http("POST", f"{base}/v1/sessions", {"Authorization": f"Bearer {KEY}"})
    assert status == 201, (status, body)
    return json.loads(body)["token"]


def signed_token(exp):
    """A token as the server makes them, signed with its secret: for the expiry test."""
    body = f"fls1.{'0' * 32}.{exp}"
    key = hashlib.sha256(SECRET.encode()).digest()
    sig = base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig.decode().rstrip('=')}"


def feed(src, out, extra=None):
    vf = "scale=trunc(iw/2)*2:trunc(ih/2)*2" + (f",{extra}" if extra else "")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", src, "-t", "2",
                    "-r", "15", "-vf", vf, "-pix_fmt", "yuv420p", out], check=True)
    return out


def browser(video):
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=440,960",
              "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def state(d):
    return d.find_element(By.CSS_SELECTOR, ".flc").get_attribute("data-state")


def wait_state(d, states, timeout=90):
    WebDriverWait(d, timeout, poll_frequency=0.1).until(lambda d: state(d) in states)
    return state(d)


def hints(d):
    return [li.text for li in d.find_elements(By.CSS_SELECTOR, ".flc-hints li")]


def sent_frame(d):
    b64 = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const r = new FileReader(); r.onload = () => done(r.result.split(',')[1]);"
        "r.readAsDataURL(window.faceliveLastFrame);")
    return base64.b64decode(b64)


def check(args, image, point="balanced"):
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(image)
        f.flush()
        out = subprocess.run([args.binary, "--models-dir", args.models, "check", "--json",
                              "--operating-point", point, f.name], capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[0])


def axe(d, src, label):
    d.execute_script(src)
    found = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations.map("
        "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length}))));")
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    expect(not bad, f"axe-core, {label}: no serious or critical violation {bad or ''}"
           f" ({len(found)} minor)")


def shot(d, args, name):
    path = pathlib.Path(args.screenshots) / f"capture-{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(path))


def guidance_cost(base):
    _, body = http("GET", f"{base}/metrics")
    text = body.decode()
    grab = lambda name: float(re.search(
        rf'^{name}{{dialect="guidance"}} ([0-9.e+-]+)$', text, re.M).group(1))
    return grab("facelive_request_duration_seconds_sum"), grab("facelive_request_duration_seconds_count")


def judged_feed(args, base, axe_src, work, rel, want_state, name):
    d = browser(feed(f"{args.dev}/{rel}", f"{work}/{name}.y4m"))
    try:
        d.get(f"{base}/capture#token={new_token(base)}")
        wait_state(d, ["ready"])
        shutter = d.find_element(By.CSS_SELECTOR, ".flc-shutter")
        expect(shutter.is_enabled(), f"{name}: guidance enabled the shutter")
        if name == "live":
            shot(d, args, "ready")
            axe(d, axe_src, "ready")
        shutter.click()
        got = wait_state(d, ["live", "attack", "retry", "error"])
        result = d.find_element(By.CSS_SELECTOR, ".flc-result")
        outcome, score = result.get_attribute("data-outcome"), result.get_attribute("data-score")
        want = check(args, sent_frame(d))
        expect(got == want_state, f"{name}: the page shows {got}")
        expect(outcome == want["outcome"],
               f"{name}: outcome {outcome} = facelive check on the sent frame ({want['outcome']})")
        expect(round(float(score), 3) == round(want["live_score"], 3),
               f"{name}: score {float(score):.3f} = check's {want['live_score']:.3f}")
        text = d.find_element(By.CSS_SELECTOR, ".flc-score").text
        expect(f"{want['live_score']:.3f}" in text, f"{name}: the page says {text!r}")
        shot(d, args, name)
        axe(d, axe_src, f"{name} result")
        if name == "live":
            # The same page on a laptop screen: the stage keeps its width, the answer and
            # the button stay in view.
            d.set_window_size(1280, 800)
            fits = d.execute_script(
                "const r = document.querySelector('.flc-result').getBoundingClientRect();"
                "const s = document.querySelector('.flc-stage').getBoundingClientRect();"
                "return r.bottom <= innerHeight && s.width <= 40 * 16 + 1 && s.width > 300;")
            expect(fits, "laptop: stage at most 40rem wide, the answer in view")
            shot(d, args, "laptop")
    finally:
        d.quit()


def unfit_feed(args, base, axe_src, work, name, extra, want_hint):
    d = browser(feed(f"{args.dev}/{LIVE}", f"{work}/{name}.y4m", extra))
    try:
        d.get(f"{base}/capture#token={new_token(base)}")
        try:
            WebDriverWait(d, 90, poll_frequency=0.1).until(lambda d: hints(d))
        except Exception:
            status = d.find_element(By.CSS_SELECTOR, ".flc-status").text
            fail(f"{name}: no hints shown; state {state(d)}, status {status!r}")
            return
        time.sleep(2)  # a few more guidance rounds
        shown = hints(d)
        expect(any(want_hint in h.lower() for h in shown), f"{name}: hints {shown}")
        shutter = d.find_element(By.CSS_SELECTOR, ".flc-shutter")
        expect(not shutter.is_enabled() and state(d) == "guiding",
               f"{name}: shutter disabled, still guiding")
        if name == "dark":
            shot(d, args, "guiding")
            axe(d, axe_src, "guiding")
            # Forced through anyway: the check itself answers retry, with the hint.
            d.execute_script("const b = document.querySelector('.flc-shutter');"
                             "b.disabled = false; b.click();")
            got = wait_state(d, ["live", "attack", "retry", "error"])
            expect(got == "retry" and any(want_hint in h.lower() for h in hints(d)),
                   f"{name}: a forced still is answered {got} with hints {hints(d)}")
            shot(d, args, "retry")
            axe(d, axe_src, "retry result")
    finally:
        d.quit()


def refused_token(args, base, work, token, want, label):
    d = browser(feed(f"{args.dev}/{LIVE}", f"{work}/token.y4m"))
    try:
        d.get(f"{base}/capture#token={token}")
        wait_state(d, ["error"], 60)
        status = d.find_element(By.CSS_SELECTOR, ".flc-status").text
        expect(want in status.lower(), f"{label} token: the page says {status!r}")
    finally:
        d.quit()


def main():
    p = argparse.ArgumentParser()
    for a in ["binary", "axe", "models", "dev", "screenshots"]:
        p.add_argument(f"--{a}", required=True)
    args = p.parse_args()
    args.binary = os.path.abspath(args.binary)
    axe_src = pathlib.Path(args.axe).read_text()
    proc, base = start_server(args, free_port())
    try:
        with tempfile.TemporaryDirectory() as work:
            t0 = time.time()
            judged_feed(args, base, axe_src, work, LIVE, "live", "live")
            judged_feed(args, base, axe_src, work, SPOOF, "attack", "attack")
            unfit_feed(args, base, axe_src, work, "dark", "colorchannelmixer=rr=0.2:gg=0.2:bb=0.2",
                       "more light")
            unfit_feed(args, base, axe_src, work, "small-face", "scale=200:-2,pad=640:480:220:165",
                       "move closer")
            total, count = guidance_cost(base)
            print(f"guidance: {int(count)} requests in {time.time() - t0:.0f} s of test, "
                  f"{1000 * total / count:.1f} ms of server time each; at the page's 2 frames "
                  f"a second, {2000 * total / count:.0f} ms of server time per second of preview")

            used = new_token(base)
            status, _ = http("POST", f"{base}/v1/liveness",
                             {"Authorization": f"Bearer {used}", "Content-Type": "application/json"},
                             json.dumps({"image": {"base64": base64.b64encode(
                                 pathlib.Path(f"{args.dev}/{LIVE}").read_bytes()).decode()}}).encode())
            assert status == 200, status
            refused_token(args, base, work, used, "already used", "a used")
            refused_token(args, base, work, signed_token(int(time.time()) - 1), "expired", "an expired")
            forged = new_token(base)[:-4] + "AAAA"
            refused_token(args, base, work, forged, "not valid", "a forged")
    finally:
        proc.terminate()
        proc.wait()
    if FAILURES:
        sys.exit(f"{len(FAILURES)} failure(s)")
    print("capture page: all good")


if __name__ == "__main__":
    main()
