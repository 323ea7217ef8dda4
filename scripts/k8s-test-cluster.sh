#!/usr/bin/env bash
# A real Kubernetes API server for the tests, on loopback, without Docker (see
# ../shared/K8S_TEST_CLUSTER.md for how this was worked out).
#
#   scripts/k8s-test-cluster.sh build        build kube-apiserver and kube-controller-manager
#                                            from Debian's `kubernetes` source package (cached)
#   scripts/k8s-test-cluster.sh start DIR    start etcd, kube-apiserver and the controller
#                                            manager on loopback; writes DIR/kubeconfig and
#                                            DIR/env, prints the kubeconfig path
#   scripts/k8s-test-cluster.sh stop DIR     stop what `start DIR` started (safe to repeat)
#   scripts/k8s-test-cluster.sh status DIR   show the processes and /readyz
#   scripts/k8s-test-cluster.sh selftest DIR smoke-check a cluster with curl (starts and stops
#                                            one in DIR when none runs there)
#
# The binaries are cached in ${WIRELENS_CACHE:-~/.cache/wirelens}/k8s/<version>/; the first
# build takes about 10 minutes of 2 cores and ~2.2 GB of scratch space (deleted afterwards).
# Nothing listens anywhere but 127.0.0.1.
set -euo pipefail

K8S_VERSION="${WIRELENS_K8S_VERSION:-1.20.2}"
# Bumped when the build recipe changes; a cache made by another recipe is rebuilt.
RECIPE=2
cache="${WIRELENS_CACHE:-$HOME/.cache/wirelens}"
bindir="$cache/k8s/$K8S_VERSION"
apiserver_bin="$bindir/kube-apiserver"
kcm_bin="$bindir/kube-controller-manager"

