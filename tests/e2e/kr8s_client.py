"""Drives a Kubernetes API server with kr8s (PyPI `kr8s`, its asyncio API).

Usage: python3 kr8s_client.py KUBECONFIG NAMESPACE
KUBECONFIG is the embedded cluster's admin kubeconfig, or an agent's kubeconfig for the
gateway (server https://HOST:PORT/c/<ns>/<name>). NAMESPACE is created when it is missing.
Covers discovery, create, get, list with a label selector, watch (live and resumed from a
resourceVersion), merge and JSON patch, server-side apply (create, update, conflict, force),
scale through a Deployment's spec and delete. Each check prints "ok <name>" or raises; the
Swift tests (Kr8sClientEndToEndTests, GatewayKr8sClientTests) assert exit 0 and the lines.
"""
import asyncio
import json
import sys

import kr8s
import kr8s.asyncio
from kr8s.asyncio.objects import ConfigMap, Deployment, Namespace

MANAGER = "kr8s-agent"


async def apply(api, ns, name, body, manager=MANAGER, force=False):
    """Server-side apply: kr8s has no apply verb, so it goes through kr8s's own call_api."""
    params = {"fieldManager": manager}
    if force:
        params["force"] = "true"
    async with api.call_api("PATCH", version="v1", url=f"configmaps/{name}", namespace=ns, params=params,
                            content=json.dumps(body),
                            headers={"Content-Type": "application/apply-patch+yaml"}) as response:
        return response.status_code, response.json()


async def main(kubeconfig, ns):
    api = await kr8s.asyncio.api(kubeconfig=kubeconfig)
    kinds = {r["kind"] for r in await api.api_resources()}
    assert {"ConfigMap", "Deployment", "Namespace"} <= kinds, sorted(kinds)
    print("ok discovery")

    if not await Namespace(ns, api=api).exists():
        await Namespace({"metadata": {"name": ns}}, api=api).create()

    cm = await ConfigMap({"metadata": {"name": "kr8s-cm", "namespace": ns, "labels": {"client": "kr8s"}},
                          "data": {"k": "v"}}, api=api)
    await cm.create()
    assert cm.metadata.uid and cm.metadata.resourceVersion, cm.raw
    got = await ConfigMap.get("kr8s-cm", namespace=ns, api=api)
    assert got.data == {"k": "v"}, got.raw
    listed = [c.name async for c in api.async_get("configmaps", namespace=ns, label_selector={"client": "kr8s"})]
    assert listed == ["kr8s-cm"], listed
    print("ok create-get-list")

    # A watch from the created object's resourceVersion sees the change made after it.
    since = cm.metadata.resourceVersion
    await got.patch({"data": {"k": "merged"}})
    assert got.data == {"k": "merged"}, got.raw
    await got.patch([{"op": "add", "path": "/data/j", "value": "json"}], type="json")
    assert got.data == {"k": "merged", "j": "json"}, got.raw
    print("ok patch")

    async def first_modified():
        async for event, obj in api.async_watch("configmaps", namespace=ns, label_selector="client=kr8s", since=since):
            if event == "MODIFIED":
                return obj
    seen = await asyncio.wait_for(first_modified(), 15)
    assert seen.name == "kr8s-cm" and seen.data["k"] == "merged", seen.raw
    print("ok watch-resume")

    # A live watch on one object sees a change made while it is open.
    async def change_later():
        await asyncio.sleep(1)
        await got.patch({"data": {"live": "yes"}})

    async def live_change():
        async for event, obj in cm.watch():
            if event == "MODIFIED" and (obj.data or {}).get("live") == "yes":
                return obj
    changer = asyncio.create_task(change_later())
    await asyncio.wait_for(live_change(), 15)
    await changer
    print("ok watch-live")

    # Server-side apply: created (201), updated (200), a second manager conflicts (409), force wins.
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kr8s-applied", "namespace": ns},
            "data": {"a": "1"}}
    status, obj = await apply(api, ns, "kr8s-applied", body)
    assert status == 201 and obj["data"] == {"a": "1"}, (status, obj)
    body["data"]["b"] = "2"
    status, obj = await apply(api, ns, "kr8s-applied", body)
    assert status == 200 and obj["data"] == {"a": "1", "b": "2"}, (status, obj)
    managers = [m["manager"] for m in obj["metadata"]["managedFields"]]
    assert managers == [MANAGER], managers
    try:
        await apply(api, ns, "kr8s-applied", {**body, "data": {"a": "other"}}, manager="someone-else")
        raise AssertionError("a second manager's apply of an owned field did not conflict")
    except kr8s.ServerError as e:
        assert e.response.status_code == 409, (e.response.status_code, e.response.text)
    status, obj = await apply(api, ns, "kr8s-applied", {**body, "data": {"a": "other"}}, manager="someone-else",
                              force=True)
    assert status == 200 and obj["data"]["a"] == "other", (status, obj)
    print("ok server-side-apply")

    # A Deployment scaled through kr8s's scale (a merge patch of spec.replicas, then reads back).
    deploy = await Deployment({"metadata": {"name": "kr8s-web", "namespace": ns},
                               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "kr8s-web"}},
                                        "template": {"metadata": {"labels": {"app": "kr8s-web"}},
                                                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
                              api=api)
    await deploy.create()
    await asyncio.wait_for(deploy.scale(2), 15)
    assert deploy.replicas == 2, deploy.raw
    await deploy.delete()
    print("ok deployment-scale")

    for name in ["kr8s-cm", "kr8s-applied"]:
        await (await ConfigMap.get(name, namespace=ns, api=api)).delete()
    assert not await ConfigMap("kr8s-cm", namespace=ns, api=api).exists()
    try:
        await ConfigMap.get("kr8s-cm", namespace=ns, api=api)
        raise AssertionError("kr8s-cm still exists after delete")
    except kr8s.NotFoundError:
        pass
    print("ok delete")
    print("all ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
