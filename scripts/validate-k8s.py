#!/usr/bin/env python3
"""Validates deploy/k8s offline: every object, as kustomize renders it, against the Kubernetes JSON schemas
that the kubernetes-validate package ships (strict: unknown fields are errors), and the KEDA objects against
the schemas in deploy/schemas. Also checks that every manifest file is a kustomize resource and that every
image gets a pinned tag (never `latest`) from the kustomization's `images`.

The rendering is `kubectl kustomize` when kubectl is installed; otherwise this script applies the two
kustomize features the kustomization uses (`resources`, `images`) itself, so it needs no network and no
binary beyond Python (FERRY_K8S_RENDER=python forces that path). Usage: validate-k8s.py [DIR]
(default: deploy/k8s in this repository).
Prints one line per object and a final `N passed, N failed` line; exits non-zero on any failure.
"""

import json
import os
import shutil
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

# The oldest Kubernetes the manifests must work on, and the newest the package knows.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def repo_root():
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def load_documents(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def pod_specs(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind in WORKLOAD_KINDS:
        yield spec.get("template", {}).get("spec", {})
    elif kind == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif kind == "Pod":
        yield spec


def containers(obj):
    for pod in pod_specs(obj):
        for key in ("initContainers", "containers"):
            yield from pod.get(key) or []


def split_image(image):
    """(name, tag) of an image reference; tag is None when absent (a digest counts as a tag)."""
    if "@" in image:
        return image.split("@", 1)[0], image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, None


def render_in_python(directory, kustomization):
    """kustomize's `resources` + `images`, which is all the kustomization uses (anything else is refused)."""
    supported = {"apiVersion", "kind", "resources", "images"}
    unsupported = sorted(set(kustomization) - supported)
    if unsupported:
        raise SystemExit(f"validate-k8s: kustomization uses {unsupported}; install kubectl to render it")
    images = {entry["name"]: entry for entry in kustomization.get("images") or []}
    rendered = []
    for resource in kustomization.get("resources") or []:
        for obj in load_documents(os.path.join(directory, resource)):
            for container in containers(obj):
                name, tag = split_image(container["image"])
                entry = images.get(name)
                if entry:
                    name = entry.get("newName", name)
                    tag = entry.get("digest") or entry.get("newTag") or tag
                    container["image"] = f"{name}@{tag}" if entry.get("digest") else f"{name}:{tag}" if tag else name
            rendered.append(obj)
    return rendered


def render(directory, kustomization):
    kubectl = shutil.which("kubectl")
    if kubectl and os.environ.get("FERRY_K8S_RENDER") != "python":
        result = subprocess.run(
            [kubectl, "kustomize", directory], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise SystemExit(f"validate-k8s: kubectl kustomize failed:\n{result.stderr}")
        return "kubectl kustomize", [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    return "resources + images", render_in_python(directory, kustomization)


def load_crd_schemas(root):
    schemas = {}
    for (api_version, kind), filename in {
        ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json",
        ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication.json",
    }.items():
        with open(os.path.join(root, "deploy", "schemas", filename), encoding="utf-8") as handle:
            schema = json.load(handle)
        jsonschema.Draft202012Validator.check_schema(schema)
        schemas[(api_version, kind)] = jsonschema.Draft202012Validator(schema)
    return schemas


def validate_object(obj, crd_schemas):
    """Problems with one object (empty when valid)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in crd_schemas:
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in crd_schemas[key].iter_errors(obj)
        ]
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path) or "(root)"
            problems.append(f"Kubernetes {version}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"no schema for {key[1]} {key[0]} (Kubernetes {version}); add one to deploy/schemas")
    return problems


def main():
    root = repo_root()
    directory = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(root, "deploy", "k8s")
    kustomization = load_documents(os.path.join(directory, "kustomization.yaml"))[0]
    crd_schemas = load_crd_schemas(root)
    passed, failures = 0, []

    # Every manifest file is deployed: a file outside `resources` would be silently ignored by kubectl -k.
    listed = set(kustomization.get("resources") or [])
    for name in sorted(os.listdir(directory)):
        if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml" and name not in listed:
            failures.append(f"{name}: not listed in kustomization.yaml resources")

    # Images: named without a tag in the manifests, pinned through `images`, never `latest`.
    for entry in kustomization.get("images") or []:
        tag = str(entry.get("newTag", ""))
        if not (tag or entry.get("digest")) or tag == "latest":
            failures.append(f"kustomization.yaml images {entry['name']}: newTag must name a release, not {tag!r}")

    how, objects = render(directory, kustomization)
    print(f"validate-k8s: {len(objects)} objects rendered with {how}; Kubernetes {', '.join(KUBERNETES_VERSIONS)}")
    for obj in objects:
        label = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        problems = validate_object(obj, crd_schemas)
        for container in containers(obj):
            _, tag = split_image(container.get("image", ""))
            if tag in (None, "latest"):
                problems.append(f"container {container.get('name')}: image {container.get('image')!r} has no pinned tag")
        if problems:
            failures.extend(f"{label}: {problem}" for problem in problems)
            print(f"FAIL {label}")
        else:
            passed += 1
            print(f"ok   {label}")

    for failure in failures:
        print(f"validate-k8s: {failure}", file=sys.stderr)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