log() { printf 'k8s-test-cluster: %s\n' "$*" >&2; }
die() { printf 'k8s-test-cluster: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------
# build

# Installs the Debian packages among "$@" whose command is missing ("command:package" pairs).
apt_install_missing() {
    local want=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
    done
    [ ${#want[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages ${want[*]} (install them as root: apt-get install --no-install-recommends ${want[*]})"
    log "installing ${want[*]}"
    # etcd-server ships a system service; it must not start (the tests run their own etcd).
    local policy="" rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=ours
    fi
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; } || rc=$?
    [ "$policy" = ours ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get install ${want[*]} failed"
}

runtime_deps() {
    apt_install_missing etcd:etcd-server openssl:openssl curl:curl python3:python3
}

cached() {
    [ -x "$apiserver_bin" ] && [ -x "$kcm_bin" ] && [ "$(cat "$bindir/.recipe" 2>/dev/null)" = "$RECIPE" ]
}

cmd_build() {
    if cached; then
        runtime_deps
        log "cached: $bindir"
        return 0
    fi
    runtime_deps
    apt_install_missing go:golang-go rsync:rsync make:make
    mkdir -p "$cache/k8s"
    exec 8>"$cache/k8s/.build.lock"
    flock 8 # a second build on the same machine waits for the first, then finds the cache
    if cached; then
        log "cached: $bindir"
        return 0
    fi

    local t0 tmp
    t0=$(date +%s)
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/wirelens-k8s-build.XXXXXX")
    chmod 755 "$tmp" # apt downloads as the _apt user
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT

    # The source package needs a deb-src line; keep it in a private sources list and lists
    # directory so that the system's apt state is left alone.
    mkdir -p "$tmp/apt/lists/partial" "$tmp/src"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
        echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm main"
        echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main"
    } >"$tmp/apt/sources.list"
    local aptopts=(-o "Dir::Etc::SourceList=$tmp/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$tmp/apt/lists" -o "Dir::Cache::archives=$tmp/apt/archives"
        -o APT::Sandbox::User=root)
    log "fetching the kubernetes source package (private apt lists in $tmp/apt)"
    apt-get -qq "${aptopts[@]}" update
    (cd "$tmp/src" && apt-get -qq "${aptopts[@]}" source --download-only kubernetes) >/dev/null
    local orig
    orig=$(ls "$tmp"/src/kubernetes_*.orig.tar.gz 2>/dev/null | head -1)
    [ -n "$orig" ] || die "apt-get source kubernetes brought no orig tarball"
    case "$orig" in
        *"really$K8S_VERSION.orig"* | *"_$K8S_VERSION.orig"*) ;;
        *) die "the source package is $(basename "$orig"), not Kubernetes $K8S_VERSION (set WIRELENS_K8S_VERSION?)" ;;
    esac
    log "unpacking $(basename "$orig")"
    mkdir -p "$tmp/tree"
    tar -xzf "$orig" -C "$tmp/tree"
    rm -f "$orig"
    local top
    top=$(find "$tmp/tree" -mindepth 1 -maxdepth 1 -type d | head -1)
    [ -f "$top/Makefile" ] || die "no Makefile at the top of the unpacked source ($top)"

    # Kubernetes 1.20 vendors github.com/modern-go/reflect2 1.0.1, which is broken on Go >= 1.18:
    # the server then panics (nil pointer in reflect2.Type2) on every JSON body holding a map,
    # e.g. any object with labels. Swap in Debian's reflect2 1.0.2 (same API, Go 1.18+ support).
    (cd "$tmp/src" && apt-get -qq -o APT::Sandbox::User=root download golang-github-modern-go-reflect2-dev) >/dev/null
    local rdeb
    rdeb=$(ls "$tmp"/src/golang-github-modern-go-reflect2-dev_1.0.2*.deb 2>/dev/null | head -1)
    [ -n "$rdeb" ] || die "could not download golang-github-modern-go-reflect2-dev 1.0.2 (Debian)"
    dpkg-deb -x "$rdeb" "$tmp/reflect2"
    [ -f "$tmp/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/reflect2.go" ] ||
        die "unexpected layout of $(basename "$rdeb")"
    rm -rf "$top/vendor/github.com/modern-go/reflect2"
    cp -r "$tmp/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2" "$top/vendor/github.com/modern-go/"
    rm -f "$top/vendor/github.com/modern-go/reflect2/go.mod" "$top/vendor/github.com/modern-go/reflect2/go.sum"

    # `make` generates code first (a plain `go build` fails). Go's build cache and module
    # downloads stay in the scratch tree, never in the repository or ~/go.
    log "building cmd/kube-apiserver and cmd/kube-controller-manager (about 10 minutes on 2 cores)"
    (
        cd "$top"
        env GOCACHE="$tmp/gocache" GOMODCACHE="$tmp/gomodcache" GOPATH="$tmp/gopath" \
            GOFLAGS=-p=2 CGO_ENABLED=0 GOTOOLCHAIN=local \
            KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean \
            nice -n 10 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
    ) >"$tmp/make.log" 2>&1 || {
        tail -n 40 "$tmp/make.log" >&2
        die "make failed (log tail above)"
    }
    local out
    out=$(find "$top/_output" -type f -name kube-apiserver -path '*/bin/*' | head -1)
    [ -n "$out" ] || die "make finished but no kube-apiserver binary under _output"
    rm -rf "$bindir.tmp"
    mkdir -p "$bindir.tmp"
    install -m 0755 "$out" "$(dirname "$out")/kube-controller-manager" "$bindir.tmp/"
    "$bindir.tmp/kube-apiserver" --version >&2
    echo "$RECIPE" >"$bindir.tmp/.recipe"
    rm -rf "$bindir"
    mv "$bindir.tmp" "$bindir"
    rm -rf "$tmp"
    trap - EXIT
    log "built in $(($(date +%s) - t0)) s; cached in $bindir ($(du -sh "$bindir" | cut -f1))"
}

# ---------------------------------------------------------------------------------------------
# start / stop / status

port_in_use() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
    fi
}

# A free loopback port, chosen at random in 20000-59999, not among "$@".
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        case " $* " in *" $p "*) continue ;; esac
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free port found in 20000-59999"
}

# Pid files, in start order.
components="etcd kube-apiserver kube-controller-manager"

