#!/usr/bin/env bash
# Makes the Secrets that deploy/manifests/wirelens.yaml expects, with openssl and kubectl
# (what `helm install` does by itself):
#   wirelens-agent-tls  the agents' serving certificate (CN and DNS name wirelens-agent)
#   wirelens-hub-tls    the hub's client certificate (CN wirelens-hub)
#   wirelens-hub-token  the MCP bearer token (key `token`, 48 hex characters)
# Both certificates are signed by a new CA (RSA 2048), carry serverAuth and clientAuth, and come
# with the CA as ca.crt; the CA's key is deleted once they are signed.
#
#   deploy/manifests/make-secrets.sh [NAMESPACE]      (default: wirelens)
#
# Creates the namespace when it is missing, labelled for Pod Security "privileged" (the agents
# use hostNetwork and capabilities). Refuses to run when any of the Secrets exists: delete them
# (and restart the pods) to re-issue. WIRELENS_CERT_DAYS sets the validity (default 3650).
set -euo pipefail
ns=${1:-wirelens}
days=${WIRELENS_CERT_DAYS:-3650}
for c in openssl kubectl; do
    command -v "$c" >/dev/null 2>&1 || { echo "make-secrets: $c is needed" >&2; exit 1; }
done

existing=$(kubectl -n "$ns" get secret wirelens-agent-tls wirelens-hub-tls wirelens-hub-token \
    --ignore-not-found -o name 2>/dev/null || true)
if [ -n "$existing" ]; then
    echo "make-secrets: already in namespace $ns: $(echo $existing); delete them to re-issue" >&2
    exit 1
fi
if ! kubectl get namespace "$ns" >/dev/null 2>&1; then
    kubectl create namespace "$ns"
    kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=privileged
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
    cd "$tmp"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "$days" \
        -subj /CN=wirelens-ca -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
    for who in agent hub; do
        openssl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" \
            -subj "/CN=wirelens-$who" 2>/dev/null
        printf '%s\n' "subjectAltName=DNS:wirelens-$who" basicConstraints=CA:FALSE \
            keyUsage=critical,digitalSignature,keyEncipherment extendedKeyUsage=serverAuth,clientAuth \
            >"$who.ext"
        openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$who.crt" \
            -days "$days" -extfile "$who.ext" 2>/dev/null
    done
    rm -f ca.key ca.srl
)
for who in agent hub; do
    kubectl -n "$ns" create secret generic "wirelens-$who-tls" --type=kubernetes.io/tls \
        --from-file=tls.crt="$tmp/$who.crt" --from-file=tls.key="$tmp/$who.key" \
        --from-file=ca.crt="$tmp/ca.crt"
done
kubectl -n "$ns" create secret generic wirelens-hub-token --from-literal=token="$(openssl rand -hex 24)"
