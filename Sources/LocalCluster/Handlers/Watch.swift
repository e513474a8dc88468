import HTTPServing
import Foundation
import KubeCore

/// WATCH: streams `{"type":..., "object":...}` lines, one per event, flushed per event.
///
/// - From resourceVersion "" or "0" (or with `sendInitialEvents=true`) it first sends ADDED
///   for what exists, then follows changes from the revision that listing was read at.
/// - `sendInitialEvents=true` ends the initial events with a BOOKMARK annotated
///   `k8s.io/initial-events-end: "true"`.
/// - A resourceVersion older than the kept history gets one ERROR event (410 Expired).
/// - A selector turns a change that moves an object out of the selection into DELETED and
///   one that moves it in into ADDED, as the watch cache does.
extension ResourceHandlers {
    func watch(_ request: APIRequest) throws -> HTTPResponse {
        let (labels, fields) = try selectors(request)
        let definition = request.definition
        let namespace = request.info.namespace
        let rvText = request.queryValue("resourceVersion") ?? ""
        let sendInitial = request.queryFlag("sendInitialEvents")
        let bookmarks = request.queryFlag("allowWatchBookmarks")
        let timeout = request.queryValue("timeoutSeconds").flatMap(Double.init).map { max(0, $0) } ?? 1800
        if sendInitial && request.queryValue("resourceVersionMatch") != "NotOlderThan" {
            throw APIError(Status(message: "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                                  reason: "Invalid", code: 422))
        }
        let requestedRV: Int64?
        if rvText.isEmpty || rvText == "0" {
            requestedRV = nil
        } else if let value = Int64(rvText) {
            requestedRV = value
        } else {
            throw APIError(.badRequest("resourceVersion: Invalid value: \"\(rvText)\": must be a valid resource version"))
        }
        let initial = requestedRV == nil || sendInitial
        let nsFilter = namespace.isEmpty ? nil : namespace
        let select: @Sendable (StoredObject) -> Bool = { object in
            (nsFilter == nil || object.namespace == nsFilter) && self.matches(object, labels, fields)
        }

        // Initial state and the subscription are taken at one revision, so nothing falls between.
        var initialObjects: [StoredObject] = []
        let storeWatch: StoreWatch
        do {
            if initial {
                let snapshot = store.list(definition.key, namespace: nsFilter)
                initialObjects = snapshot.objects.filter(select)
                storeWatch = try store.watch(definition.key, after: snapshot.resourceVersion)
            } else {
                storeWatch = try store.watch(definition.key, after: requestedRV)
            }
        } catch WatchStartError.expired(let requested, let oldest) {
            let status = Status(message: "too old resource version: \(requested) (\(oldest - 1))", reason: "Expired", code: 410)
            let line = Self.eventLine(type: "ERROR", objectBytes: (try? JSONValue(encoding: status).serialized()) ?? [])
            let stream = AsyncStream<[UInt8]> { continuation in
                continuation.yield(line)
                continuation.finish()
            }
            return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .stream(stream))
        }

        // `kubectl get -w` asks for Tables: each event then carries a one-row Table.
        let converter = request.wantsTable ? TableConverter(definition: definition) : nil
        let render: @Sendable (StoredObject) -> [UInt8] = { object in
            guard let converter else { return object.bytes }
            return converter.table(for: [object], resourceVersion: String(object.resourceVersion)).serialized()
        }
        let groupVersion = definition.groupVersion
        let kind = definition.kind
        let interval = server.bookmarkInterval
        let startRV = storeWatch.startRevision
        let store = self.store
        let output = AsyncStream<[UInt8]>(bufferingPolicy: .unbounded) { continuation in
            let producer = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try? await Task.sleep(for: .seconds(timeout))
                    }
                    group.addTask {
                        for object in initialObjects {
                            continuation.yield(Self.eventLine(type: "ADDED", objectBytes: render(object)))
                        }
                        if sendInitial {
                            continuation.yield(Self.bookmark(groupVersion: groupVersion, kind: kind, rv: startRV, initialEventsEnd: true))
                        }
                        for await item in storeWatch.items {
                            if Task.isCancelled { break }
                            guard case .event(let event) = item else {
                                if case .progress(let rv) = item, bookmarks {
                                    continuation.yield(Self.bookmark(groupVersion: groupVersion, kind: kind, rv: rv, initialEventsEnd: false))
                                }
                                continue
                            }
                            let now = select(event.object)
                            let before = event.previous.map(select) ?? false
                            let type: String?
                            switch event.kind {
                            case .added: type = now ? "ADDED" : nil
                            case .deleted: type = before || now ? "DELETED" : nil
                            case .modified:
                                type = now ? (before ? "MODIFIED" : "ADDED") : (before ? "DELETED" : nil)
                            }
                            if let type {
                                continuation.yield(Self.eventLine(type: type, objectBytes: render(event.object)))
                            }
                        }
                    }
                    if bookmarks {
                        group.addTask {
                            while !Task.isCancelled {
                                try? await Task.sleep(for: interval)
                                if Task.isCancelled { break }
                                store.requestProgress(storeWatch)
                            }
                        }
                    }
                    // The first task to finish (timeout, or the event stream ending) ends the watch.
                    await group.next()
                    group.cancelAll()
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in producer.cancel() }
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .stream(output))
    }

    static func eventLine(type: String, objectBytes: [UInt8]) -> [UInt8] {
        var line: [UInt8] = Array("{\"type\":\"\(type)\",\"object\":".utf8)
        line.reserveCapacity(line.count + objectBytes.count + 2)
        line += objectBytes
        line += Array("}\n".utf8)
        return line
    }

    static func bookmark(groupVersion: String, kind: String, rv: Int64, initialEventsEnd: Bool) -> [UInt8] {
        var metadata: JSONValue = ["resourceVersion": .string(String(rv))]
        if initialEventsEnd { metadata["annotations"] = ["k8s.io/initial-events-end": "true"] }
        let object: JSONValue = ["apiVersion": .string(groupVersion), "kind": .string(kind), "metadata": metadata]
        return eventLine(type: "BOOKMARK", objectBytes: object.serialized())
    }
}
