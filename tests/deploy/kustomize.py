"""A small kustomize: builds deploy/k8s from its files, offline, with only the features those files use.

It does resources (files, and folders holding a kustomization.yaml), namespace, labels (added to
metadata only, kustomize's default), images (newName, newTag) and patches: a strategic merge of maps, or
JSON 6902 operations (add, copy, replace) on the resources a target picks by kind, name and labels.
Anything else fails loudly instead of being skipped, so the manifests can never silently outgrow it.
Where kubectl is installed, tests/deploy/test_kubernetes.py checks that this builds exactly what
`kubectl kustomize` builds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_KEYS = frozenset({"apiVersion", "kind", "namespace", "labels", "resources", "images", "patches"})
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "IngressClass",
        "PersistentVolume",
        "StorageClass",
        "CustomResourceDefinition",
    }
)
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})

Resource = dict[str, Any]


def load_documents(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as file:
        return [document for document in yaml.safe_load_all(file) if document]


def build(folder: Path) -> list[Resource]:
    """The resources that `kustomize build folder` outputs (in file order, not kustomize's kind order)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unsupported, f"{folder}/kustomization.yaml uses {sorted(unsupported)}, which this renderer lacks"
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (folder / entry).resolve()
        resources += build(path) if path.is_dir() else load_documents(path)
    for patch in kustomization.get("patches", []):
        _apply_patch(resources, folder, patch)
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED_KINDS:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for label in kustomization.get("labels", []):
        assert set(label) == {"pairs"}, f"labels options {sorted(set(label) - {'pairs'})} not supported"
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(label["pairs"])
    return resources


def pod_specs(resource: Resource) -> list[dict[str, Any]]:
    """The pod spec of a workload (none for other kinds)."""
    if resource["kind"] not in POD_TEMPLATE_KINDS:
        return []
    return [resource["spec"]["template"]["spec"]]


def containers(resource: Resource) -> list[dict[str, Any]]:
    """Init containers first, then containers: the order a pod runs them in."""
    return [
        container for spec in pod_specs(resource) for container in spec.get("initContainers", []) + spec["containers"]
    ]


def _apply_patch(resources: list[Resource], folder: Path, patch: dict[str, Any]) -> None:
    assert set(patch) <= {"path", "target"}, f"patch options {sorted(patch)} not supported"
    body = yaml.safe_load((folder / patch["path"]).read_text(encoding="utf-8"))
    if isinstance(body, list):  # JSON 6902: a list of operations, applied to every target
        targets = [resource for resource in resources if _matches(resource, patch["target"])]
        assert targets, f"{patch['path']}: its target matches no resource"
        for resource in targets:
            for operation in body:
                _apply_operation(resource, operation)
        return
    assert "target" not in patch, "a strategic-merge patch is matched by its own kind and name here"
    targets = [
        resource
        for resource in resources
        if resource["kind"] == body["kind"] and resource["metadata"]["name"] == body["metadata"]["name"]
    ]
    assert len(targets) == 1, f"{patch['path']}: matches {len(targets)} resources, not one"
    _merge_maps(targets[0], body)


def _matches(resource: Resource, target: dict[str, str]) -> bool:
    assert set(target) <= {"kind", "name", "labelSelector"}, f"target {sorted(target)} not supported"
    labels = resource["metadata"].get("labels", {})
    selector = [term.split("=", 1) for term in target.get("labelSelector", "").split(",") if term]
    assert all(len(term) == 2 and "!" not in term[0] for term in selector), "only key=value label selectors"
    return (
        target.get("kind", resource["kind"]) == resource["kind"]
        and target.get("name", resource["metadata"]["name"]) == resource["metadata"]["name"]
        and all(labels.get(key.strip()) == value.strip() for key, value in selector)
    )


def _merge_maps(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge restricted to maps and scalars: lists of maps merge by key in kustomize, not here."""
    for key, value in patch.items():
        assert not key.startswith("$"), f"strategic-merge directive {key} not supported"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_maps(target[key], value)
            continue
        assert not (isinstance(value, list) and any(isinstance(item, dict) for item in value)), (
            f"patching the list of maps {key!r} needs kustomize's merge keys, which this renderer lacks"
        )
        target[key] = copy.deepcopy(value)


def _apply_operation(document: Resource, operation: dict[str, Any]) -> None:
    kind = operation["op"]
    assert kind in ("add", "copy", "replace"), f"JSON patch op {kind!r} not supported"
    value = copy.deepcopy(_resolve(document, operation["from"]) if kind == "copy" else operation["value"])
    parent, key = _parent(document, operation["path"])
    if isinstance(parent, list):
        if key == "-":
            assert kind != "replace", "replace needs an index"
            parent.append(value)
        elif kind == "replace":
            parent[int(key)] = value
        else:
            parent.insert(int(key), value)
        return
    assert kind != "replace" or key in parent, f"replace of missing {operation['path']}"
    parent[key] = value


def _parent(document: Resource, pointer: str) -> tuple[Any, str]:
    steps = _steps(pointer)
    return _walk(document, steps[:-1]), steps[-1]


def _resolve(document: Resource, pointer: str) -> Any:
    return _walk(document, _steps(pointer))


def _steps(pointer: str) -> list[str]:
    assert pointer.startswith("/"), f"not a JSON pointer: {pointer!r}"
    return [step.replace("~1", "/").replace("~0", "~") for step in pointer[1:].split("/")]


def _walk(node: Any, steps: list[str]) -> Any:
    for step in steps:
        node = node[int(step)] if isinstance(node, list) else node[step]
    return node


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    assert set(image) <= {"name", "newName", "newTag"}, f"image options {sorted(image)} not supported"
    for resource in resources:
        for container in containers(resource):
            name, _, old_tag = container["image"].partition(":")
            if name == image["name"]:
                tag = image.get("newTag", old_tag)
                container["image"] = image.get("newName", name) + (f":{tag}" if tag else "")
