"""Drives a Kubernetes API server with lightkube (PyPI `lightkube`, its typed models).

Usage: python3 lightkube_client.py KUBECONFIG NAMESPACE
KUBECONFIG is the embedded cluster's admin kubeconfig, or an agent's kubeconfig for the
gateway (server https://HOST:PORT/c/<ns>/<name>). NAMESPACE is created when it is missing.
Covers create, get, paged list, watch (resumed and live), strategic merge, merge and JSON
patch, replace with a stale resourceVersion (409), server-side apply (create, update,
conflict, force), the Deployment scale subresource and delete. Each check prints
"ok <name>" or raises; the Swift tests (LightkubeClientEndToEndTests,
GatewayLightkubeClientTests) assert exit 0 and the lines.
"""
import sys
import threading
import time

from lightkube import ApiError, Client, KubeConfig
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.autoscaling_v1 import ScaleSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType

MANAGER = "lightkube-agent"


def expect_status(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiError as e:
        assert e.status.code == code, f"expected {code}, got {e.status.code}: {e.status.message}"
        return e
    raise AssertionError(f"expected HTTP {code}, call succeeded")


def main(kubeconfig, ns):
    client = Client(KubeConfig.from_file(kubeconfig), namespace=ns, field_manager=MANAGER)
    try:
        client.get(Namespace, ns)
    except ApiError as e:
        assert e.status.code == 404, e.status
        client.create(Namespace(metadata=ObjectMeta(name=ns)))

    created = client.create(ConfigMap(metadata=ObjectMeta(name="lk-cm", labels={"client": "lightkube"}),
                                      data={"k": "v"}))
    assert created.metadata.uid and created.metadata.creationTimestamp, created
    got = client.get(ConfigMap, "lk-cm")
    assert got.data == {"k": "v"}, got
    for i in range(3):
        client.create(ConfigMap(metadata=ObjectMeta(name=f"lk-page-{i}", labels={"client": "lightkube"})))
    # chunk_size=2 makes lightkube follow `continue` tokens across pages.
    names = [c.metadata.name for c in client.list(ConfigMap, labels={"client": "lightkube"}, chunk_size=2)]
    assert names == ["lk-cm", "lk-page-0", "lk-page-1", "lk-page-2"], names
    print("ok create-get-list")

    since = created.metadata.resourceVersion
    patched = client.patch(ConfigMap, "lk-cm", {"data": {"k": "strategic"}})  # lightkube's default: strategic merge
    assert patched.data == {"k": "strategic"}, patched.data
    patched = client.patch(ConfigMap, "lk-cm", {"data": {"m": "merge"}}, patch_type=PatchType.MERGE)
    assert patched.data == {"k": "strategic", "m": "merge"}, patched.data
    patched = client.patch(ConfigMap, "lk-cm", [{"op": "remove", "path": "/data/m"}], patch_type=PatchType.JSON)
    assert patched.data == {"k": "strategic"}, patched.data
    print("ok patch")

    # replace: a read-modify-write succeeds; the same write with the old resourceVersion conflicts.
    stale = client.get(ConfigMap, "lk-cm")
    stale.data["r"] = "replaced"
    replaced = client.replace(stale)
    assert replaced.data["r"] == "replaced", replaced.data
    expect_status(409, client.replace, stale)
    print("ok replace-conflict")

    for event, obj in client.watch(ConfigMap, labels={"client": "lightkube"}, resource_version=since):
        if event == "MODIFIED" and obj.metadata.name == "lk-cm":
            assert obj.data == {"k": "strategic"}, obj.data
            break
    print("ok watch-resume")

    def change_later():
        time.sleep(1)
        client.patch(ConfigMap, "lk-cm", {"data": {"live": "yes"}})
    threading.Thread(target=change_later).start()
    for event, obj in client.watch(ConfigMap, fields={"metadata.name": "lk-cm"}, server_timeout=15,
                                   resource_version=replaced.metadata.resourceVersion):
        if event == "MODIFIED" and (obj.data or {}).get("live") == "yes":
            break
    print("ok watch-live")

    # Server-side apply: create, update, a second manager conflicts (409), force takes the field.
    applied = client.apply(ConfigMap(metadata=ObjectMeta(name="lk-applied"), data={"a": "1"}))
    assert applied.data == {"a": "1"}, applied.data
    applied = client.apply(ConfigMap(metadata=ObjectMeta(name="lk-applied"), data={"a": "1", "b": "2"}))
    assert applied.data == {"a": "1", "b": "2"}, applied.data
    assert [m.manager for m in applied.metadata.managedFields] == [MANAGER], applied.metadata.managedFields
    other = ConfigMap(metadata=ObjectMeta(name="lk-applied"), data={"a": "other"})
    expect_status(409, client.apply, other, field_manager="someone-else")
    forced = client.apply(other, field_manager="someone-else", force=True)
    assert forced.data["a"] == "other", forced.data
    print("ok server-side-apply")

    # A Deployment, scaled through the scale subresource.
    labels = {"app": "lk-web"}
    client.create(Deployment(metadata=ObjectMeta(name="lk-web"), spec=DeploymentSpec(
        replicas=1, selector=LabelSelector(matchLabels=labels),
        template=PodTemplateSpec(metadata=ObjectMeta(labels=labels),
                                 spec=PodSpec(containers=[Container(name="web", image="nginx")])))))
    scale = client.get(Deployment.Scale, "lk-web")
    assert scale.spec.replicas == 1, scale
    scale.spec = ScaleSpec(replicas=3)
    client.replace(scale)
    assert client.get(Deployment, "lk-web").spec.replicas == 3
    client.delete(Deployment, "lk-web")
    print("ok deployment-scale")

    for name in ["lk-cm", "lk-applied", "lk-page-0", "lk-page-1", "lk-page-2"]:
        client.delete(ConfigMap, name)
    expect_status(404, client.get, ConfigMap, "lk-cm")
    print("ok delete")
    print("all ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
