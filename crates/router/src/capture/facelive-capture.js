// facelive capture client: one ES module, no framework, no build step.
//
//   import { capture } from "https://liveness.example.com/capture/facelive-capture.js";
//   const verdict = await capture(document.querySelector("#selfie"), { token });
//
// It opens the front camera, guides the user on small downscaled frames through
// `POST /v1/quality` (no anti-spoof models: cheap for the server), enables the shutter only
// when the face is large enough, inside the frame, lit and sharp, then sends one still to
// `POST /v1/liveness` and resolves with the native API's answer. Images go only to the
// facelive server; nothing is stored. Authentication: a capture session token that the
// integrator's backend got from `POST /v1/sessions` with its API key (never put the key
// in a page); without a token only a server running with --no-auth answers.

const DEFAULTS = {
  server: "",                 // facelive's origin; "" is the page's own
  token: undefined,           // session token, or an async function returning one
  operatingPoint: "balanced", // weak | balanced | strict
  guidanceInterval: 500,      // ms between guidance frames
  guidanceWidth: 320,         // px, the guidance frames' width
  stillWidth: 640,            // px, the width of the still sent for the verdict (at most the camera's)
  autoShoot: false,           // shoot by itself after two fit guidance frames in a row
  onState: undefined,         // called with each state name
  onCapture: undefined,       // called with the still's Blob before it is sent
};

const STYLE = `
.flc { font: 16px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 0 auto; color: #111; }
.flc-stage { position: relative; width: min(100%, calc(50vh * 4 / 3)); margin: 0 auto; aspect-ratio: 4 / 3; background: #222; border-radius: 12px; overflow: hidden; }
.flc-stage video, .flc-stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: cover; }
.flc-stage video { transform: scaleX(-1); }
.flc-frame { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.flc-frame ellipse { fill: none; stroke: #fff; stroke-width: 0.8; stroke-dasharray: 2 1.5; }
.flc[data-state="ready"] .flc-frame ellipse { stroke: #1b873f; stroke-dasharray: none; stroke-width: 1.2; }
.flc-status { font-weight: 600; margin: .75rem 0 .25rem; }
.flc-hints { margin: 0 0 .75rem; padding-left: 1.25rem; }
.flc button { font: inherit; font-weight: 600; padding: .75rem 1.5rem; border-radius: 999px; border: 0; background: #0b57d0; color: #fff; cursor: pointer; min-height: 44px; }
.flc button:disabled { background: #6b6b6b; color: #fff; cursor: not-allowed; }
.flc button:focus-visible { outline: 3px solid #f9ab00; outline-offset: 2px; }
.flc-result { margin-top: 1rem; padding: .75rem 1rem; border-radius: 8px; background: #f1f3f4; }
.flc-result[data-outcome="live"] { background: #e6f4ea; }
.flc-result[data-outcome="spoof"] { background: #fce8e6; }
.flc-outcome { font-size: 1.25rem; font-weight: 700; margin: 0 0 .25rem; }
@media (max-width: 30rem) { .flc-stage { aspect-ratio: 3 / 4; width: min(100%, calc(50vh * 3 / 4)); } }
`;

const OUTCOME_WORDS = {
  live: "Live person",
  spoof: "Presentation attack",
  retry: "Photo needs retaking",
};

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function build(root) {
  if (!document.getElementById("flc-style")) {
    const style = el("style", { id: "flc-style" });
    style.textContent = STYLE;
    document.head.append(style);
  }
  const ui = {
    box: el("div", { class: "flc", "data-state": "starting" }),
    stage: el("div", { class: "flc-stage" }),
    video: el("video", { playsinline: "", muted: "", autoplay: "", "aria-label": "Camera preview" }),
    still: el("canvas", { class: "flc-still", role: "img", "aria-label": "The photo that was checked", hidden: "" }),
    status: el("p", { class: "flc-status", role: "status", "aria-live": "polite" }, "Starting the camera…"),
    hints: el("ul", { class: "flc-hints", "aria-label": "What to change" }),
    shutter: el("button", { type: "button", class: "flc-shutter", disabled: "" }, "Take photo"),
    result: el("div", { class: "flc-result", hidden: "" }),
    outcome: el("p", { class: "flc-outcome" }),
    score: el("p", { class: "flc-score" }),
  };
  ui.video.muted = true;
  const frame = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  frame.setAttribute("class", "flc-frame");
  frame.setAttribute("viewBox", "0 0 100 75");
  frame.setAttribute("preserveAspectRatio", "xMidYMid meet");
  frame.setAttribute("aria-hidden", "true");
  const oval = document.createElementNS("http://www.w3.org/2000/svg", "ellipse");
  for (const [k, v] of Object.entries({ cx: 50, cy: 36, rx: 19, ry: 26 })) oval.setAttribute(k, v);
  frame.append(oval);
  ui.stage.append(ui.video, ui.still, frame);
  ui.result.append(ui.outcome, ui.score);
  ui.box.append(ui.stage, ui.status, ui.hints, ui.shutter, ui.result);
  root.replaceChildren(ui.box);
  return ui;
}

