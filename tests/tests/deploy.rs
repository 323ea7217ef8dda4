//! The Kubernetes deployment: the Helm chart `deploy/helm/wirelens` and the plain manifest
//! `deploy/manifests/wirelens.yaml`.
//!
//! - the chart lints (`--strict`) and renders with its defaults and with every option changed
//!   (`ci/all-options-values.yaml`: cert-manager, dns discovery, capture selectors, …), and the
//!   containers run exactly the command lines the agent and hub implement;
//! - every rendered object is its `k8s-openapi` type with nothing left over: it is deserialised
//!   and serialised again, and the result must equal the original (k8s-openapi ignores unknown
//!   fields, so a misspelt or misplaced field would vanish and fail here); cert-manager objects
//!   against a strict model of the fields the chart uses;
//! - RBAC is read-only (get/list/watch on exactly the kinds the agents watch), the agent is not
//!   privileged and adds exactly NET_RAW, BPF and PERFMON, the hub runs as uid 65532;
//! - the chart's certificates verify with openssl (chain, names, usages);
//! - the manifest equals a fresh render (`scripts/render-manifests --stdout`) and holds no key;
//! - a real kube-apiserver 1.20.2 (`scripts/k8s-test-cluster.sh`) accepts the default and the
//!   all-options renders in a server-side dry run (kubectl validates against the server's
//!   schema too) and keeps every field; `deploy/manifests/make-secrets.sh` makes the Secrets
//!   the manifest needs, the manifest is applied for real and the hub's pod gets created; and
//!   the chart installed with Helm keeps its certificates and token across an upgrade (`lookup`),
//!   re-issues both certificates when one is gone, and leaves nothing behind on uninstall.
//!
//! The chart is rendered by `scripts/helm-render` (Helm's Go SDK from PyPI's helm-python-sdk:
//! no registry here ships a helm binary). Its venv, openssl, kubectl and the API server binaries
//! are installed by scripts/test; under CI=true a missing one fails the test, elsewhere it says
//! so and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn cache() -> PathBuf {
    std::env::var_os("WIRELENS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/wirelens"))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/wirelens")
}

fn all_options() -> PathBuf {
    chart().join("ci/all-options-values.yaml")
}

/// True when `what` is there; otherwise fails under CI=true, or says why the test does not run.
fn require(present: bool, what: &str, fix: &str) -> bool {
    if !present {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{what} is missing: {fix}");
        eprintln!("SKIPPED (not under CI): {what} is missing; {fix}");
    }
    present
}

fn helm_sdk() -> bool {
    require(
        cache().join("helm-sdk/bin/python").exists(),
        "the Helm SDK venv (scripts/helm-render)",
        "run scripts/helm-render install",
    )
}

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn helm_render(args: &[&str]) -> String {
    run(Command::new(root().join("scripts/helm-render")).args(args))
}

