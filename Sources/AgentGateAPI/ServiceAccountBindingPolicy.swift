import Foundation

/// The ValidatingAdmissionPolicy (and its binding) that makes binding a ServiceAccount to an
/// AgentConnection require the right to use it: `config/admission/` ships this text as
/// `serviceaccount_binding_policy.yaml` (embedded by scripts/embed-assets.py), the sandbox
/// installs it, and the operator refuses to mint tokens while either object is missing.
///
/// The requester of a create, or of an update that changes `spec.serviceAccountName`, needs
/// the verb ``useVerb`` (AgentGate's own, narrower) or `impersonate` on
/// `serviceaccounts/<name>` in the connection's namespace.
public enum ServiceAccountBindingPolicy {
    /// Name of both the ValidatingAdmissionPolicy and its ValidatingAdmissionPolicyBinding.
    public static let name = "agentgate-serviceaccount-binding"
    /// The RBAC verb on `serviceaccounts` that allows naming one in an AgentConnection.
    public static let useVerb = "use"

    /// Both objects, as YAML documents (what `config/admission/` applies).
    public static let yaml = BindingPolicyFiles.all[0].text
}
