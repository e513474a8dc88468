import KubeCore

extension Status {
    /// The Status as JSON bytes (what the gateway answers agents with); a bare Failure
    /// Status if it cannot be encoded.
    func serializedJSON() -> [UInt8] {
        (try? JSONValue(encoding: self).serialized()) ?? Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure"}"#.utf8)
    }
}
