#!/usr/bin/env python3
"""Asserts the `restricted` Pod Security profile on every pod template of rendered manifests.

Usage: validate-deploy-pods.py RENDERED.yaml...  (scripts/validate-deploy renders the overlays first).

kubernetes-validate checks types and field names; it cannot know that a field is *missing*. The API
server of a namespace labelled `pod-security.kubernetes.io/enforce: restricted` refuses such pods at
run time, long after CI was green, so this fails first and names the object and the field. The rules
are those of the profile (kubernetes.io/docs/concepts/security/pod-security-standards), plus ours:
a read-only root filesystem unless the pod template says why not (annotation
`ifox.dev/writable-root-filesystem: <reason>`), and CPU and memory requests and a memory limit on every
container. A rendered overlay must also hold a Namespace that enforces `restricted`.
"""

import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
# Volume types the restricted profile allows (hostPath and the rest are refused).
VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}
WRITABLE_ROOT = "ifox.dev/writable-root-filesystem"


def pod_templates(obj):
    """(label, pod template metadata, pod spec) of each pod an object describes."""
    kind = obj.get("kind")
    name = f"{kind}/{obj.get('metadata', {}).get('name', '?')}"
    spec = obj.get("spec") or {}
    if kind in WORKLOADS:
        template = spec.get("template") or {}
        yield name, template.get("metadata") or {}, template.get("spec") or {}
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        yield name, template.get("metadata") or {}, template.get("spec") or {}
    elif kind == "Pod":
        yield name, obj.get("metadata") or {}, spec


def pod_problems(meta, spec):
    """Every way one pod template falls short, as (where, what) pairs."""
    pod_ctx = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield "pod", f"spec.{field} must not be true"
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= VOLUME_TYPES:
            yield "pod", f"volume {volume.get('name')!r} is of a type the profile refuses: {sorted(kinds - VOLUME_TYPES)}"
    pod_seccomp = (pod_ctx.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_OK:
        yield "pod", f"securityContext.seccompProfile.type {pod_seccomp!r} must be RuntimeDefault or Localhost"
    if pod_ctx.get("runAsUser") == 0:
        yield "pod", "securityContext.runAsUser must not be 0"
    writable_ok = bool(((meta.get("annotations") or {}).get(WRITABLE_ROOT) or "").strip())
    containers = [
        (group, c)
        for group in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(group) or []
    ]
    if not spec.get("containers"):
        yield "pod", "has no containers"
    for group, c in containers:
        where = f"{group[:-1]} {c.get('name', '?')!r}"
        yield from ((where, p) for p in container_problems(c, pod_ctx, pod_seccomp, writable_ok))


def container_problems(c, pod_ctx, pod_seccomp, writable_ok):
    ctx = c.get("securityContext") or {}
    run_as_non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if run_as_non_root is not True:
        yield "securityContext.runAsNonRoot must be true (on the container or the pod)"
    if ctx.get("runAsUser") == 0:
        yield "securityContext.runAsUser must not be 0"
    seccomp = (ctx.get("seccompProfile") or {}).get("type", pod_seccomp)
    if seccomp not in SECCOMP_OK:
        yield "securityContext.seccompProfile.type must be RuntimeDefault or Localhost (on the container or the pod)"
    if ctx.get("allowPrivilegeEscalation") is not False:
        yield "securityContext.allowPrivilegeEscalation must be false"
    caps = ctx.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        yield "securityContext.capabilities.drop must contain ALL"
    added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        yield f"securityContext.capabilities.add may hold only NET_BIND_SERVICE, not {sorted(added)}"
    if ctx.get("privileged"):
        yield "securityContext.privileged must not be true"
    if ctx.get("readOnlyRootFilesystem") is not True and not writable_ok:
        yield f"securityContext.readOnlyRootFilesystem must be true (or the pod template annotated {WRITABLE_ROOT}: <reason>)"
    for port in c.get("ports") or []:
        if port.get("hostPort"):
            yield f"port {port.get('name') or port.get('containerPort')} must not set hostPort"
    resources = c.get("resources") or {}
    for section, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
        if key not in (resources.get(section) or {}):
            yield f"resources.{section}.{key} must be set"


def check(path):
    """Problems of one rendered file, and how many pod templates it held."""
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if isinstance(d, dict)]
    problems, pods = [], 0
    for obj in docs:
        for name, meta, spec in pod_templates(obj):
            pods += 1
            problems += [f"{path}: {name}: {where}: {what}" for where, what in pod_problems(meta, spec)]
    namespaces = [d for d in docs if d.get("kind") == "Namespace"]
    for ns in namespaces:
        labels = (ns.get("metadata") or {}).get("labels") or {}
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            problems.append(f"{path}: Namespace/{ns['metadata'].get('name')}: label pod-security.kubernetes.io/enforce must be restricted")
    if not namespaces:
        problems.append(f"{path}: no Namespace: the overlay must create its namespace with the restricted label")
    if pods == 0:
        problems.append(f"{path}: no pod template found: nothing was checked")
    return problems, pods


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        problems, pods = check(path)
        for p in problems:
            print(f"FAIL {p}", file=sys.stderr)
        if problems:
            failed = True
        else:
            print(f"ok   {path}: {pods} pod templates meet the restricted profile")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