/// `scripts/helm-render template` of the chart for `namespace` with the values files.
fn template(namespace: &str, values: &[&Path], json: bool) -> String {
    let chart = chart();
    let mut args = vec![
        "template",
        "wirelens",
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    for v in values {
        args.extend(["-f", v.to_str().unwrap()]);
    }
    if json {
        args.push("--json");
    }
    helm_render(&args)
}

/// The chart rendered for `namespace` with the values files, as JSON objects.
fn render(namespace: &str, values: &[&Path]) -> Vec<Value> {
    serde_json::from_str(&template(namespace, values, true)).unwrap()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the render"))
}

fn kinds_and_names(objs: &[Value]) -> BTreeSet<(String, String)> {
    objs.iter()
        .map(|o| {
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (s(&o["kind"]), s(&o["metadata"]["name"]))
        })
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap()
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(c: &Value) -> Vec<&str> {
    c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn split(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn pairs(s: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

// ---------------------------------------------------------------------------------------------
// lint, render, command lines, security

#[test]
fn chart_lints_and_renders_the_fixed_command_lines() {
    if !helm_sdk() {
        return;
    }
    let c = chart();
    let lint = helm_render(&["lint", c.to_str().unwrap(), "--namespace", "wirelens"]);
    assert!(lint.contains("no failures"), "{lint}");
    let lint = helm_render(&[
        "lint",
        c.to_str().unwrap(),
        "--namespace",
        "obs",
        "-f",
        all_options().to_str().unwrap(),
    ]);
    assert!(lint.contains("no failures"), "{lint}");

    // Defaults.
    let objs = render("wirelens", &[]);
    assert_eq!(
        kinds_and_names(&objs),
        pairs(&[
            ("ServiceAccount", "wirelens-agent"),
            ("ServiceAccount", "wirelens-hub"),
            ("Secret", "wirelens-agent-tls"),
            ("Secret", "wirelens-hub-tls"),
            ("Secret", "wirelens-hub-token"),
            ("ClusterRole", "wirelens-read-wirelens"),
            ("ClusterRoleBinding", "wirelens-read-wirelens"),
            ("Role", "wirelens-hub"),
            ("RoleBinding", "wirelens-hub"),
            ("Service", "wirelens-agents"),
            ("Service", "wirelens-hub"),
            ("DaemonSet", "wirelens-agent"),
            ("Deployment", "wirelens-hub"),
        ])
    );
    for o in &objs {
        let labels = &o["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"], "wirelens", "{}", o["metadata"]);
        assert_eq!(labels["app.kubernetes.io/instance"], "wirelens", "{}", o["metadata"]);
        if o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding" {
            assert_eq!(o["metadata"]["namespace"], "wirelens", "{}", o["metadata"]);
        }
    }

    let ds = find(&objs, "DaemonSet", "wirelens-agent");
    let agent = container(ds, "agent");
    assert_eq!(
        args(agent),
        split(
            "agent --interface any --listen 0.0.0.0:9443 \
             --tls-cert /etc/wirelens/tls/tls.crt --tls-key /etc/wirelens/tls/tls.key \
             --client-ca /etc/wirelens/tls/ca.crt --node-name $(NODE_NAME) --kubernetes \
             --store-memory 512MiB --max-memory 1GiB --export-dir /var/lib/wirelens/exports \
             --raw-ring /var/lib/wirelens/ring --raw-ring-size 1GiB"
        )
    );
    assert_eq!(
        agent["env"],
        json!([{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}])
    );
    let pod = &ds["spec"]["template"]["spec"];
    let selector = &ds["spec"]["selector"]["matchLabels"];
    assert_eq!(selector["app.kubernetes.io/name"], "wirelens");
    assert_eq!(selector["app.kubernetes.io/component"], "agent");
    assert_eq!(selector["app.kubernetes.io/instance"], "wirelens");
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&ds["spec"]["template"]["metadata"]["labels"][k], v);
    }
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], false);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(pod["serviceAccountName"], "wirelens-agent");
    assert_eq!(
        pod["tolerations"],
        json!([{"operator": "Exists"}]),
        "agents run on every node"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(agent[probe]["tcpSocket"], json!({"port": 9443}), "{probe}");
    }
    assert_eq!(
        agent["resources"],
        json!({"requests": {"cpu": "100m", "memory": "640Mi"}, "limits": {"cpu": "1", "memory": "1280Mi"}})
    );
    let sc = &agent["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(
        sc["capabilities"],
        json!({"drop": ["ALL"], "add": ["NET_RAW", "BPF", "PERFMON"]})
    );
    let mounts: BTreeMap<&str, &str> = agent["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect();
    assert_eq!(mounts["/etc/wirelens/tls"], "tls");
    assert_eq!(mounts["/sys/kernel/tracing"], "tracefs");
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes.contains(&json!({"name": "tls", "secret": {"secretName": "wirelens-agent-tls", "defaultMode": 256}}))
    );
    assert!(
        volumes.contains(&json!({"name": "tracefs", "hostPath": {"path": "/sys/kernel/tracing", "type": "Directory"}}))
    );
    assert_eq!(
        volumes.iter().filter(|v| v.get("hostPath").is_some()).count(),
        1,
        "only tracefs from the host"
    );

    let headless = find(&objs, "Service", "wirelens-agents");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["ports"][0]["port"], 9443);
    assert_eq!(&headless["spec"]["selector"], selector);

    let deploy = find(&objs, "Deployment", "wirelens-hub");
    assert_eq!(deploy["spec"]["replicas"], 1);
    let hub = container(deploy, "hub");
    assert_eq!(
        args(hub),
        split(
            "serve --listen 0.0.0.0:8898 --token-file /etc/wirelens/token/token \
             --allowed-host wirelens-hub --allowed-host wirelens-hub.wirelens --allowed-host wirelens-hub.wirelens.svc \
             --agents kube:app.kubernetes.io/name=wirelens,app.kubernetes.io/component=agent \
             --agents-namespace wirelens --agent-port 9443 \
             --agent-ca /etc/wirelens/tls/ca.crt --agent-cert /etc/wirelens/tls/tls.crt --agent-key /etc/wirelens/tls/tls.key \
             --agent-server-name wirelens-agent --agent-deadline 10 --export-dir /var/lib/wirelens/exports"
        )
    );
    let hpod = &deploy["spec"]["template"]["spec"];
    assert_eq!(hpod["securityContext"]["runAsUser"], 65532);
    assert_eq!(hpod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        hpod["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    assert_eq!(hpod["automountServiceAccountToken"], true, "kube discovery reads pods");
    assert!(hpod.get("hostNetwork").is_none() && hpod.get("hostPID").is_none());
    let hsc = &hub["securityContext"];
    assert_eq!(hsc["runAsUser"], 65532);
    assert_eq!(hsc["privileged"], false);
    assert_eq!(hsc["allowPrivilegeEscalation"], false);
    assert_eq!(hsc["readOnlyRootFilesystem"], true);
    assert_eq!(hsc["capabilities"], json!({"drop": ["ALL"]}));
    let hubsvc = find(&objs, "Service", "wirelens-hub");
    assert_eq!(hubsvc["spec"]["ports"][0]["port"], 8898);
    assert!(hubsvc["spec"].get("clusterIP").is_none(), "a normal ClusterIP service");
    let token = find(&objs, "Secret", "wirelens-hub-token");
    let token: Secret = typed(token);
    let token = &token.data.unwrap()["token"].0;
    assert_eq!(token.len(), 48);
    assert!(token.iter().all(u8::is_ascii_alphanumeric));

    // Every option changed.
    let objs = render("obs", &[&all_options()]);
    assert_eq!(
        kinds_and_names(&objs),
        pairs(&[
            ("ServiceAccount", "wirelens-agent"),
            ("ServiceAccount", "wirelens-hub"),
            ("ClusterRole", "wirelens-read-obs"),
            ("ClusterRoleBinding", "wirelens-read-obs"),
            ("Service", "wirelens-agents"),
            ("Service", "wirelens-hub"),
            ("DaemonSet", "wirelens-agent"),
            ("Deployment", "wirelens-hub"),
            ("Issuer", "wirelens-selfsigned"),
            ("Issuer", "wirelens-ca"),
            ("Certificate", "wirelens-ca"),
            ("Certificate", "wirelens-agent"),
            ("Certificate", "wirelens-hub"),
        ]),
        "cert-manager replaces the chart's TLS Secrets, the token Secret exists already, dns discovery needs no Role"
    );
    let ds = find(&objs, "DaemonSet", "wirelens-agent");
    let agent = container(ds, "agent");
    assert_eq!(
        args(agent),
        [
            split(
                "agent --interface any --listen 0.0.0.0:10443 \
                 --tls-cert /etc/wirelens/tls/tls.crt --tls-key /etc/wirelens/tls/tls.key \
                 --client-ca /etc/wirelens/tls/ca.crt --node-name $(NODE_NAME) --kubernetes \
                 --store-memory 2GiB --max-memory 3GiB --export-dir /var/lib/wirelens/exports --bpf"
            ),
            vec!["not port 22 and not (tcp port 10250)"],
            split(
                "--no-ebpf --local-cidr 10.244.0.0/16 --local-cidr 10.96.0.0/12 \
                 --capture-namespace shop --capture-namespace web \
                 --capture-pod-selector app=checkout,tier=web"
            ),
        ]
        .concat()
    );
    assert_eq!(
        agent["securityContext"]["capabilities"],
        json!({"drop": ["ALL"], "add": ["NET_RAW", "SYS_PTRACE"]}),
        "without eBPF no BPF/PERFMON; extras appended"
    );
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"], json!({"type": "Unconfined"}));
    assert!(
        !pod["volumes"].to_string().contains("hostPath"),
        "no tracefs without eBPF"
    );
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(ds["spec"]["template"]["metadata"]["labels"]["team"], "netops");
    let deploy = find(&objs, "Deployment", "wirelens-hub");
    let hub = container(deploy, "hub");
    assert_eq!(
        args(hub),
        split(
            "serve --listen 0.0.0.0:8898 --token-file /etc/wirelens/token/token \
             --allowed-host wirelens-hub --allowed-host wirelens-hub.obs --allowed-host wirelens-hub.obs.svc \
             --allowed-host wirelens.example.com --agents dns:wirelens-agents.obs.svc:10443 \
             --agent-ca /etc/wirelens/tls/ca.crt --agent-cert /etc/wirelens/tls/tls.crt --agent-key /etc/wirelens/tls/tls.key \
             --agent-server-name wirelens-agent --agent-deadline 25 --export-dir /var/lib/wirelens/exports"
        )
    );
    let hpod = &deploy["spec"]["template"]["spec"];
    assert_eq!(
        hpod["automountServiceAccountToken"], false,
        "dns discovery needs no API access"
    );
    assert!(hpod["volumes"].as_array().unwrap().contains(
        &json!({"name": "token", "secret": {"secretName": "my-wirelens-token", "defaultMode": 288,
                "items": [{"key": "token", "path": "token"}]}})
    ));
    assert_eq!(
        find(&objs, "Service", "wirelens-agents")["spec"]["ports"][0]["port"],
        10443
    );

    // A discovery mode the hub does not have is refused at render time.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "hub:\n  discovery: consul\n").unwrap();
    let out = Command::new(root().join("scripts/helm-render"))
        .args([
            "template",
            "wirelens",
            chart().to_str().unwrap(),
            "-f",
            bad.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hub.discovery must be kube or dns"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// exact k8s-openapi objects

/// cert-manager v1 objects, limited to the fields the chart uses, with unknown fields refused
/// (no cert-manager types here; the field names are cert-manager.io/v1's).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CmObject<S> {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: S,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    self_signed: Option<BTreeMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<CaIssuer>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    #[serde(rename = "isCA", skip_serializing_if = "Option::is_none")]
    is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    common_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usages: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renew_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<PrivateKey>,
    issuer_ref: IssuerRef,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateKey {
    algorithm: String,
    size: u32,
    encoding: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerRef {
    name: String,
    kind: String,
    group: String,
}

/// `v` deserialised as `T` and serialised again: equal to `v` unless a field was unknown to `T`.
fn round_trip<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Value {
    let t: T =
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{} {}: {e}", v["kind"], v["metadata"]["name"]));
    serde_json::to_value(&t).unwrap()
}

/// A Go duration as cert-manager takes it: numbers with h, m or s units.
fn go_duration(s: &str) -> bool {
    let mut digits = false;
    let mut units = false;
    for c in s.chars() {
        match c {
            '0'..='9' => digits = true,
            'h' | 'm' | 's' if digits => {
                units = true;
                digits = false;
            }
            _ => return false,
        }
    }
    units && !digits
}

fn check_cert_manager(o: &Value) -> Value {
    assert_eq!(o["apiVersion"], "cert-manager.io/v1");
    match o["kind"].as_str().unwrap() {
        "Issuer" => {
            let back = round_trip::<CmObject<IssuerSpec>>(o);
            let spec: IssuerSpec = typed(&o["spec"]);
            assert!(spec.self_signed.is_some() != spec.ca.is_some(), "one issuer type");
            back
        }
        "Certificate" => {
            let back = round_trip::<CmObject<CertificateSpec>>(o);
            let spec: CertificateSpec = typed(&o["spec"]);
            let known = [
                "server auth",
                "client auth",
                "digital signature",
                "key encipherment",
                "cert sign",
                "crl sign",
            ];
            for u in spec.usages.iter().flatten() {
                assert!(known.contains(&u.as_str()), "cert-manager key usage {u:?}");
            }
            for d in [&spec.duration, &spec.renew_before].into_iter().flatten() {
                assert!(go_duration(d), "duration {d:?}");
            }
            if let Some(k) = &spec.private_key {
                assert!(["RSA", "ECDSA", "Ed25519"].contains(&k.algorithm.as_str()));
                assert!(["PKCS1", "PKCS8"].contains(&k.encoding.as_str()));
            }
            assert_eq!(spec.issuer_ref.kind, "Issuer");
            assert_eq!(spec.issuer_ref.group, "cert-manager.io");
            back
        }
        k => panic!("cert-manager kind {k}"),
    }
}

fn check_exact(o: &Value) {
    let back = match (o["apiVersion"].as_str().unwrap(), o["kind"].as_str().unwrap()) {
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(o),
        ("v1", "Secret") => round_trip::<Secret>(o),
        ("v1", "Service") => round_trip::<Service>(o),
        ("apps/v1", "DaemonSet") => round_trip::<DaemonSet>(o),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(o),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(o),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trip::<ClusterRoleBinding>(o),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(o),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(o),
        ("cert-manager.io/v1", _) => check_cert_manager(o),
        (v, k) => panic!("{v} {k}: a kind this test does not know; add its type"),
    };
    if back != *o {
        let why = kept(o, &back, "")
            .err()
            .unwrap_or_else(|| "a value changed".to_string());
        panic!(
            "{} {} is not the same after a round trip through its type ({why}): a field is unknown or misplaced",
            o["kind"], o["metadata"]["name"]
        );
    }
}

#[test]
fn rendered_objects_are_exactly_their_kubernetes_types() {
    if !helm_sdk() {
        return;
    }
    let mut n = 0;
    for objs in [render("wirelens", &[]), render("obs", &[&all_options()])] {
        for o in &objs {
            check_exact(o);
            n += 1;
        }
    }
    assert_eq!(n, 26);

    // The check does catch a misplaced field.
    let mut ds = render("wirelens", &[])
        .into_iter()
        .find(|o| o["kind"] == "DaemonSet")
        .unwrap();
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["hostNetwork"] = json!(true);
    let back = round_trip::<DaemonSet>(&ds);
    assert_ne!(back, ds);
}

// ---------------------------------------------------------------------------------------------
// RBAC and privileges

fn rules(o: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for r in o["rules"].as_array().unwrap() {
        let verbs: BTreeSet<&str> = r["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            verbs.is_subset(&BTreeSet::from(["get", "list", "watch"])),
            "{} {}: verbs {verbs:?} are not read-only",
            o["kind"],
            o["metadata"]["name"]
        );
        for k in ["resourceNames", "nonResourceURLs"] {
            assert!(r.get(k).is_none(), "{k} in {r}");
        }
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                out.insert((g.as_str().unwrap().to_string(), res.as_str().unwrap().to_string()));
            }
        }
    }
    out
}

#[test]
fn rbac_is_read_only_and_the_agent_unprivileged() {
    if !helm_sdk() {
        return;
    }
    let watched = pairs(&[
        ("", "pods"),
        ("", "services"),
        ("", "nodes"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
        ("apps", "statefulsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ]);
    for (ns, objs) in [
        ("wirelens", render("wirelens", &[])),
        ("obs", render("obs", &[&all_options()])),
    ] {
        let mut bound = BTreeSet::new();
        for o in &objs {
            let name = o["metadata"]["name"].as_str().unwrap();
            match o["kind"].as_str().unwrap() {
                "ClusterRole" => assert_eq!(rules(o), watched, "ClusterRole {name}"),
                "Role" => assert_eq!(rules(o), pairs(&[("", "pods")]), "Role {name}"),
                "ClusterRoleBinding" | "RoleBinding" => {
                    let role = &o["roleRef"];
                    assert_eq!(role["name"], o["metadata"]["name"]);
                    assert!(
                        objs.iter()
                            .any(|r| r["kind"] == role["kind"] && r["metadata"]["name"] == role["name"])
                    );
                    for s in o["subjects"].as_array().unwrap() {
                        assert_eq!(s["kind"], "ServiceAccount");
                        assert_eq!(s["namespace"], ns);
                        bound.insert(format!(
                            "{}:{}",
                            role["kind"].as_str().unwrap(),
                            s["name"].as_str().unwrap()
                        ));
                    }
                }
                _ => {}
            }
            if let Some(spec) = o["spec"]["template"]["spec"].as_object() {
                for c in spec["containers"].as_array().unwrap() {
                    let sc = &c["securityContext"];
                    assert_eq!(sc["privileged"], false, "{name}");
                    assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
                    assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
                    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
                }
                assert!(spec.get("initContainers").is_none());
            }
        }
        let expect: BTreeSet<String> = if ns == "wirelens" {
            ["ClusterRole:wirelens-agent", "Role:wirelens-hub"]
                .map(String::from)
                .into()
        } else {
            ["ClusterRole:wirelens-agent"].map(String::from).into()
        };
        assert_eq!(bound, expect, "who is bound to what ({ns})");
    }
    let objs = render("wirelens", &[]);
    let agent = container(find(&objs, "DaemonSet", "wirelens-agent"), "agent");
    assert_eq!(
        agent["securityContext"]["capabilities"]["add"],
        json!(["NET_RAW", "BPF", "PERFMON"])
    );
}

// ---------------------------------------------------------------------------------------------
// certificates

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Checks an agent and a hub TLS Secret (as `data` maps of raw bytes): one CA, the agent's
/// certificate named wirelens-agent for a server, the hub's CN wirelens-hub for a client, each
/// key matching its certificate.
fn check_tls_pair(agent: &BTreeMap<String, Vec<u8>>, hub: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(agent["ca.crt"], hub["ca.crt"], "one CA");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_string()
    };
    let ca = write("ca.crt", &agent["ca.crt"]);
    for (who, data, purpose) in [("agent", agent, "sslserver"), ("hub", hub, "sslclient")] {
        let crt = write(&format!("{who}.crt"), &data["tls.crt"]);
        for purpose in [purpose, "sslserver", "sslclient"] {
            let (ok, text) = openssl(&["verify", "-CAfile", &ca, "-purpose", purpose, &crt], None);
            assert!(ok, "{who} certificate, purpose {purpose}: {text}");
        }
        let (ok, text) = openssl(
            &[
                "x509",
                "-in",
                &crt,
                "-noout",
                "-subject",
                "-ext",
                "subjectAltName,extendedKeyUsage",
            ],
            None,
        );
        assert!(ok, "{text}");
        let compact: String = text.split_whitespace().collect();
        assert!(compact.contains(&format!("CN=wirelens-{who}")), "{who}: {text}");
        assert!(compact.contains(&format!("DNS:wirelens-{who}")), "{who}: {text}");
        assert!(
            compact.contains("TLSWebServerAuthentication,TLSWebClientAuthentication"),
            "{who}: {text}"
        );
        // The key belongs to the certificate.
        let (_, cert_pub) = openssl(&["x509", "-in", &crt, "-noout", "-pubkey"], None);
        let (ok, key_pub) = openssl(&["pkey", "-pubout"], Some(&data["tls.key"]));
        assert!(ok, "{who} key: {key_pub}");
        assert_eq!(cert_pub, key_pub, "{who}: the key does not match the certificate");
    }
}

fn secret_data(s: &Value) -> BTreeMap<String, Vec<u8>> {
    let s: Secret = typed(s);
    s.data.unwrap().into_iter().map(|(k, v)| (k, v.0)).collect()
}

#[test]
fn generated_certificates_verify() {
    if !helm_sdk() || !require(have("openssl", &["version"]), "openssl", "apt-get install openssl") {
        return;
    }
    let objs = render("wirelens", &[]);
    let agent = find(&objs, "Secret", "wirelens-agent-tls");
    let hub = find(&objs, "Secret", "wirelens-hub-tls");
    for s in [agent, hub] {
        assert_eq!(s["type"], "kubernetes.io/tls");
        let keys: BTreeSet<&str> = s["data"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["ca.crt", "tls.crt", "tls.key"]));
    }
    check_tls_pair(&secret_data(agent), &secret_data(hub));
    // No CA key anywhere.
    assert!(!serde_json::to_string(&objs).unwrap().contains("ca.key"));
}

// ---------------------------------------------------------------------------------------------
// the plain manifest

#[test]
fn manifest_is_a_fresh_render_without_keys() {
    if !helm_sdk() {
        return;
    }
    let file = std::fs::read_to_string(root().join("deploy/manifests/wirelens.yaml")).unwrap();
    let fresh = run(Command::new(root().join("scripts/render-manifests")).arg("--stdout"));
    assert!(
        file == fresh,
        "deploy/manifests/wirelens.yaml is stale: run scripts/render-manifests (first differing line: {:?})",
        file.lines().zip(fresh.lines()).find(|(a, b)| a != b)
    );
    assert!(!file.contains("kind: Secret"), "the manifest must hold no Secret");
    assert!(!file.contains("PRIVATE KEY") && !file.contains("tls.key:"));
    // The same objects as the chart's default render, less the three Secrets.
    let values = root().join("deploy/manifests/values.yaml");
    let manifest = render("wirelens", &[&values]);
    let mut defaults: Vec<Value> = render("wirelens", &[])
        .into_iter()
        .filter(|o| o["kind"] != "Secret")
        .collect();
    let mut manifest_sorted = manifest.clone();
    let key = |o: &Value| format!("{}/{}", o["kind"], o["metadata"]["name"]);
    defaults.sort_by_key(key);
    manifest_sorted.sort_by_key(key);
    assert_eq!(manifest_sorted, defaults);
    // And the YAML text is what the chart renders (the file is header + render).
    assert!(file.ends_with(&template("wirelens", &[&values], false)));
}

// ---------------------------------------------------------------------------------------------
// a real API server

fn k8s_binaries_cached() -> bool {
    cache().join("k8s/1.20.2/kube-apiserver").exists()
}

/// A cluster started in its own directory, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(root().join("scripts/k8s-test-cluster.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        let cluster = Cluster { dir };
        assert!(
            out.status.success(),
            "k8s-test-cluster.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn kubectl(&self) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", self.dir.path().join("kubeconfig"));
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/k8s-test-cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// Every field of `sent` is in `stored` with the same value (the server adds defaults, and
/// drops a `false` it stores as absent).
fn kept(sent: &Value, stored: &Value, path: &str) -> Result<(), String> {
    match (sent, stored) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => kept(v, w, &format!("{path}.{k}"))?,
                    None if *v == Value::Bool(false) => {}
                    None => return Err(format!("{path}.{k} was dropped")),
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                kept(v, w, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if sent == stored => Ok(()),
        _ => Err(format!("{path}: sent {sent}, stored {stored}")),
    }
}

/// `kubectl apply --dry-run=server` of `objs`: the server validates and admits them without
/// storing; kubectl also validates them against the server's OpenAPI schema (unknown fields
/// fail). Every sent field must come back.
fn dry_run(cluster: &Cluster, objs: &[Value]) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objs});
    let mut child = cluster
        .kubectl()
        .args(["apply", "--dry-run=server", "-o", "json", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dry run refused:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = back["items"].as_array().unwrap();
    assert_eq!(items.len(), objs.len());
    for o in objs {
        let stored = items
            .iter()
            .find(|s| s["kind"] == o["kind"] && s["metadata"]["name"] == o["metadata"]["name"])
            .unwrap_or_else(|| panic!("{} {} not in the answer", o["kind"], o["metadata"]["name"]));
        if let Err(e) = kept(
            o,
            stored,
            &format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"]),
        ) {
            panic!("the API server did not keep a field: {e}");
        }
    }
}

#[test]
fn api_server_accepts_the_chart_and_the_manifest() {
    if !helm_sdk()
        || !require(
            k8s_binaries_cached(),
            "the kube-apiserver binaries",
            "run scripts/k8s-test-cluster.sh build",
        )
        || !require(
            have("kubectl", &["version", "--client"]),
            "kubectl",
            "apt-get install kubernetes-client",
        )
        || !require(have("openssl", &["version"]), "openssl", "apt-get install openssl")
    {
        return;
    }
    let t0 = Instant::now();
    let defaults = render("wirelens", &[]);
    // cert-manager's CRDs are not on this server: the all-options render without them.
    let options: Vec<Value> = render("obs", &[&all_options()])
        .into_iter()
        .filter(|o| o["apiVersion"] != "cert-manager.io/v1")
        .collect();
    let cluster = Cluster::start();
    eprintln!("API server up in {:.1} s", t0.elapsed().as_secs_f64());
    let version = run(cluster.kubectl().args(["version", "-o", "json"]));
    assert!(version.contains("\"gitVersion\": \"v1.20.2\""), "{version}");

    run(cluster.kubectl().args(["create", "namespace", "obs"]));
    dry_run(&cluster, &options);

    // The kubectl route: make-secrets.sh makes the namespace (labelled for Pod Security) and
    // the three Secrets the manifest expects, and refuses to replace them afterwards.
    let mut make = Command::new(root().join("deploy/manifests/make-secrets.sh"));
    make.arg("wirelens")
        .env("KUBECONFIG", cluster.dir.path().join("kubeconfig"));
    run(&mut make);
    let again = make.output().unwrap();
    assert!(
        !again.status.success(),
        "make-secrets.sh must refuse to replace existing Secrets"
    );
    let ns: Value = serde_json::from_str(&run(cluster.kubectl().args([
        "get",
        "namespace",
        "wirelens",
        "-o",
        "json",
    ])))
    .unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let get_secret = |name: &str| -> BTreeMap<String, Vec<u8>> {
        let v: Value = serde_json::from_str(&run(cluster
            .kubectl()
            .args(["-n", "wirelens", "get", "secret", name, "-o", "json"])))
        .unwrap();
        secret_data(&v)
    };
    check_tls_pair(&get_secret("wirelens-agent-tls"), &get_secret("wirelens-hub-tls"));
    let token = &get_secret("wirelens-hub-token")["token"];
    assert_eq!(token.len(), 48);
    assert!(token.iter().all(u8::is_ascii_hexdigit));

    // The chart's default render (its Secrets would replace those in a real install).
    dry_run(&cluster, &defaults);

    let manifest = root().join("deploy/manifests/wirelens.yaml");
    run(cluster.kubectl().args(["apply", "-f", manifest.to_str().unwrap()]));
    // The controller manager makes the hub's ReplicaSet and pod (no kubelet runs it).
    let deadline = Instant::now() + Duration::from_secs(30);
    let pod = loop {
        let pods: Value = serde_json::from_str(&run(cluster.kubectl().args([
            "-n",
            "wirelens",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=hub",
            "-o",
            "json",
        ])))
        .unwrap();
        if let Some(p) = pods["items"].as_array().unwrap().first() {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "no hub pod within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(pod["spec"]["serviceAccountName"], "wirelens-hub");
    assert_eq!(pod["spec"]["containers"][0]["args"][0], "serve");
    let applied = render("wirelens", &[&root().join("deploy/manifests/values.yaml")]);
    for o in &applied {
        let kind = o["kind"].as_str().unwrap();
        let name = o["metadata"]["name"].as_str().unwrap();
        let mut get = cluster.kubectl();
        get.args(["get", kind, name, "-o", "json"]);
        if o["metadata"]["namespace"].is_string() {
            get.args(["-n", "wirelens"]);
        }
        let stored: Value = serde_json::from_str(&run(&mut get)).unwrap();
        if let Err(e) = kept(o, &stored, &format!("{kind}/{name}")) {
            panic!("the API server did not keep a field of the applied manifest: {e}");
        }
    }
    helm_release_route(&cluster);
    eprintln!("API server checks done in {:.1} s", t0.elapsed().as_secs_f64());
}

fn release(cluster: &Cluster, args: &[&str]) -> Value {
    let out = run(Command::new(root().join("scripts/helm-render"))
        .arg("release")
        .args(args)
        .env("KUBECONFIG", cluster.dir.path().join("kubeconfig")));
    serde_json::from_str(&out).unwrap()
}

/// `helm install`, `upgrade` and `uninstall` (Helm's SDK) against the API server: the chart's
/// certificates and token are made at install, read back by `lookup` and kept on upgrade, and
/// re-issued together (a new CA) when one TLS Secret is gone.
fn helm_release_route(cluster: &Cluster) {
    let ns = "helmed";
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let secrets = || -> Vec<BTreeMap<String, Vec<u8>>> {
        ["wirelens-agent-tls", "wirelens-hub-tls", "wirelens-hub-token"]
            .iter()
            .map(|name| {
                let v: Value = serde_json::from_str(&run(cluster
                    .kubectl()
                    .args(["-n", ns, "get", "secret", name, "-o", "json"])))
                .unwrap();
                secret_data(&v)
            })
            .collect()
    };
    let rel = release(cluster, &["install", "wirelens", chart, "--namespace", ns]);
    assert_eq!(
        (&rel["revision"], &rel["status"]),
        (&json!(1), &json!("deployed")),
        "{rel}"
    );
    let notes = rel["notes"].as_str().unwrap();
    assert!(
        notes.contains("kubectl -n helmed port-forward svc/wirelens-hub 8898"),
        "{notes}"
    );
    assert!(
        notes.contains(
            "claude mcp add --transport http wirelens http://127.0.0.1:8898/mcp --header \"Authorization: Bearer \
             $(kubectl -n helmed get secret wirelens-hub-token -o jsonpath='{.data.token}' | base64 -d)\""
        ),
        "{notes}"
    );
    let first = secrets();
    check_tls_pair(&first[0], &first[1]);

    let rel = release(cluster, &["upgrade", "wirelens", chart, "--namespace", ns]);
    assert_eq!(rel["revision"], 2, "{rel}");
    assert!(
        secrets() == first,
        "an upgrade must keep the certificates and the token"
    );

    run(cluster
        .kubectl()
        .args(["-n", ns, "delete", "secret", "wirelens-hub-tls"]));
    let rel = release(cluster, &["upgrade", "wirelens", chart, "--namespace", ns]);
    assert_eq!(rel["revision"], 3, "{rel}");
    let reissued = secrets();
    check_tls_pair(&reissued[0], &reissued[1]);
    assert_ne!(reissued[0]["ca.crt"], first[0]["ca.crt"], "a new CA for both");
    assert_ne!(reissued[0]["tls.key"], first[0]["tls.key"]);
    assert_eq!(reissued[2], first[2], "the token is kept");

    release(cluster, &["uninstall", "wirelens", "--namespace", ns]);
    // Every object of the chart is gone (not only those listed by `get all`; the service-account
    // token Secrets the controller made are deleted by it in its own time and not checked).
    for o in render(ns, &[]) {
        let kind = o["kind"].as_str().unwrap();
        let name = o["metadata"]["name"].as_str().unwrap();
        let mut get = cluster.kubectl();
        get.args(["get", kind, name, "--ignore-not-found", "-o", "name"]);
        if o["metadata"]["namespace"].is_string() {
            get.args(["-n", ns]);
        }
        let left = run(&mut get);
        assert!(left.trim().is_empty(), "left after uninstall: {left}");
    }
}
