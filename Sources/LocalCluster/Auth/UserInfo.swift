/// The authenticated identity of a request, as kube-apiserver's `user.Info`: a username,
/// a uid, the groups the authorizer matches bindings against, and extra attributes
/// (ServiceAccount tokens carry `authentication.kubernetes.io/credential-id` and bound pod).
public struct UserInfo: Sendable, Hashable, Codable {
    public var username: String
    public var uid: String
    public var groups: [String]
    public var extra: [String: [String]]

    public init(username: String, uid: String = "", groups: [String] = [], extra: [String: [String]] = [:]) {
        self.username = username
        self.uid = uid
        self.groups = groups
        self.extra = extra
    }

    /// `system:serviceaccount:<namespace>:<name>`, the username of a ServiceAccount.
    public static func serviceAccountUsername(namespace: String, name: String) -> String {
        "system:serviceaccount:\(namespace):\(name)"
    }

    /// The namespace and name of a ServiceAccount username, nil for any other user.
    public var serviceAccount: (namespace: String, name: String)? {
        let parts = username.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount",
              !parts[2].isEmpty, !parts[3].isEmpty else { return nil }
        return (String(parts[2]), String(parts[3]))
    }
}
