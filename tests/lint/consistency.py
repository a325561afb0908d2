"""The manifests and compose files against docker/Dockerfile and the sources (run by tests/lint.sh).

Usage: python consistency.py MANIFEST...  (from the repository root, with PyYAML: the lint virtualenv has it)

Prints one line per check, "ok    NAME" or "FAIL  NAME  (detail)"; tests/lint.sh counts them. Checks: UID/GID
and fsGroup, the port (EXPOSE, BIND_ADDR, containerPort, Services, probes), /data and /backups, every env
name used exists in crates/*/src or examples/*/src, the probe path is a route, every `sqlite-vol`
subcommand and flag used exists in the CLI, /data is a claim (never an emptyDir), one replica; and the
Litestream sidecar against compose.yaml, litestream.yml, the Dockerfile and tests/tools.sh.
"""
import glob, re, shlex, sys
import yaml

checks = []
def check(name, ok, detail=""):
    checks.append((name, bool(ok), detail))

def read(p):
    with open(p, encoding="utf-8") as f:
        return f.read()

# The Dockerfile's runtime stage: USER, ENV (with continuations), EXPOSE.
dockerfile = read("docker/Dockerfile")
runtime = dockerfile.split("FROM debian:")[-1]
joined = re.sub(r"\\\n", " ", runtime)
user = re.search(r"^USER\s+(\d+):(\d+)\s*$", joined, re.M)
uid, gid = (int(user.group(1)), int(user.group(2))) if user else (None, None)
check(f"Dockerfile USER is numeric UID:GID ({uid}:{gid})", user)
image_env = {}
for line in re.findall(r"^ENV\s+(.*)$", joined, re.M):
    for token in shlex.split(line):
        if "=" in token:
            k, v = token.split("=", 1)
            image_env[k] = v
expose = [int(p) for p in re.findall(r"^EXPOSE\s+(\d+)", joined, re.M)]
bind = image_env.get("BIND_ADDR", "")
port = int(bind.rsplit(":", 1)[1]) if ":" in bind else None
check(f"Dockerfile EXPOSE {expose} equals BIND_ADDR's port ({bind})", port is not None and expose == [port])
data_dir = image_env.get("DB_PATH")
backup_dir = image_env.get("SQLITE_VOL_BACKUP_DIR")
check(f"Dockerfile sets DB_PATH ({data_dir}) and SQLITE_VOL_BACKUP_DIR ({backup_dir})", data_dir and backup_dir)
check(f"Dockerfile creates and chowns {data_dir} and {backup_dir} to {uid}:{gid}",
      re.search(rf"chown {uid}:{gid} {re.escape(str(data_dir))} {re.escape(str(backup_dir))}", joined))

# What the code knows: env names read by non-test sources, routes, CLI subcommands and flags.
sources = "\n".join(read(p) for p in glob.glob("crates/*/src/**/*.rs", recursive=True)
                    + glob.glob("examples/*/src/**/*.rs", recursive=True))
cli = read("crates/sqlite-vol-cli/src/cli.rs")
enum = cli.split("pub enum Command {", 1)[1].split("\n}", 1)[0]
subcommands = {re.sub(r"(?<!^)([A-Z])", r"-\1", v).lower() for v in re.findall(r"^\s{4}([A-Z]\w*)\(", enum, re.M)}
flags = {"--" + f.replace("_", "-") for f in re.findall(r"pub (\w+):", cli)} | {"--help", "--version"}
routes = set(re.findall(r'\.route\("([^"]+)"', sources))

def env_in_code(name):
    return f'"{name}"' in sources

def pod_specs(doc):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind in ("StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"):
        return [spec.get("template", {}).get("spec", {})]
    if kind == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    return []

def sqlite_vol_calls(container):
    words = []
    for part in (container.get("command") or []) + (container.get("args") or []):
        words.extend(shlex.split(part, comments=True) if "\n" in part or " " in part else [part])
    calls, i = [], 0
    while i < len(words):
        if words[i] == "sqlite-vol" and i + 1 < len(words):
            j = i + 1
            while j < len(words) and words[j] not in ("||", "&&", ";", "|"):
                j += 1
            calls.append(words[i + 1:j])
            i = j
        else:
            i += 1
    return calls

docs = []
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(read(path)):
        if doc:
            docs.append((path, doc))

statefulsets = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "StatefulSet"}
services = [(p, d) for p, d in docs if d.get("kind") == "Service"]
named_ports = {}