function showHints(ui, hints) {
  ui.hints.replaceChildren(...hints.map((h) => el("li", {}, h.charAt(0).toUpperCase() + h.slice(1))));
}

/** The current video frame, `width` px wide, as a Blob of `type`. */
function grab(video, width, type, quality) {
  const w = Math.min(width, video.videoWidth);
  const h = Math.round((video.videoHeight * w) / video.videoWidth);
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  c.getContext("2d").drawImage(video, 0, 0, w, h);
  return new Promise((resolve) => c.toBlob((b) => resolve({ blob: b, canvas: c }), type, quality));
}

async function post(opts, path, blob, token, fields = {}) {
  const form = new FormData();
  form.append("image", blob, blob.type === "image/png" ? "still.png" : "frame.jpg");
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const resp = await fetch(`${opts.server}${path}`, { method: "POST", body: form, headers, credentials: "omit" });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(body.error?.message || `HTTP ${resp.status}`);
    err.code = body.error?.code;
    err.status = resp.status;
    throw err;
  }
  return body;
}

function drawVerdict(ui, canvas, verdict) {
  ui.still.width = canvas.width;
  ui.still.height = canvas.height;
  const g = ui.still.getContext("2d");
  g.drawImage(canvas, 0, 0);
  const b = verdict.face?.box;
  if (b) {
    g.lineWidth = Math.max(2, canvas.width / 200);
    g.strokeStyle = verdict.outcome === "live" ? "#1b873f" : verdict.outcome === "spoof" ? "#c5221f" : "#f9ab00";
    g.strokeRect(b.x, b.y, b.width, b.height);
  }
  ui.video.hidden = true;
  ui.still.hidden = false;
}

/**
 * Runs the capture flow in `element`; resolves with the native API's verdict for the one
 * still sent (outcome live / spoof / retry, live_score, threshold, face, quality, ...).
 */
export async function capture(element, options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const ui = build(element);
  const setState = (s, message) => {
    ui.box.dataset.state = s;
    if (message !== undefined) ui.status.textContent = message;
    opts.onState?.(s);
  };
  const token = typeof opts.token === "function" ? await opts.token() : opts.token;

  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (e) {
    setState("error", `The camera is not available: ${e.message}`);
    throw e;
  }
  ui.video.srcObject = stream;
  await ui.video.play();
  setState("guiding", "Fit your face inside the oval");

  let fitInARow = 0;
  let stopped = false;
  let shoot;
  const shot = new Promise((resolve) => {
    shoot = resolve;
    ui.shutter.addEventListener("click", resolve, { once: true });
  });
  const guide = async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const { blob } = await grab(ui.video, opts.guidanceWidth, "image/jpeg", 0.85);
        const g = await post(opts, "/v1/quality", blob, token);
        if (stopped) break;
        const fit = g.fit === true;
        fitInARow = fit ? fitInARow + 1 : 0;
        ui.shutter.disabled = !fit;
        showHints(ui, fit ? [] : g.hints);
        setState(fit ? "ready" : "guiding", fit ? "Hold still — ready to take the photo" : "Adjust as shown below");
        if (opts.autoShoot && fitInARow >= 2) shoot();
      } catch (e) {
        if (e.status === 401) {
          stopped = true;
          stream.getTracks().forEach((t) => t.stop());
          setState("error", `Not allowed: ${e.message}`);
          throw e;
        }
        setState("guiding", `Checking the picture failed (${e.message}); retrying`);
      }
      const wait = opts.guidanceInterval - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };
  // The shutter, or the guidance failing for good (a refused token).
  await Promise.race([shot, guide()]);
  stopped = true;
  ui.shutter.disabled = true;
  setState("sending", "Checking…");

  try {
    const { blob, canvas } = await grab(ui.video, opts.stillWidth, "image/png");
    opts.onCapture?.(blob);
    const verdict = await post(opts, "/v1/liveness", blob, token, { operating_point: opts.operatingPoint });
    drawVerdict(ui, canvas, verdict);
    const outcome = verdict.outcome;
    ui.result.dataset.outcome = outcome;
    ui.result.dataset.score = verdict.live_score ?? "";
    ui.outcome.textContent = OUTCOME_WORDS[outcome] ?? outcome;
    ui.score.textContent =
      verdict.live_score == null
        ? "Not judged: the photo could not be assessed."
        : `Score ${verdict.live_score.toFixed(3)} against the threshold ${verdict.threshold.toFixed(3)}` +
          (verdict.operating_point ? ` (${verdict.operating_point} operating point)` : "");
    const failed = (verdict.quality ?? []).filter((c) => !c.pass).map((c) => c.hint);
    if (verdict.retry_reason === "no_face") failed.push("put your face inside the frame");
    showHints(ui, outcome === "retry" ? [...new Set(failed)] : []);
    ui.result.hidden = false;
    ui.shutter.hidden = true;
    ui.result.scrollIntoView({ block: "nearest" });
    setState(outcome === "spoof" ? "attack" : outcome, "Done");
    return verdict;
  } catch (e) {
    setState("error", `The check failed: ${e.message}`);
    throw e;
  } finally {
    stream.getTracks().forEach((t) => t.stop());
  }
}