# True while the process in DIR/NAME.pid, which this script started a moment ago, has not
# ended (a zombie has). Its command line is not checked: while it execs, /proc shows setsid's
# or nothing at all, and on a loaded 2-core machine a start-up check that read it then took a
# starting kube-controller-manager for one that had exited (an empty log, twice in CI).
running() {
    local dir=$1 name=$2 pid state
    [ -f "$dir/$name.pid" ] || return 1
    pid=$(cat "$dir/$name.pid")
    [ -n "$pid" ] || return 1
    # The state follows the command name, which is in parentheses and may hold spaces.
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# True when the pid in DIR/NAME.pid is running and still runs NAME (not a reused pid).
alive() {
    local dir=$1 name=$2
    running "$dir" "$name" || return 1
    tr '\0' ' ' <"/proc/$(cat "$dir/$name.pid")/cmdline" 2>/dev/null | grep -q -- "$name"
}

stop_one() {
    local dir=$1 name=$2 pid i
    if alive "$dir" "$name"; then
        pid=$(cat "$dir/$name.pid")
        # Each component leads its own process group (setsid); end the whole group.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name ($pid) did not stop within 10 s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        log "stopped $name ($pid)"
    fi
    rm -f "$dir/$name.pid"
}

cmd_stop() {
    local dir=${1:?usage: stop DIR} name
    [ -d "$dir" ] || { log "$dir does not exist; nothing to stop"; return 0; }
    for name in kube-controller-manager kube-apiserver etcd; do
        stop_one "$dir" "$name"
    done
}

# Starts "$@" in its own session and process group, output to DIR/NAME.log, pid in DIR/NAME.pid.
spawn() {
    local dir=$1 name=$2
    shift 2
    # A background job of a non-interactive shell is no group leader, so setsid does not fork
    # and $! is the component's own pid.
    setsid "$@" </dev/null >"$dir/$name.log" 2>&1 &
    local pid=$! i
    echo "$pid" >"$dir/$name.pid"
    # Until the child has exec'd, /proc shows this shell's command line, and `alive` took a
    # component still starting for one that had exited (seen on a loaded 2-core machine: an
    # empty log and "exited during start-up"). Wait for the exec, or for the child to end.
    for i in $(seq 1 200); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
}

tails() {
    local dir=$1 name
    for name in $components; do
        [ -f "$dir/$name.log" ] || continue
        printf -- '--- last lines of %s/%s.log ---\n' "$dir" "$name" >&2
        tail -n 15 "$dir/$name.log" >&2
    done
}

fail_start() {
    local dir=$1
    shift
    printf 'k8s-test-cluster: ERROR: %s\n' "$*" >&2
    tails "$dir"
    cmd_stop "$dir" 2>/dev/null || true
    exit 1
}

make_certs() {
    local d=$1
    (
        cd "$d"
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=wirelens-test-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
            -subj "/CN=kube-apiserver" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >apiserver.ext
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
        openssl genrsa -out sa.key 2048 2>/dev/null
        openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        rm -f apiserver.csr apiserver.ext ca.srl
    ) || die "openssl could not make the certificates in $d/pki"
}

cmd_start() {
    local dir=${1:?usage: start DIR}
    cached || die "no cached binaries (of build recipe $RECIPE) in $bindir; run: $0 build"
    local need
    for need in etcd openssl curl; do
        command -v "$need" >/dev/null 2>&1 || die "$need is missing; run: $0 build"
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local name
    for name in $components; do
        alive "$dir" "$name" && die "$name already runs for $dir (pid $(cat "$dir/$name.pid")); run: $0 stop $dir"
    done
    local t0
    t0=$(date +%s%N)

    local pki="$dir/pki" token etcd_port peer_port api_port
    rm -rf "$pki" "$dir/etcd-data"
    mkdir -p "$pki"
    make_certs "$pki"
    token=$(openssl rand -hex 24)
    (umask 077 && printf '%s,admin,admin,"system:masters"\n' "$token" >"$pki/tokens.csv")
    etcd_port=$(free_port)
    peer_port=$(free_port "$etcd_port")
    api_port=$(free_port "$etcd_port" "$peer_port")

    spawn "$dir" etcd etcd --name wirelens-test --data-dir "$dir/etcd-data" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "wirelens-test=http://127.0.0.1:$peer_port" \
        --unsafe-no-fsync
    local i
    for i in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"' && break
        running "$dir" etcd || fail_start "$dir" "etcd exited"
        [ "$i" = 100 ] && fail_start "$dir" "etcd not healthy within 10 s"
        sleep 0.1
    done

    spawn "$dir" kube-apiserver "$apiserver_bin" \
        --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
        --insecure-port 0 \
        --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
        --authorization-mode RBAC \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-cluster-ip-range 10.96.0.0/16 \
        --endpoint-reconciler-type none

    local server="https://127.0.0.1:$api_port"
    (
        umask 077
        cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wirelens-test
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: wirelens-test
  context:
    cluster: wirelens-test
    user: admin
current-context: wirelens-test
EOF
    )

    spawn "$dir" kube-controller-manager "$kcm_bin" \
        --kubeconfig "$dir/kubeconfig" \
        --leader-elect=false --controllers '*,-nodelifecycle' --port 0 --secure-port 0 \
        --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt"

    local ready=""
    for i in $(seq 1 600); do
        for name in $components; do
            running "$dir" "$name" || fail_start "$dir" "$name exited during start-up"
        done
        if [ "$(curl -s --max-time 2 --cacert "$pki/ca.crt" -H "Authorization: Bearer $token" \
            "$server/readyz" 2>/dev/null)" = ok ]; then
            ready=yes
            break
        fi
        sleep 0.1
    done
    [ -n "$ready" ] || fail_start "$dir" "kube-apiserver did not answer /readyz with ok within 60 s"

    (
        umask 077
        cat >"$dir/env" <<EOF
KUBECONFIG=$dir/kubeconfig
WIRELENS_K8S_SERVER=$server
WIRELENS_K8S_TOKEN=$token
WIRELENS_K8S_CA=$pki/ca.crt
ETCD_PORT=$etcd_port
ETCD_PID=$(cat "$dir/etcd.pid")
KUBE_APISERVER_PID=$(cat "$dir/kube-apiserver.pid")
KUBE_CONTROLLER_MANAGER_PID=$(cat "$dir/kube-controller-manager.pid")
EOF
    )
    local ms=$((($(date +%s%N) - t0) / 1000000))
    log "ready at $server after $((ms / 1000)).$((ms % 1000 / 100)) s (logs and pids in $dir)"
    echo "$dir/kubeconfig"
}

cmd_status() {
    local dir=${1:?usage: status DIR} name rc=0
    for name in $components; do
        if alive "$dir" "$name"; then
            printf '%-24s running (pid %s, rss %s kB)\n' "$name" "$(cat "$dir/$name.pid")" \
                "$(awk '/^VmRSS/ {print $2}' "/proc/$(cat "$dir/$name.pid")/status")"
        else
            printf '%-24s stopped\n' "$name"
            rc=1
        fi
    done
    if [ -f "$dir/env" ]; then
        # shellcheck disable=SC1091
        . "$dir/env"
        printf '%-24s %s\n' "/readyz" "$(curl -s --max-time 2 --cacert "$WIRELENS_K8S_CA" \
            -H "Authorization: Bearer $WIRELENS_K8S_TOKEN" "$WIRELENS_K8S_SERVER/readyz" || echo unreachable)"
    fi
    return $rc
}

# ---------------------------------------------------------------------------------------------
# selftest

cmd_selftest() {
    # Globals, not locals: the EXIT trap runs after this function has returned.
    dir=${1:?usage: selftest DIR} started=""
    if ! alive "$dir" kube-apiserver; then
        cmd_start "$dir" >/dev/null
        started=yes
    fi
    # shellcheck disable=SC1091
    . "$dir/env"
    ns="wirelens-selftest-$RANDOM$RANDOM" node="wirelens-selftest-node-$RANDOM"
    local body
    local failed=""
    cleanup_selftest() {
        if [ -n "$started" ]; then
            cmd_stop "$dir"
        else
            # Without a kubelet a bound pod would wait for one forever before it goes: delete the
            # namespace (no new pods can be made in it), then its pods at once.
            api DELETE "/api/v1/namespaces/$ns" >/dev/null 2>&1 || true
            api DELETE "/api/v1/namespaces/$ns/pods?gracePeriodSeconds=0" >/dev/null 2>&1 || true
            api DELETE "/api/v1/nodes/$node" >/dev/null 2>&1 || true
        fi
    }
    trap cleanup_selftest EXIT

    # api METHOD PATH [BODY [CONTENT-TYPE]]: the response body on stdout; fails on HTTP >= 400.
    api() {
        local args=(-sS --fail-with-body --max-time 10 --cacert "$WIRELENS_K8S_CA"
            -H "Authorization: Bearer $WIRELENS_K8S_TOKEN" -X "$1")
        [ $# -ge 3 ] && args+=(-H "Content-Type: ${4:-application/json}" --data-binary "$3")
        curl "${args[@]}" "$WIRELENS_K8S_SERVER$2"
    }
    # jget EXPR: evaluates a Python expression over the JSON document `d` read from stdin.
    jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
    ok() { printf 'selftest: ok   %s\n' "$*" >&2; }
    bad() { printf 'selftest: FAIL %s\n' "$*" >&2; failed=yes; }

    local t0 i
    t0=$(date +%s)
    api GET /version | jget 'd["gitVersion"]' | grep -q "v$K8S_VERSION" && ok "server version v$K8S_VERSION" ||
        bad "GET /version does not report v$K8S_VERSION"

    api POST /api/v1/namespaces "{\"metadata\":{\"name\":\"$ns\"}}" >/dev/null && ok "namespace $ns created" ||
        bad "namespace create"

    # The namespace's default ServiceAccount (made by the controller manager) must exist before
    # pods can be admitted; the Deployment controller retries until it does.
    body='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
      "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
      "template":{"metadata":{"labels":{"app":"web"}},
      "spec":{"containers":[{"name":"web","image":"example.invalid/web:1","ports":[{"containerPort":8080}]}]}}}}'
    api POST "/apis/apps/v1/namespaces/$ns/deployments" "$body" >/dev/null && ok "deployment web created" ||
        bad "deployment create"
    local rs="" pods="" pod=""
    for i in $(seq 1 300); do
        rs=$(api GET "/apis/apps/v1/namespaces/$ns/replicasets" 2>/dev/null |
            jget '" ".join(r["metadata"]["name"] for r in d["items"] if any(o["kind"]=="Deployment" and o["name"]=="web" for o in r["metadata"].get("ownerReferences",[])))') || rs=""
        pods=$(api GET "/api/v1/namespaces/$ns/pods" 2>/dev/null |
            jget '" ".join(p["metadata"]["name"] for p in d["items"] if any(o["kind"]=="ReplicaSet" for o in p["metadata"].get("ownerReferences",[])))') || pods=""
        [ -n "$rs" ] && [ "$(echo "$pods" | wc -w)" -ge 2 ] && break
        sleep 0.1
    done
    if [ -n "$rs" ] && [ "$(echo "$pods" | wc -w)" -ge 2 ]; then
        ok "controller manager made replicaset $rs and pods $pods (owner references set) in $(($(date +%s) - t0)) s"
        pod=${pods%% *}
    else
        bad "no replicaset/pods with owner references within 30 s (rs='$rs' pods='$pods')"
    fi

    body='{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
      "spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}'
    local cip
    cip=$(api POST "/api/v1/namespaces/$ns/services" "$body" | jget 'd["spec"]["clusterIP"]') || cip=""
    case "$cip" in 10.96.*) ok "service web got ClusterIP $cip" ;; *) bad "service ClusterIP '$cip'" ;; esac

    api POST /api/v1/nodes "{\"metadata\":{\"name\":\"$node\"}}" >/dev/null && ok "node $node created" ||
        bad "node create"
    body='{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.7"},{"type":"Hostname","address":"'$node'"}]}}'
    [ "$(api PATCH "/api/v1/nodes/$node/status" "$body" application/merge-patch+json |
        jget 'd["status"]["addresses"][0]["address"]')" = 10.0.0.7 ] && ok "node address set via nodes/$node/status" ||
        bad "node status patch"

    if [ -n "$pod" ]; then
        api POST "/api/v1/namespaces/$ns/pods/$pod/binding" \
            "{\"apiVersion\":\"v1\",\"kind\":\"Binding\",\"metadata\":{\"name\":\"$pod\"},\"target\":{\"kind\":\"Node\",\"name\":\"$node\"}}" \
            >/dev/null && ok "pod $pod bound to $node" || bad "pod binding"
        local now
        now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        body='{"status":{"phase":"Running","podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"}],"hostIP":"10.0.0.7",
          "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"'$now'"}]}}'
        [ "$(api PATCH "/api/v1/namespaces/$ns/pods/$pod/status" "$body" application/merge-patch+json |
            jget 'd["status"]["podIP"]')" = 10.244.1.5 ] && ok "pod IP 10.244.1.5 set via pods/$pod/status" ||
            bad "pod status patch"
    fi

    local kind
    kind=$(api GET /apis/discovery.k8s.io/v1beta1/endpointslices | jget 'd["kind"]') || kind=""
    [ "$kind" = EndpointSliceList ] && ok "discovery.k8s.io/v1beta1 endpointslices listed" ||
        bad "endpointslice list ('$kind')"
    if [ -n "$pod" ]; then
        local eps=""
        for i in $(seq 1 150); do
            eps=$(api GET "/apis/discovery.k8s.io/v1beta1/namespaces/$ns/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb" 2>/dev/null |
                jget '" ".join(a for s in d["items"] for e in (s.get("endpoints") or []) if e.get("conditions",{}).get("ready") for a in e["addresses"])') || eps=""
            [ "$eps" = 10.244.1.5 ] && break
            sleep 0.2
        done
        [ "$eps" = 10.244.1.5 ] && ok "endpointslice of service web lists the ready pod 10.244.1.5" ||
            bad "endpointslice of service web: '$eps'"
    fi

    if [ -n "$failed" ]; then
        tails "$dir"
        die "selftest failed"
    fi
    log "selftest passed in $(($(date +%s) - t0)) s"
}

case "${1:-}" in
    build) cmd_build ;;
    start) cmd_start "${2:?usage: $0 start DIR}" ;;
    stop) cmd_stop "${2:?usage: $0 stop DIR}" ;;
    status) cmd_status "${2:?usage: $0 status DIR}" ;;
    selftest) cmd_selftest "${2:?usage: $0 selftest DIR}" ;;
    *) usage ;;
esac
