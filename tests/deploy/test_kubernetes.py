"""deploy/k8s, built as kustomize builds it, against the Kubernetes JSON schemas (kubernetes-validate), offline."""

from __future__ import annotations

import copy
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.deploy import kustomize
from tests.deploy.manifests import K8S_BUILDS, kubernetes, uses_image

# The oldest Kubernetes these manifests claim (every API they use is GA there) and the newest bundled.
KUBERNETES_VERSIONS = ("1.28", kubernetes_validate.latest_version())
SERVICES = {"customer-service": 3001, "accounts-service": 3002, "transactions-service": 3003, "web-console": 3000}
# The services that own a database and call each other (the console only passes requests through).
DATABASE_SERVICES = {name: port for name, port in SERVICES.items() if name != "web-console"}
DATABASES = ("customers", "accounts", "transactions")
INGRESS_ROUTES = {
    "/customers": "customer-service",
    "/auth": "customer-service",
    "/accounts": "accounts-service",
    "/transfers": "transactions-service",
    "/transactions": "transactions-service",
    "/ws": "transactions-service",
    "/": "web-console",
}
KUBECTL_TIMEOUT_S = 60


def by_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == kind}


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(build: str, version: str) -> None:
    """Strict schemas: a misspelt or unknown field fails too, not only a wrong type."""
    resources = kubernetes(build)
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda deployment: deployment["spec"]["template"]["spec"]["containers"][0].update(livenessprobe={}),
        lambda deployment: deployment["spec"].update(replicas="two"),
        lambda deployment: deployment["spec"].pop("selector"),
    ],
    ids=["misspelt field", "wrong type", "missing required field"],
)
def test_the_schema_check_catches_a_broken_manifest(break_it) -> None:
    deployment = copy.deepcopy(by_kind(kubernetes("base"), "Deployment")["transactions-service"])
    break_it(deployment)

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) not installed")
@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_the_renderer_builds_what_kubectl_kustomize_builds(build: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S_BUILDS[build])],
        capture_output=True,
        text=True,
        timeout=KUBECTL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    theirs = [document for document in yaml.safe_load_all(result.stdout) if document]

    def key(resource: dict) -> tuple[str, str]:
        return resource["kind"], resource["metadata"]["name"]

    assert sorted(kubernetes(build), key=key) == sorted(theirs, key=key)


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_each_service_runs_two_replicas_with_probes_and_resources(build: str) -> None:
    deployments = by_kind(kubernetes(build), "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] == 2, name
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["startupProbe"]["httpGet"]["path"] == "/health/ping"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["ports"] == [{"name": "http", "containerPort": SERVICES[name]}]
        assert set(container["resources"]) == {"requests", "limits"}
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, f"{name} {bound}"


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_every_container_is_bounded_and_runs_the_image_as_non_root(build: str) -> None:
    for resource in kubernetes(build):
        for container in kustomize.containers(resource):
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, resource["metadata"]["name"]
            if uses_image(container["image"]):
                pod = resource["spec"]["template"]["spec"]
                assert pod["securityContext"]["runAsNonRoot"] is True
                assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_each_service_selects_its_own_serving_pods_only(build: str) -> None:
    """Not a migration Job's pod, which shares the service's name but listens on nothing."""
    resources = kubernetes(build)
    deployments, services = by_kind(resources, "Deployment"), by_kind(resources, "Service")
    pods = [
        resource["spec"]["template"]["metadata"]["labels"]
        for resource in resources
        if resource["kind"] in kustomize.POD_TEMPLATE_KINDS
    ]
    for name, port in SERVICES.items():
        selector = services[name]["spec"]["selector"]
        selected = [labels for labels in pods if selector.items() <= labels.items()]
        assert selected == [deployments[name]["spec"]["template"]["metadata"]["labels"]]
        assert services[name]["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_the_ingress_routes_banking_local_to_the_right_services(build: str) -> None:
    [ingress] = by_kind(kubernetes(build), "Ingress").values()
    [rule] = ingress["spec"]["rules"]
    routes = {path["path"]: path["backend"]["service"]["name"] for path in rule["http"]["paths"]}

    assert rule["host"] == "banking.local"
    assert routes == INGRESS_ROUTES
    assert {path["pathType"] for path in rule["http"]["paths"]} == {"Prefix"}


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_every_secret_and_config_reference_resolves(build: str) -> None:
    resources = kubernetes(build)
    secrets, config_maps = by_kind(resources, "Secret"), by_kind(resources, "ConfigMap")
    for resource in resources:
        for container in kustomize.containers(resource):
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {})
                if "secretKeyRef" in reference:
                    secret = secrets[reference["secretKeyRef"]["name"]]
                    assert reference["secretKeyRef"]["key"] in secret["stringData"], variable["name"]
                if "configMapKeyRef" in reference:
                    config = config_maps[reference["configMapKeyRef"]["name"]]
                    assert reference["configMapKeyRef"]["key"] in config["data"], variable["name"]
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_one_migration_job_per_database(build: str) -> None:
    jobs = by_kind(kubernetes(build), "Job")

    assert set(jobs) == {f"{database}-migrate" for database in DATABASES}
    for job in jobs.values():
        steps = [container["args"] for container in kustomize.containers(job)]
        assert steps[0] == ["migrate"], "the migration runs first"
        assert steps == ([["migrate"]] if build == "base" else [["migrate"], ["seed-demo"]])


def test_postgres_runs_in_the_cluster_in_the_local_overlay_only() -> None:
    assert by_kind(kubernetes("base"), "StatefulSet") == {}
    statefulsets = by_kind(kubernetes("local"), "StatefulSet")
    assert set(statefulsets) == {f"{database}-db" for database in DATABASES}
    for statefulset in statefulsets.values():
        [container] = statefulset["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "postgres:15"
        assert statefulset["spec"]["volumeClaimTemplates"]


def test_the_local_overlay_points_each_service_at_its_own_database() -> None:
    resources = kubernetes("local")
    urls = by_kind(resources, "Secret")["banking-secrets"]["stringData"]
    for database in DATABASES:
        assert f"@{database}-db:5432/{database}" in urls[f"{database.upper()}_DATABASE_URL"]


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_the_services_listen_on_all_interfaces_with_demo_endpoints_off(build: str) -> None:
    config = by_kind(kubernetes(build), "ConfigMap")["banking-config"]["data"]
    assert config["HOST"] == "0.0.0.0"
    assert config["DEMO_ENDPOINTS"] == "false"


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
@pytest.mark.parametrize("name", sorted(DATABASE_SERVICES))
def test_the_replicas_of_a_service_share_one_database_and_hold_no_state_of_their_own(build: str, name: str) -> None:
    """Two replicas are safe because everything they decide is settled in the one database they share
    (tests/faults/test_bank_check.py runs two of each under kills): so every replica reads the same
    DATABASE_URL from the Secret, and a pod keeps nothing that outlives it but scratch space."""
    deployment = by_kind(kubernetes(build), "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    database_url = {variable["name"]: variable for variable in container["env"]}["DATABASE_URL"]
    database = DATABASES[list(DATABASE_SERVICES).index(name)]

    assert database_url == {
        "name": "DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "banking-secrets", "key": f"{database.upper()}_DATABASE_URL"}},
    }
    assert [set(volume) for volume in pod["volumes"]] == [{"name", "emptyDir"}] * len(pod["volumes"])


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_one_replica_keeps_serving_through_updates_and_drains(build: str, name: str) -> None:
    resources = kubernetes(build)
    deployment = by_kind(resources, "Deployment")[name]
    budget = by_kind(resources, "PodDisruptionBudget")[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]

    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert budget["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("build", sorted(K8S_BUILDS))
def test_services_reach_each_other_through_the_service_so_calls_spread_over_replicas(build: str) -> None:
    """A peer URL names the Service (any ready replica), never one pod: a coordinator's prepare and its
    commit may reach different participant replicas, which the protocol allows."""
    resources = kubernetes(build)
    config = by_kind(resources, "ConfigMap")["banking-config"]["data"]
    services = by_kind(resources, "Service")
    for name, port in DATABASE_SERVICES.items():
        variable = name.split("-")[0].upper() + "_SERVICE_URL"
        assert config[variable] == f"http://{name}:{port}"
        assert services[name]["spec"]["ports"][0]["port"] == port


def test_a_placeholder_key_cannot_reach_production_silently() -> None:
    """The base ships placeholders with DEV_MODE off: every service would refuse them and not start."""
    from shared.auth import KeyConfigurationError, check_secrets

    base = kubernetes("base")
    keys = {
        name: value
        for name, value in by_kind(base, "Secret")["banking-secrets"]["stringData"].items()
        if name.endswith("_SECRET")
    }
    assert set(keys) == {"JWT_SECRET", "SERVICE_TOKEN_SECRET", "COORDINATOR_TOKEN_SECRET"}
    assert by_kind(base, "ConfigMap")["banking-config"]["data"].get("DEV_MODE", "false") == "false"
    for name, value in keys.items():
        others = {other: f"strong-and-distinct-{other}-0123456789abcdef" for other in keys if other != name}
        with pytest.raises(KeyConfigurationError):
            check_secrets({name: value, **others}, dev_mode=False)
    local = kubernetes("local")
    assert by_kind(local, "ConfigMap")["banking-config"]["data"]["DEV_MODE"] == "true"


def test_only_the_coordinator_and_the_participant_get_the_coordinator_key() -> None:
    deployments = by_kind(kubernetes("base"), "Deployment")
    holders = {
        name
        for name, deployment in deployments.items()
        if any(
            variable["name"] == "COORDINATOR_TOKEN_SECRET"
            for variable in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
        )
    }
    assert holders == {"accounts-service", "transactions-service"}
