/// What this operator knows of one object's resourceVersions from its own writes, so a reconcile
/// can tell that the informer's cache has not yet caught up with them.
///
/// Kubernetes says a resourceVersion is opaque: clients may compare two for equality, never
/// order them. The order is learned instead: a write answers with a version newer than the one
/// it was based on, and newer than any earlier write by this operator (the API server orders
/// the writes to one object). Those older versions are `superseded`; a cache that still shows
/// one of them is behind. Any other version (the latest write, or one written by someone else)
/// is not known to be behind and is acted on.
///
/// Guarantees: a version is called behind only when a newer write of this operator exists, so
/// the watch event for that write (or for anything after it) is always acted on. Assumption:
/// the informer's cache moves forward only, so once it shows the latest write no superseded
/// version can come back, and the history is cleared.
struct OwnWrites: Sendable {
    /// The version of this operator's last write, or of the object it last acted on.
    private(set) var latest: String?
    /// Versions known to be older than `latest`, newest last; a few are enough, since the cache
    /// moves past them in order.
    private var superseded: [String] = []
    private static let limit = 16

    /// Records a write that answered `version`, made on the object as it was at `base`.
    mutating func wrote(_ version: String?, over base: String?) {
        guard let version else { return }
        for older in [base, latest] {
            // A write that changed nothing answers the version it was based on: that is not older.
            if let older, older != version, !superseded.contains(older) { superseded.append(older) }
        }
        superseded.removeAll { $0 == version }
        if superseded.count > Self.limit { superseded.removeFirst(superseded.count - Self.limit) }
        latest = version
    }

    /// Whether `cached` is a version this operator has since written over. Seeing the latest
    /// write clears what is older: the cache cannot go back to it.
    mutating func isBehind(_ cached: String?) -> Bool {
        guard let cached else { return false }
        if cached == latest {
            superseded.removeAll()
            return false
        }
        return superseded.contains(cached)
    }
}
