#!/usr/bin/env python3
"""Checks packaging/kubernetes offline (no cluster): every document well formed, and the fields
that make the deployment work agree with each other and with the programs:

- ports: the containers' ports, the probes, the Service and the monitors name the ports the
  configuration (in the ConfigMap) listens on;
- probes: /readyz for readiness and /healthz for liveness on the metrics listener;
- volumes: every mount has a volume and every volume a mount; the cache is mounted at the
  configuration's data_dir; every file the configuration names (token, CA, certificates) is a
  key of the Secret mounted there; ConfigMap keys used by subPath exist;
- resources and security: requests for CPU and memory, a memory limit, no privilege
  escalation, a read-only root, all capabilities dropped (the init container adds CHOWN only),
  the programs run as the image's user (packaging/docker/Dockerfile);
- the agent: host network with cluster DNS, the supernode URL names the Service's https port;
  its init container's script, run here against a temporary directory, writes a hosts.toml
  per registry that containerd can read (parsed with tomllib) and leaves foreign files alone;
- the configurations pass the built programs' --check-config.

    check_kubernetes.py BUILD_DIR   (docs/operations.md "Kubernetes")
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "packaging" / "kubernetes"
NAMESPACE = "layerswarm"
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def load():
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            doc["_file"] = path.name
            docs.append(doc)
    return docs


def image_uid():
    text = (ROOT / "packaging" / "docker" / "Dockerfile").read_text()
    match = re.search(r"useradd .*--uid (\d+)", text)
    return int(match.group(1)) if match else None


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def check_workload(w, by_kind, uid, build):
    name = w["metadata"]["name"]
    spec = pod_spec(w)
    labels = w["spec"]["template"]["metadata"]["labels"]
    for k, v in w["spec"]["selector"]["matchLabels"].items():
        check(labels.get(k) == v, f"{name}: selector {k}={v} does not match the pod's labels")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
    used = set()
    pod_security = spec.get("securityContext", {})
    check(pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          f"{name}: no RuntimeDefault seccomp profile")
    containers = spec.get("initContainers", []) + spec["containers"]
    for c in containers:
        cname = f"{name}/{c['name']}"
        check(c.get("imagePullPolicy") == "IfNotPresent", f"{cname}: imagePullPolicy")
        requests = c.get("resources", {}).get("requests", {})
        check("cpu" in requests and "memory" in requests, f"{cname}: no cpu/memory requests")
        check("memory" in c.get("resources", {}).get("limits", {}), f"{cname}: no memory limit")
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, f"{cname}: privilege escalation")
        check(sc.get("readOnlyRootFilesystem") is True, f"{cname}: writable root filesystem")
        caps = sc.get("capabilities", {})
        check(caps.get("drop") == ["ALL"], f"{cname}: capabilities not all dropped")
        check(caps.get("add", []) in ([], ["CHOWN"]), f"{cname}: adds {caps.get('add')}")
        for m in c.get("volumeMounts", []):
            used.add(m["name"])
            check(m["name"] in volumes or m["name"] in claims,
                  f"{cname}: mount {m['name']} has no volume")
            if "subPath" in m and m["name"] in volumes and "configMap" in volumes[m["name"]]:
                cm = by_kind.get(("ConfigMap", volumes[m["name"]]["configMap"]["name"]))
                check(cm is not None and m["subPath"] in cm.get("data", {}),
                      f"{cname}: ConfigMap key {m['subPath']} missing")
    for v in volumes:
        check(v in used, f"{name}: volume {v} is mounted nowhere")
    for c in claims:
        check(c in used, f"{name}: volume claim {c} is mounted nowhere")

    main = spec["containers"][0]
    sc = {**pod_security, **main.get("securityContext", {})}
    check(sc.get("runAsNonRoot") is True, f"{name}: may run as root")
    check(sc.get("runAsUser") == uid, f"{name}: runs as {sc.get('runAsUser')}, the image's user is {uid}")
    program, flag, config_path = main["args"]
    check(flag == "--config", f"{name}: args {main['args']}")
    mounts = {m["mountPath"]: m for m in main.get("volumeMounts", [])}
    config_mount = mounts.get(config_path)
    if not check(config_mount is not None, f"{name}: {config_path} is not mounted"):
        return None
    cm = by_kind[("ConfigMap", volumes[config_mount["name"]]["configMap"]["name"])]
    config = json.loads(cm["data"][config_mount["subPath"]])

    # --check-config with the built program.
    role = program.removeprefix("layerswarm-")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(config, f)
        f.flush()
        run = subprocess.run([str(pathlib.Path(build) / role / program), "--config", f.name,
                              "--check-config"], capture_output=True, text=True)
        check(run.returncode == 0, f"{name}: --check-config: {run.stdout}{run.stderr}")

    # Ports and probes.
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    metrics = port_of(config["metrics_listen"])
    check(ports.get("metrics") == metrics, f"{name}: port metrics != metrics_listen {metrics}")
    check(port_of(config["p2p_listen"]) in ports.values(), f"{name}: p2p port not declared")
    check(port_of(config["listen"]) in ports.values(), f"{name}: listen port not declared")
    if "tls" in config:
        check(ports.get("https") == port_of(config["tls"]["listen"]), f"{name}: https port")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = main.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path, f"{name}: {probe} path {get.get('path')}")
        check(ports.get(get.get("port")) == metrics, f"{name}: {probe} not on the metrics port")

    # The cache and the secret files.
    check(config["data_dir"] in mounts, f"{name}: data_dir {config['data_dir']} is not mounted")
    files = [config.get("token_file"), config.get("supernode_ca_file")]
    files += [config.get("tls", {}).get(k) for k in ("cert", "key")]
    files += [config.get("site", {}).get(k) for k in ("ca_cert", "ca_key")]
    for path in filter(None, files):
        mount = mounts.get(os.path.dirname(path))
        if not check(mount is not None, f"{name}: {path} is under no mount"):
            continue
        secret = by_kind.get(("Secret", volumes[mount["name"]].get("secret", {}).get("secretName")))
        check(secret is not None and os.path.basename(path) in secret.get("stringData", {}),
              f"{name}: {path} is not a key of the Secret mounted there")
    return config, ports, labels


def check_containerd_script(agent, config):
    spec = pod_spec(agent)
    init = spec["initContainers"][0]
    env = {e["name"]: e["value"] for e in init["env"]}
    cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v)
    script = K8S_DOCS[("ConfigMap", cm_name)]["data"]["containerd-hosts.sh"]
    check(str(port_of(config["listen"])) == env["MIRROR_PORT"], "MIRROR_PORT != the agent's listen port")
    check(env["CACHE_DIR"] == config["data_dir"], "the init container's CACHE_DIR != data_dir")
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    certs_mount = next((m for m in init["volumeMounts"] if m["mountPath"] == env["CERTS_D"]), None)
    if check(certs_mount is not None, "the init container does not mount CERTS_D"):
        check(host_paths.get(certs_mount["name"]) == "/etc/containerd/certs.d",
              "CERTS_D is not the host's /etc/containerd/certs.d")
    with tempfile.TemporaryDirectory() as tmp:
        certs = pathlib.Path(tmp, "certs.d")
        cache = pathlib.Path(tmp, "cache")
        cache.mkdir()
        (certs / "quay.io").mkdir(parents=True)
        foreign = 'server = "https://quay.io"\n# the operator\'s own\n'
        (certs / "quay.io" / "hosts.toml").write_text(foreign)
        run_env = {**env, "PATH": os.environ["PATH"], "CERTS_D": str(certs),
                   "CACHE_DIR": str(cache), "CACHE_OWNER": f"{os.getuid()}:{os.getgid()}"}
        for attempt in (1, 2):  # the second run replaces its own files
            run = subprocess.run(["sh", "-c", script], env=run_env, capture_output=True, text=True)
            check(run.returncode == 0, f"containerd-hosts.sh run {attempt}: {run.stderr}")
        check((certs / "quay.io" / "hosts.toml").read_text() == foreign,
              "containerd-hosts.sh replaced a hosts.toml it did not write")
        mirror = f"http://127.0.0.1:{env['MIRROR_PORT']}"
        for registry in env["REGISTRIES"].split():
            if registry == "quay.io":
                continue
            path = certs / registry / "hosts.toml"
            if not check(path.exists(), f"no hosts.toml for {registry}"):
                continue
            toml = tomllib.loads(path.read_text())
            server = "https://registry-1.docker.io" if registry == "docker.io" else f"https://{registry}"
            check(toml.get("server") == server, f"{registry}: server {toml.get('server')}")
            host = toml.get("host", {}).get(mirror, {})
            check(sorted(host.get("capabilities", [])) == ["pull", "resolve"],
                  f"{registry}: the mirror {mirror} lacks pull/resolve: {toml}")
        check(oct(cache.stat().st_mode & 0o777) == "0o750", "the cache directory is not 0750")


def main():
    global K8S_DOCS
    build = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build")
    docs = load()
    by_kind = {}
    for d in docs:
        where = f"{d['_file']}: {d.get('kind')} {d.get('metadata', {}).get('name')}"
        if d.get("kind") == "Kustomization":
            by_kind[("Kustomization", None)] = d
            continue
        check(all(k in d for k in ("apiVersion", "kind", "metadata")), f"{where}: incomplete")
        if d.get("kind") != "Namespace":
            check(d["metadata"].get("namespace") == NAMESPACE, f"{where}: namespace")
        by_kind[(d["kind"], d["metadata"].get("name"))] = d
    K8S_DOCS = by_kind

    kustomization = by_kind[("Kustomization", None)]
    listed = set(kustomization["resources"])
    for path in K8S.glob("*.yaml"):
        if path.name not in ("kustomization.yaml", "secrets.example.yaml", "monitoring.yaml"):
            check(path.name in listed, f"kustomization.yaml does not list {path.name}")
    for r in listed:
        check((K8S / r).exists(), f"kustomization.yaml lists a missing {r}")

    uid = image_uid()
    agent = by_kind[("DaemonSet", "layerswarm-agent")]
    supernode = by_kind[("StatefulSet", "layerswarm-supernode")]
    service = by_kind[("Service", "layerswarm-supernode")]
    a = check_workload(agent, by_kind, uid, build)
    s = check_workload(supernode, by_kind, uid, build)

    spec = pod_spec(agent)
    check(spec.get("hostNetwork") is True, "agent: not on the host network")
    check(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", "agent: cluster DNS off the host network")
    if a:
        config, _, _ = a
        url = re.match(r"https://([^:/]+):(\d+)$", config["supernode"])
        if check(url is not None, f"agent: supernode URL {config['supernode']}"):
            host, port = url.group(1), int(url.group(2))
            check(host.split(".")[:2] == [service["metadata"]["name"], NAMESPACE],
                  f"agent: supernode host {host} is not the Service")
            https = [p for p in service["spec"]["ports"] if p["name"] == "https"]
            check(https and https[0]["port"] == port, "agent: supernode port != the Service's https")
        check_containerd_script(agent, config)
    if s:
        config, ports, labels = s
        check(supernode["spec"]["serviceName"] == service["metadata"]["name"], "serviceName")
        for k, v in service["spec"]["selector"].items():
            check(labels.get(k) == v, f"Service selector {k}={v} matches no supernode pod")
        for p in service["spec"]["ports"]:
            check(p["targetPort"] in ports, f"Service port {p['name']}: no container port {p['targetPort']}")
        monitor = by_kind[("ServiceMonitor", "layerswarm-supernode")]
        check(monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items(),
              "ServiceMonitor selects no Service")
        names = {p["name"] for p in service["spec"]["ports"]}
        check(all(e["port"] in names for e in monitor["spec"]["endpoints"]), "ServiceMonitor port")
    if a:
        _, ports, labels = a
        monitor = by_kind[("PodMonitor", "layerswarm-agent")]
        check(monitor["spec"]["selector"]["matchLabels"].items() <= labels.items(),
              "PodMonitor selects no agent pod")
        check(all(e["port"] in ports for e in monitor["spec"]["podMetricsEndpoints"]), "PodMonitor port")

    for f in failures:
        print("check_kubernetes:", f)
    print(f"check_kubernetes: {len(docs)} documents, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
