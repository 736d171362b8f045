// The /capture page: reads the session token from the URL fragment (never sent to any
// server in a request line or a Referer), runs the capture flow, offers another try.
import { capture } from "/capture/facelive-capture.js";

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get("token") || undefined;
const point = params.get("operating_point") || "balanced";
const root = document.getElementById("capture");
const again = document.getElementById("again");

async function run() {
  again.hidden = true;
  try {
    await capture(root, {
      token,
      operatingPoint: point,
      autoShoot: params.get("auto") === "1",
      // Kept in this tab's memory only, for the browser tests to compare with facelive check.
      onCapture: (blob) => { window.faceliveLastFrame = blob; },
    });
  } catch (e) {
    console.warn(e);
  }
  again.hidden = false;
  again.focus();
}

again.addEventListener("click", run);
run();
