import Foundation

/// The ValidatingAdmissionPolicy (and its binding) that makes binding a ServiceAccount to an
/// AgentConnection require the right to use it: `config/admission/` ships this text as
/// `serviceaccount_binding_policy.yaml` (a test keeps the two identical), the sandbox
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
    public static let yaml = #"""
# Binding a ServiceAccount to an AgentConnection requires the right to use it.
#
# The operator mints tokens for spec.serviceAccountName, so whoever may create an
# AgentConnection could otherwise borrow any ServiceAccount of its namespace. This policy
# admits a create of an AgentConnection, or an update that changes spec.serviceAccountName,
# only when the requester may "use" that ServiceAccount: the verb "use" (AgentGate's own,
# narrower) or "impersonate" on serviceaccounts/<name> in the connection's namespace.
#
# Grant it with a Role such as (kubectl create role refuses the verb use on
# serviceaccounts, so apply it; --verb=impersonate works with kubectl create role):
#   apiVersion: rbac.authorization.k8s.io/v1
#   kind: Role
#   metadata: {name: use-agent-sa, namespace: team}
#   rules:
#     - {apiGroups: [""], resources: [serviceaccounts], resourceNames: [agent-sa], verbs: [use]}
# and bind it: kubectl create rolebinding use-agent-sa -n team --role=use-agent-sa --user=alice
#
# Updates that leave spec.serviceAccountName alone (labels, other spec fields, the
# operator's finalizer and status) are not checked. The operator refuses to mint tokens
# (Stalled, BindingPolicyMissing) while this policy or its binding is missing, unless it runs
# with --allow-missing-binding-policy.
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: agentgate-serviceaccount-binding
  labels:
    app.kubernetes.io/name: agentgate
    app.kubernetes.io/component: admission
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["agentgate.io"]
        apiVersions: ["*"]
        operations: ["CREATE", "UPDATE"]
        resources: ["agentconnections"]
  matchConditions:
    - name: names-or-changes-the-serviceaccount
      expression: >-
        request.operation == 'CREATE' ||
        !has(oldObject.spec.serviceAccountName) || !has(object.spec.serviceAccountName) ||
        object.spec.serviceAccountName != oldObject.spec.serviceAccountName
  variables:
    # Required by the CRD; when absent, name('') below asks about every ServiceAccount.
    - name: serviceAccountName
      expression: "has(object.spec.serviceAccountName) ? object.spec.serviceAccountName : ''"
  validations:
    - expression: >-
        authorizer.group('').resource('serviceaccounts').namespace(request.namespace)
        .name(variables.serviceAccountName).check('use').allowed() ||
        authorizer.group('').resource('serviceaccounts').namespace(request.namespace)
        .name(variables.serviceAccountName).check('impersonate').allowed()
      reason: Forbidden
      message: >-
        spec.serviceAccountName names a ServiceAccount the requester may not use: bind the
        requester, in this namespace, to a Role with the rule {apiGroups: [""], resources:
        [serviceaccounts], resourceNames: [<name>], verbs: [use]}
      messageExpression: >-
        'user ' + request.userInfo.username + ' may not use ServiceAccount ' +
        request.namespace + '/' + variables.serviceAccountName +
        ' (spec.serviceAccountName): bind the user, in namespace ' + request.namespace +
        ', to a Role with the rule {apiGroups: [""], resources: [serviceaccounts], resourceNames: [' +
        variables.serviceAccountName + '], verbs: [use]} (the verb impersonate works too, but also' +
        ' lets the user act as the ServiceAccount)'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: agentgate-serviceaccount-binding
  labels:
    app.kubernetes.io/name: agentgate
    app.kubernetes.io/component: admission
spec:
  policyName: agentgate-serviceaccount-binding
  validationActions: [Deny]
"""#
}
