/// Schema pieces shared by the three CRDs, written once so `conditions`, label selectors and
/// request matchers read the same in every kind. Each fragment is YAML text without leading
/// indentation; `indented(_:by:)` places it at the depth the enclosing CRD literal needs.
enum CRDSchemaFragments {
    /// Prefixes every line but the first with `spaces` spaces (the first line sits after the
    /// interpolation point, which already carries the indentation).
    static func indented(_ text: String, by spaces: Int) -> String {
        let pad = String(repeating: " ", count: spaces)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.enumerated().map { index, line in
            index == 0 || line.isEmpty ? String(line) : pad + line
        }.joined(separator: "\n")
    }

    /// Go duration syntax (`1h30m`, `10m`, `500ms`); what `time.ParseDuration` and CEL's
    /// `duration()` accept, without a sign.
    static let durationPattern = #"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"#
    /// RFC 1123 subdomain (object names, ServiceAccount names).
    static let dnsSubdomainPattern = #"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"#
    /// RFC 1123 label (rule names, namespaces).
    static let dnsLabelPattern = #"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"#

    /// `status.conditions`: metav1.Condition, a map list keyed by `type` (kstatus and
    /// `kubectl wait --for=condition=Ready` read it).
    static let conditions = #"""
    conditions:
      description: >-
        Current state, one entry per type, as kstatus (Argo CD, Flux, kubectl wait) reads it.
        Ready is True when the object is in effect. Reconciling is True while the operator
        works on a change. Stalled is True when it cannot progress until the object or
        something it refers to changes; then Ready is False with a reason such as InvalidSpec
        and a message naming the field.
      type: array
      maxItems: 16
      x-kubernetes-list-type: map
      x-kubernetes-list-map-keys:
        - type
      items:
        description: One aspect of the object's state (metav1.Condition).
        type: object
        required:
          - type
          - status
          - lastTransitionTime
          - reason
          - message
        properties:
          type:
            description: Condition type, in CamelCase (Ready, Reconciling or Stalled).
            type: string
            maxLength: 316
            pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$'
          status:
            description: Whether the condition holds (True, False or Unknown).
            type: string
            enum:
              - "True"
              - "False"
              - Unknown
          observedGeneration:
            description: The metadata.generation the condition was computed from.
            type: integer
            format: int64
            minimum: 0
          lastTransitionTime:
            description: When status last changed (RFC 3339 time).
            type: string
            format: date-time
          reason:
            description: >-
              Why the condition is in its state, in CamelCase (for example Ready, InvalidSpec,
              ServiceAccountNotFound); stable enough for automation to match on.
            type: string
            minLength: 1
            maxLength: 1024
            pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$'
          message:
            description: >-
              What happened, for a human; for an invalid spec it names the field and the value
              to fix. May be empty.
            type: string
            maxLength: 32768
    """#

    /// `status.observedGeneration`.
    static let observedGeneration = #"""
    observedGeneration:
      description: >-
        The metadata.generation this status was computed from. While it is lower than
        metadata.generation, the latest change is not reconciled yet.
      type: integer
      format: int64
      minimum: 0
    """#

    /// metav1.LabelSelector, atomic as in core Kubernetes types.
    static let labelSelectorBody = #"""
    type: object
    x-kubernetes-map-type: atomic
    properties:
      matchLabels:
        description: >-
          Labels an object must carry, all of them (key to exact value); ANDed with
          matchExpressions.
        type: object
        additionalProperties:
          type: string
          maxLength: 63
      matchExpressions:
        description: Requirements an object's labels must meet, all of them.
        type: array
        maxItems: 32
        x-kubernetes-list-type: atomic
        items:
          type: object
          required:
            - key
            - operator
          properties:
            key:
              description: The label key the requirement applies to.
              type: string
              minLength: 1
              maxLength: 317
            operator:
              description: >-
                How the label relates to values. In and NotIn compare its value with values;
                Exists and DoesNotExist test only the key.
              type: string
              enum:
                - In
                - NotIn
                - Exists
                - DoesNotExist
            values:
              description: Label values; non-empty for In and NotIn, empty for Exists and DoesNotExist.
              type: array
              maxItems: 64
              x-kubernetes-list-type: atomic
              items:
                type: string
                maxLength: 63
          x-kubernetes-validations:
            - rule: '(self.operator == "In" || self.operator == "NotIn") ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)'
              message: values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist
    """#

    /// Request matchers shared by approval, access and alert rules: verbs, apiGroups,
    /// resources, subresources, namespaces. Absent or `*` matches anything.
    static let requestMatchers = #"""
    verbs:
      description: >-
        API verbs as the API server derives them (get, list, watch, create, update, patch,
        delete, deletecollection, proxy); "*" or an omitted list matches every verb.
      type: array
      maxItems: 10
      x-kubernetes-list-type: set
      items:
        type: string
        enum:
          - "*"
          - get
          - list
          - watch
          - create
          - update
          - patch
          - delete
          - deletecollection
          - proxy
    apiGroups:
      description: >-
        API groups ("" is the core group, apps, batch...); "*" or an omitted list matches
        every group.
      type: array
      maxItems: 64
      x-kubernetes-list-type: set
      items:
        type: string
        maxLength: 253
    resources:
      description: >-
        Resources in plural form (pods, deployments) or resource/subresource (pods/exec). A
        plain name matches the resource's subresources only when subresources is set; "*" or
        an omitted list matches every resource.
      type: array
      maxItems: 64
      x-kubernetes-list-type: set
      items:
        type: string
        maxLength: 253
    subresources:
      description: >-
        Subresources (exec, log, scale, status; "" is the resource itself); "*" or an omitted
        list matches every subresource.
      type: array
      maxItems: 32
      x-kubernetes-list-type: set
      items:
        type: string
        maxLength: 63
    namespaces:
      description: >-
        Namespaces of the request; "*" or an omitted list matches every namespace and
        cluster-scoped requests.
      type: array
      maxItems: 64
      x-kubernetes-list-type: set
      items:
        type: string
        maxLength: 63
    """#
}
