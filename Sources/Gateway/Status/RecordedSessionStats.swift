import SessionStore

/// The session store's per-connection figures. Named apart because `AgentGateAPI` has a
/// `SessionStats` too (the status shape), and the module `SessionStore` is shadowed by its
/// protocol of the same name, so `SessionStore.SessionStats` cannot be written.
typealias RecordedSessionStats = SessionStats