for path, doc in docs:
    where = f'{path} {doc["kind"]}/{doc["metadata"]["name"]}'
    claims = {}
    if doc.get("kind") == "StatefulSet":
        spec = doc["spec"]
        check(f"{where}: replicas is 1 (one SQLite writer)", spec.get("replicas") == 1, spec.get("replicas"))
        headless = [d for _, d in services if d["metadata"]["name"] == spec.get("serviceName")]
        check(f"{where}: serviceName {spec.get('serviceName')} is a headless Service",
              headless and headless[0]["spec"].get("clusterIP") == "None")
        claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])}
    for pod in pod_specs(doc):
        sc = pod.get("securityContext") or {}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        ours = [c for c in pod.get("containers", []) if "sqlite-vol-accounts" in c.get("image", "")]
        if ours:
            check(f"{where}: runAsNonRoot, runAsUser {uid}, runAsGroup {gid}, fsGroup {gid} as in the Dockerfile",
                  sc.get("runAsNonRoot") is True and sc.get("runAsUser") == uid
                  and sc.get("runAsGroup") == gid and sc.get("fsGroup") == gid, sc)
        if doc.get("kind") == "StatefulSet":
            grace = pod.get("terminationGracePeriodSeconds", 30)
            check(f"{where}: terminationGracePeriodSeconds {grace} >= 10 (drain + WAL checkpoint)", grace >= 10)
        for c in pod.get("containers", []):
            cname = f'{where} container {c["name"]}'
            for e in c.get("env", []):
                check(f"{cname}: env {e['name']} is read by the code", env_in_code(e["name"]))
                if e["name"] in image_env and "value" in e:
                    check(f"{cname}: env {e['name']}={e['value']} matches the Dockerfile",
                          e["value"] == image_env[e["name"]], f"Dockerfile: {image_env[e['name']]}")
            for call in sqlite_vol_calls(c):
                sub = call[0] if call else ""
                check(f"{cname}: `sqlite-vol {' '.join(call)}` is a real subcommand", sub in subcommands, sub)
                for w in call[1:]:
                    if w.startswith("--"):
                        flag = w.split("=", 1)[0]
                        check(f"{cname}: sqlite-vol flag {flag} exists", flag in flags)
            if c not in ours:
                continue
            for p in c.get("ports", []):
                check(f"{cname}: containerPort {p['containerPort']} is BIND_ADDR's port {port}",
                      p["containerPort"] == port)
                if "name" in p:
                    named_ports[p["name"]] = p["containerPort"]
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for wanted, what in ((data_dir, "DB_PATH"), (backup_dir, "SQLITE_VOL_BACKUP_DIR")):
                vol = mounts.get(wanted)
                persistent = vol in claims or "persistentVolumeClaim" in volumes.get(vol, {})
                check(f"{cname}: {what} {wanted} is mounted from a PersistentVolumeClaim (not emptyDir)",
                      vol is not None and persistent, f"mounts: {mounts}")
            if c.get("securityContext", {}).get("readOnlyRootFilesystem"):
                check(f"{cname}: read-only root filesystem, with /tmp a volume", "/tmp" in mounts, mounts)
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                get = (c.get(probe) or {}).get("httpGet")
                if not get:
                    continue
                pport = named_ports.get(get["port"], get["port"])
                check(f"{cname}: {probe} GET {get['path']} on port {get['port']} ({pport}) is the service's route",
                      get["path"] in routes and pport == port, f"routes: {sorted(routes)}")
    if doc.get("kind") == "Pod":
        for v in doc["spec"].get("volumes", []):
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                ok = any(claim == f"{t}-{s}-0" for s, d in statefulsets.items()
                         for t in (x["metadata"]["name"] for x in d["spec"].get("volumeClaimTemplates", [])))
                check(f"{where}: claim {claim} is a StatefulSet claim (<template>-<name>-0)", ok)
    if doc.get("kind") == "CronJob":
        for c in pod_specs(doc)[0].get("containers", []):
            cmd = c.get("command", [])
            if cmd[:2] == ["kubectl", "exec"]:
                target = cmd[2]
                container = next((w.split("=", 1)[1] for w in cmd if w.startswith("--container=")), None)
                sts = statefulsets.get(target.rsplit("-", 1)[0])
                names = [x["name"] for x in sts["spec"]["template"]["spec"]["containers"]] if sts else []
                check(f"{where}: kubectl exec target {target} -c {container} is the StatefulSet's pod",
                      sts is not None and target.endswith("-0") and container in names)

for path, svc in services:
    for p in svc["spec"].get("ports", []):
        target = p.get("targetPort", p["port"])
        resolved = named_ports.get(target, target)
        check(f'{path} Service/{svc["metadata"]["name"]}: port {p["port"]} -> {target} ({resolved}) is BIND_ADDR\'s port',
              resolved == port)

