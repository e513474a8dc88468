"""The official Python `kubernetes` client's read-modify-replace against the embedded API server.

Usage: python3 python_replace.py ADMIN_KUBECONFIG
The client sends times back as `2026-12-07T15:42:32+00:00` where the server wrote
`...Z`: a replace must still work, a stale one must get 409 Conflict, and a replace that
changes nothing must keep the resourceVersion. Prints "ok <name>" per check, "all ok" at the end.
"""
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def expect_status(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        assert e.status == code, f"expected {code}, got {e.status}: {e.body}"
        return e
    raise AssertionError(f"expected HTTP {code}, call succeeded")


def main(kubeconfig):
    api_client = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    ns = "replace-test"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "1"}))
    read = core.read_namespaced_config_map("cm", ns)
    assert read.metadata.generation is None, f"a ConfigMap has no generation, got {read.metadata.generation}"
    assert read.metadata.generate_name is None, f"generateName was never sent, got {read.metadata.generate_name!r}"
    read.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("cm", ns, read)
    assert replaced.data == {"a": "1", "b": "2"}, replaced.data
    assert replaced.metadata.creation_timestamp == read.metadata.creation_timestamp
    print("ok read-modify-replace")

    expect_status(409, core.replace_namespaced_config_map, "cm", ns, read)
    print("ok stale replace is 409")

    again = core.replace_namespaced_config_map("cm", ns, replaced)
    assert again.metadata.resource_version == replaced.metadata.resource_version, \
        f"no-op replace moved resourceVersion {replaced.metadata.resource_version} -> {again.metadata.resource_version}"
    print("ok no-op replace keeps resourceVersion")

    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]))))
    created = apps.create_namespaced_deployment(ns, deployment)
    assert created.metadata.generation == 1, created.metadata.generation

    def replace_deployment(change):
        # The deployment controller writes status meanwhile: retry on 409, as real clients do.
        for _ in range(20):
            current = apps.read_namespaced_deployment("web", ns)
            change(current)
            try:
                return apps.replace_namespaced_deployment("web", ns, current)
            except ApiException as e:
                if e.status != 409:
                    raise
        raise AssertionError("replace kept conflicting")

    scaled = replace_deployment(lambda d: setattr(d.spec, "replicas", 2))
    assert scaled.metadata.generation == 2, scaled.metadata.generation
    unchanged = replace_deployment(lambda d: None)
    assert unchanged.metadata.generation == 2, unchanged.metadata.generation
    print("ok deployment replace bumps generation on spec changes only")

    active = core.read_namespace(ns)
    assert active.status.phase == "Active", active.status
    assert active.spec.finalizers == ["kubernetes"], active.spec
    # A finalizer on content keeps the namespace in Terminating until it is removed.
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"])))
    core.delete_namespace(ns)
    terminating = core.read_namespace(ns)
    assert terminating.status.phase == "Terminating", terminating.status
    assert terminating.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    print("ok namespace being deleted is Terminating")
    print("all ok")


if __name__ == "__main__":
    main(sys.argv[1])
