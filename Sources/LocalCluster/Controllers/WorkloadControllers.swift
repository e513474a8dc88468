import ControllerRuntime
import Foundation
import KubeCore
import Logging
import Prometheus

/// What runs workloads in the embedded cluster, kwok-style: kube-controller-manager's
/// deployment, replicaset, statefulset, job and endpointslice controllers, and the node's
/// kubelet (``Kubelet``), each a ControllerRuntime ``Controller`` with its own work queue.
///
/// Contract:
/// - Driven by the store's watches, not by polling: ``start()`` opens one watch per resource
///   they read (Deployments, ReplicaSets, StatefulSets, Jobs, Pods, Services,
///   EndpointSlices) before queueing every existing object once, so no change between the two
///   is missed. A change queues the object's own controller and its controller owner
///   (a pod → its ReplicaSet, StatefulSet or Job; a ReplicaSet → its Deployment; a pod → the
///   Services whose selector matches it before or after the change).
/// - Reconcilers read the store directly (it is current as soon as a write returns) and
///   write through ``InProcessClient``, as the admin with field manager
///   `kube-controller-manager`: every write meets the API's rules and hooks, garbage
///   collection of what they own included.
/// - ``stop()`` closes the watches, shuts the queues down and waits for the reconciles in
///   flight; the cluster calls it before it stops serving.
final class WorkloadControllers: @unchecked Sendable {
    let store: ObjectStore
    let deployments: Controller
    let replicaSets: Controller
    let statefulSets: Controller
    let jobs: Controller
    let endpointSlices: Controller
    let kubeletController: Controller
    let kubelet: Kubelet
    private let lock = NSLock()
    private var tasks: [Task<Void, Never>] = []
    private var sources: [Task<Void, Never>] = []

    init(server: APIServer, token: String, logger: Logger) {
        store = server.store
        var logger = logger
        logger.logLevel = max(logger.logLevel, .warning)
        let client = InProcessClient(server: server, token: token, fieldManager: "kube-controller-manager")
        let registry = PrometheusCollectorRegistry()
        func controller(_ name: String, _ reconciler: any Reconciler) -> Controller {
            Controller(name: name, reconciler: reconciler, workers: 2, registry: registry, logger: logger)
        }
        deployments = controller("deployment", DeploymentController(
            store: store, client: client, events: ComponentEvents(client: client, component: "deployment-controller")))
        replicaSets = controller("replicaset", ReplicaSetController(
            store: store, client: client, events: ComponentEvents(client: client, component: "replicaset-controller")))
        statefulSets = controller("statefulset", StatefulSetController(
            store: store, client: client, events: ComponentEvents(client: client, component: "statefulset-controller")))
        jobs = controller("job", JobController(
            store: store, client: client, events: ComponentEvents(client: client, component: "job-controller")))
        endpointSlices = controller("endpointslice", EndpointSliceController(store: store, client: client))
        kubelet = Kubelet(store: store, client: client, nodeName: ClusterNode.name)
        kubeletController = controller("kubelet", kubelet)
    }

    /// Opens the watches, queues what exists, and starts the workers.
    func start() throws {
        let routes: [(APIResource, @Sendable (StoreEvent) -> Void)] = [
            (.deployments, { [self] in enqueue(deployments, $0.object) }),
            (.replicaSets, { [self] event in
                enqueue(replicaSets, event.object)
                enqueueOwner(event, kind: "Deployment", deployments)
            }),
            (.statefulSets, { [self] in enqueue(statefulSets, $0.object) }),
            (.jobs, { [self] in enqueue(jobs, $0.object) }),
            (.pods, { [self] event in podChanged(event) }),
            (.services, { [self] in enqueue(endpointSlices, $0.object) }),
            (.endpointSlices, { [self] event in
                if let service = event.object.labels[EndpointSliceController.serviceNameLabel] {
                    endpointSlices.enqueue(ReconcileRequest(namespace: event.object.namespace, name: service))
                }
            }),
        ]
        var watches: [(StoreWatch, @Sendable (StoreEvent) -> Void)] = []
        for (resource, route) in routes {
            watches.append((try store.watch(resource.key, after: nil), route))
        }
        let sources = watches.map { watch, route in
            Task {
                for await item in watch.items {
                    if case .event(let event) = item { route(event) }
                }
            }
        }
        for (resource, controller) in [(APIResource.deployments, deployments), (.replicaSets, replicaSets),
                                       (.statefulSets, statefulSets), (.jobs, jobs), (.services, endpointSlices)] {
            for object in store.list(resource.key, namespace: nil).objects { enqueue(controller, object) }
        }
        for pod in store.list(APIResource.pods.key, namespace: nil).objects {
            let request = ReconcileRequest(namespace: pod.namespace, name: pod.name)
            kubelet.markAnnounced(request, uid: WorkloadObjects.uid(pod.value()))
            kubeletController.enqueue(request)
        }
        let tasks = [deployments, replicaSets, statefulSets, jobs, endpointSlices, kubeletController].map { controller in
            Task { await controller.run() }
        }
        lock.withLock {
            self.sources = sources
            self.tasks = tasks
        }
    }

    /// Closes the watches, stops taking work, and waits for the reconciles in flight.
    func stop() async {
        let (sources, tasks) = lock.withLock { (self.sources, self.tasks) }
        for source in sources { source.cancel() }
        for controller in [deployments, replicaSets, statefulSets, jobs, endpointSlices, kubeletController] {
            controller.shutDown()
        }
        for task in tasks { await task.value }
        for source in sources { await source.value }
    }

    private func enqueue(_ controller: Controller, _ object: StoredObject) {
        controller.enqueue(ReconcileRequest(namespace: object.namespace, name: object.name))
    }

    /// Queues the controller owner (of `kind`) of the object before and after the change.
    private func enqueueOwner(_ event: StoreEvent, kind: String, _ controller: Controller) {
        for object in [event.object, event.previous].compactMap({ $0 }) {
            guard let owner = WorkloadObjects.controllerRef(object.value()), owner.kind == kind else { continue }
            controller.enqueue(ReconcileRequest(namespace: object.namespace, name: owner.name))
        }
    }

    private func podChanged(_ event: StoreEvent) {
        enqueueOwner(event, kind: "ReplicaSet", replicaSets)
        enqueueOwner(event, kind: "StatefulSet", statefulSets)
        enqueueOwner(event, kind: "Job", jobs)
        if event.kind != .modified {
            kubeletController.enqueue(ReconcileRequest(namespace: event.object.namespace, name: event.object.name))
        }
        // Services whose selector matches the pod's labels, before or after the change.
        let labelSets = [event.object.labels] + (event.previous.map { [$0.labels] } ?? [])
        for service in store.list(APIResource.services.key, namespace: event.object.namespace).objects {
            guard let selector = service.value()[path: ["spec", "selector"]]?.objectValue?.compactMapValues(\.stringValue),
                  !selector.isEmpty else { continue }
            if labelSets.contains(where: { labels in selector.allSatisfy { labels[$0.key] == $0.value } }) {
                enqueue(endpointSlices, service)
            }
        }
    }
}
