"""Drives the AgentGate gateway with the official Python `kubernetes` client, as an agent.

Usage: python3 python_gateway_client.py AGENT_KUBECONFIG
The kubeconfig's server is the connection endpoint (https://HOST:PORT/c/<ns>/<name>) and its
user an agent's OIDC token. Each check prints "ok <name>" or raises; GatewayPythonClientTests
runs this and asserts exit 0, then checks what the gateway recorded.
"""
import copy
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "default"


def main(kubeconfig):
    api_client = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api_client)

    created = core.create_namespaced_config_map(NS, {"metadata": {"name": "py-gw", "labels": {"via": "gateway"}},
                                                     "data": {"k": "v"}})
    assert created.metadata.uid, created
    got = core.read_namespaced_config_map("py-gw", NS)
    assert got.data == {"k": "v"}, got.data
    print("ok get")

    listed = core.list_namespaced_config_map(NS, label_selector="via=gateway")
    assert [c.metadata.name for c in listed.items] == ["py-gw"], listed.items
    print("ok list")

    # A watch through the gateway sees a change made while it is open.
    seen = []

    def change():
        time.sleep(1)
        core.patch_namespaced_config_map("py-gw", NS, {"data": {"k": "changed"}})

    threading.Thread(target=change).start()
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, NS, label_selector="via=gateway",
                          resource_version=listed.metadata.resource_version, timeout_seconds=15):
        seen.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("k")))
        if event["type"] == "MODIFIED":
            w.stop()
    assert ("MODIFIED", "py-gw", "changed") in seen, seen
    print("ok watch")

    # Server-side apply and a JSON patch.
    applied = core.patch_namespaced_config_map(
        "py-applied", NS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-applied"}, "data": {"a": "1"}},
        field_manager="python-agent", _content_type="application/apply-patch+yaml")
    assert applied.data == {"a": "1"}, applied.data
    patched = core.patch_namespaced_config_map("py-applied", NS, [{"op": "add", "path": "/data/b", "value": "2"}],
                                               _content_type="application/json-patch+json")
    assert patched.data == {"a": "1", "b": "2"}, patched.data
    print("ok apply-patch")

    # A Secret read through the gateway comes back masked.
    core.create_namespaced_secret(NS, {"metadata": {"name": "py-secret"}, "stringData": {"password": "hunter2-hunter2"}})
    secret = core.read_namespaced_secret("py-secret", NS)
    assert "aHVudGVyMi1odW50ZXIy" not in str(secret.data), secret.data
    print("ok secret-masked")

    core.delete_namespaced_config_map("py-gw", NS)
    try:
        core.read_namespaced_config_map("py-gw", NS)
        raise AssertionError("py-gw still exists after delete")
    except ApiException as e:
        assert e.status == 404, e
    print("ok delete")

    # A forged token gets a 401 Status the client understands, and nothing else.
    forged_config = copy.deepcopy(api_client.configuration)
    forged_config.refresh_api_key_hook = None  # the kubeconfig loader's hook would put the real token back
    forged_config.api_key = {"authorization": "Bearer not-a-jwt"}
    try:
        client.CoreV1Api(client.ApiClient(forged_config)).list_namespaced_config_map(NS)
        raise AssertionError("a forged token was accepted")
    except ApiException as e:
        assert e.status == 401 and '"kind":"Status"' in e.body.replace(" ", ""), (e.status, e.body)
    print("ok forged-401")


if __name__ == "__main__":
    main(sys.argv[1])
