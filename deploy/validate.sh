#!/usr/bin/env bash
# Validates the Kubernetes manifests offline against the API schemas of each version in
# K8S_VERSIONS (kubernetes-validate from PyPI, --strict: unknown or misspelled fields
# fail), installed into a virtualenv under target/. The files are those the
# kustomization lists as resources, plus the Secret and ConfigMap its generators make
# (rendered here from keys.env.example and facelive.toml, as kustomize would; a file secret
# such as attest.pem as a placeholder).
#
#   deploy/validate.sh
#   K8S_VERSIONS="1.28.0 1.30.0 1.33.0" deploy/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/k8s-venv
[ -x "$venv/bin/kubernetes-validate" ] || {
  python3 -m venv "$venv" 2>/dev/null \
    || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet kubernetes-validate==1.37.0
}
dir=deploy/kubernetes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" - "$dir" "$work" <<'PY'
import base64, sys, yaml, pathlib
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
k = yaml.safe_load((src / "kustomization.yaml").read_text())
files = [src / r for r in k["resources"]]
for g in k.get("configMapGenerator", []):
    data = {f: (src / f).read_text() for f in g["files"]}
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g["name"], "namespace": k["namespace"]}, "data": data}
    (out / f"{g['name']}.yaml").write_text(yaml.safe_dump(doc))
for g in k.get("secretGenerator", []):
    data = {}
    # File secrets (attest.pem) are made by the operator and never committed: a
    # placeholder of the same key stands in for validation.
    for f in g.get("files", []):
        data[f] = base64.b64encode(b"placeholder").decode()
    for env in g.get("envs", []):
        for line in (src / f"{env}.example").read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                data[key] = base64.b64encode(value.encode()).decode()
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": g["name"], "namespace": k["namespace"]}, "data": data}
    (out / f"{g['name']}.yaml").write_text(yaml.safe_dump(doc))
(out / "files").write_text("\n".join(str(f) for f in files) + "\n")
# The server's own shutdown (drain + shutdown_timeout + the audit queue's 3 s) must end
# before Kubernetes kills the pod, or the queue's lines are lost.
import tomllib
serve = tomllib.loads((src / "facelive.toml").read_text())["serve"]
dep = yaml.safe_load((src / "deployment.yaml").read_text())
grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
ends = serve["drain"] + serve["shutdown_timeout"] + 3
assert ends < grace, f"shutdown takes up to {ends} s, the grace period is {grace} s"
print(f"shutdown ends within {ends} s, under the {grace} s grace period")
PY
mapfile -t files < "$work/files"
for v in ${K8S_VERSIONS:-1.28.0 1.33.0}; do
  echo "== Kubernetes $v"
  "$venv/bin/kubernetes-validate" --strict -k "$v" "${files[@]}" "$work"/*.yaml
done