# Compose: the same port and mount paths.
compose = yaml.safe_load(read("docker/compose.yaml"))
svc = compose["services"]["accounts"]
container_ports = [int(str(p).rsplit(":", 1)[1]) for p in svc.get("ports", [])]
check(f"docker/compose.yaml: published container port {container_ports} is BIND_ADDR's port {port}",
      container_ports == [port])
targets = [str(v).split(":")[1] for v in svc.get("volumes", [])]
check(f"docker/compose.yaml: named volumes at {data_dir} and {backup_dir}",
      data_dir in targets and backup_dir in targets, targets)

# Litestream sidecar: compose.litestream.yaml and litestream.yml against compose.yaml, the Dockerfile and
# the Litestream version the tests run (tests/tools.sh installs it; tests/it/litestream.rs uses litestream.yml).
ls_compose = yaml.safe_load(read("docker/compose.litestream.yaml"))
ls_services = ls_compose["services"]
ours = dict(ls_services["accounts"])
ours.pop("depends_on", None)
check("docker/compose.litestream.yaml: the accounts service is docker/compose.yaml's (plus depends_on)",
      ours == svc, {k: v for k, v in ours.items() if svc.get(k) != v})
check("docker/compose.litestream.yaml: the same volume names as docker/compose.yaml",
      ls_compose.get("volumes") == compose.get("volumes"))
ls_config = yaml.safe_load(read("docker/litestream.yml"))
ls_paths = [d["path"] for d in ls_config.get("dbs", [])]
# Litestream 0.5 ignores keys it does not know, so a 0.3-style file would run with defaults unnoticed.
ls_replicas = [d.get("replica") for d in ls_config.get("dbs", [])]
check("docker/litestream.yml is in Litestream 0.5's format: one `replica:` per database, no 0.3 keys",
      all(isinstance(r, dict) for r in ls_replicas)
      and not any("replicas" in d for d in ls_config.get("dbs", []))
      and not any(k in r for r in ls_replicas if isinstance(r, dict)
                  for k in ("snapshot-interval", "retention", "retention-check-interval")),
      ls_replicas)
check(f"docker/litestream.yml replicates {data_dir}/accounts.db (DB_PATH's database)",
      ls_paths == [f"{data_dir}/accounts.db"], ls_paths)
expanded = set(re.findall(r"\$\{(\w+)\}", re.sub(r"(?m)^\s*#.*$", "", read("docker/litestream.yml"))))
tools = read("tests/tools.sh")
pinned = re.search(r"(?m)^LITESTREAM_VERSION=(\d+\.\d+\.\d+)$", tools)
pinned = pinned and pinned.group(1)
for where in ("tests/src/offsite.rs", "tests/docker/scenarios.sh"):
    check(f"{where} looks for the Litestream tests/tools.sh installs (litestream/{pinned}/litestream)",
          pinned and f"litestream/{pinned}/litestream" in read(where))
for name in ("restore", "litestream"):
    side = ls_services[name]
    where = f"docker/compose.litestream.yaml service {name}"
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in side.get("volumes", [])}
    check(f"{where}: mounts the data volume at {data_dir} and litestream.yml at /etc/litestream.yml",
          mounts.get(data_dir) == "data" and mounts.get("/etc/litestream.yml") == "./litestream.yml", mounts)
    missing = sorted(expanded - set(side.get("environment") or {}))
    check(f"{where}: sets every variable litestream.yml expands", not missing, missing)
    tag = side.get("image", "").rsplit(":", 1)[-1]
    check(f"{where}: image tag {tag} is the Litestream tests/tools.sh installs ({pinned})",
          pinned and tag == pinned)
check(f"docker/compose.litestream.yaml: the sidecar runs as {uid}:{gid} like the service",
      ls_services["litestream"].get("user") == f"{uid}:{gid}")
restore_cmd = " ".join(ls_services["restore"].get("command") or [])
check("docker/compose.litestream.yaml: restore only into an empty volume, from a replica if one exists, "
      f"of {data_dir}/accounts.db, and hands the files to {uid}:{gid}",
      all(w in restore_cmd.split() for w in ("-if-db-not-exists", "-if-replica-exists",
                                             f"{data_dir}/accounts.db"))
      and f"chown -R {uid}:{gid} {data_dir}" in restore_cmd, restore_cmd)
ls_deps = {name: ls_services[name].get("depends_on") or {} for name in ("accounts", "litestream")}
check("docker/compose.litestream.yaml: the service and the sidecar wait for the restore; the service depends on "
      "the sidecar, so Compose stops the service first",
      all(ls_deps[name].get("restore", {}).get("condition") == "service_completed_successfully"
          for name in ls_deps)
      and "litestream" in ls_deps["accounts"] and "accounts" not in ls_deps["litestream"], ls_deps)

for name, ok, detail in checks:
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok or detail in ("", None) else f"  ({detail})"))
