"""Drives the embedded API server with the official Python `kubernetes` client.

Usage: python3 python_client.py ADMIN_KUBECONFIG
Each check prints "ok <name>" or raises; the Swift test runs this and asserts exit 0.
"""
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "agentgate.io", "v1alpha1", "agentconnections"


def connection(name):
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentConnection",
        "metadata": {"name": name},
        "spec": {"serviceAccountName": "agent-sa",
                 "identity": {"issuer": "https://issuer.example.com", "audiences": ["agentgate"],
                              "allowedSubjects": ["agent-1"]}},
    }


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
    custom = client.CustomObjectsApi(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)

    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "py"}})
    for i in range(3):
        core.create_namespaced_config_map("py", {"metadata": {"name": f"cm-{i}", "labels": {"i": str(i)}}})
    listed = core.list_namespaced_config_map("py")
    assert [c.metadata.name for c in listed.items] == ["cm-0", "cm-1", "cm-2"], listed.items
    assert listed.metadata.resource_version
    print("ok list")

    # Watch resumed from a resourceVersion sees exactly what happened after it.
    rv = listed.metadata.resource_version
    core.delete_namespaced_config_map("cm-0", "py")
    core.patch_namespaced_config_map("cm-1", "py", {"data": {"k": "v"}})
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    assert seen == [("DELETED", "cm-0"), ("MODIFIED", "cm-1")], seen
    print("ok watch-resume")

    # A watch from a resourceVersion older than the kept history gets 410 Gone.
    for i in range(40):
        core.patch_namespaced_config_map("cm-2", "py", {"data": {"n": str(i)}})
    gone = None
    try:
        for event in watch.Watch().stream(core.list_namespaced_config_map, "py", resource_version="1", timeout_seconds=5):
            if event["type"] == "ERROR":
                gone = event["raw_object"]
                break
    except ApiException as e:
        gone = {"code": e.status}
    assert gone is not None and gone.get("code") == 410, gone
    print("ok watch-410")

    # Custom resources: create, merge patch, JSON patch, status, stale update conflict.
    custom.create_namespaced_custom_object(GROUP, VERSION, "py", PLURAL, connection("c1"))
    merged = custom.patch_namespaced_custom_object(GROUP, VERSION, "py", PLURAL, "c1",
                                                   {"metadata": {"labels": {"team": "a"}}})
    assert merged["metadata"]["labels"]["team"] == "a"
    # JSON patch (RFC 6902).
    jsonpatched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "py", PLURAL, "c1",
        [{"op": "replace", "path": "/spec/serviceAccountName", "value": "patched-sa"}],
        _content_type="application/json-patch+json")
    assert jsonpatched["spec"]["serviceAccountName"] == "patched-sa", jsonpatched
    print("ok patch")

    current = custom.get_namespaced_custom_object(GROUP, VERSION, "py", PLURAL, "c1")
    current["status"] = {"endpoint": "https://gateway/c/py/c1"}
    updated = custom.replace_namespaced_custom_object_status(GROUP, VERSION, "py", PLURAL, "c1", current)
    assert updated["status"]["endpoint"] == "https://gateway/c/py/c1"
    assert updated["metadata"]["generation"] == current["metadata"]["generation"]
    print("ok status")

    stale = dict(current)
    stale["spec"] = dict(current["spec"], serviceAccountName="stale")
    expect_status(409, custom.replace_namespaced_custom_object, GROUP, VERSION, "py", PLURAL, "c1", stale)
    print("ok conflict")

    # TokenRequest, and a ServiceAccount token denied what its Role does not allow.
    core.create_namespaced_service_account("py", {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role("py", {"metadata": {"name": "cm-reader"},
                                       "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding("py", {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "py"}]})
    token = core.create_namespaced_service_account_token(
        "reader", "py", {"spec": {"expirationSeconds": 3600}}).status.token
    assert token.count(".") == 2
    print("ok token-request")

    sa_config = client.Configuration()
    sa_config.host = api_client.configuration.host
    sa_config.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    sa_config.api_key = {"authorization": "Bearer " + token}
    sa_core = client.CoreV1Api(client.ApiClient(sa_config))
    assert len(sa_core.list_namespaced_config_map("py").items) == 2
    expect_status(403, sa_core.list_namespaced_secret, "py")
    expect_status(403, sa_core.create_namespaced_config_map, "py", {"metadata": {"name": "nope"}})
    print("ok rbac")


if __name__ == "__main__":
    main(sys.argv[1])
    print("all ok")
