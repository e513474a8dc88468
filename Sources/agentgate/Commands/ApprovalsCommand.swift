import ArgumentParser
import Foundation
import Gateway
import KubeCore

/// `agentgate approvals list|show|approve|deny`: requests the gateway holds for a human,
/// through its admin API.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, approve and deny requests held for human approval (through the gateway's admin API).",
        discussion: """
            A request matching an AgentConnection's spec.approval rules is held open by the \
            gateway (the agent's kubectl simply waits) until an approver decides or the \
            rule's timeout (default 10m) passes. Approving forwards it exactly as it was; \
            denying answers the agent 403 with your name and reason.

            Listing takes the admin token (--data-dir, or --admin-url with --token) or an \
            approver's OIDC token. Approving and denying need the approver's OIDC token \
            (--token JWT, issued by the connection's issuer for one of its audiences): its \
            groups must include one of the connection's spec.approval.approverGroups, and \
            the agent that made a request can never decide it. A decision is made once.

            Examples:
              agentgate approvals list --data-dir .agentgate
              agentgate approvals approve 01JD... --reason "planned cleanup" --admin-url http://127.0.0.1:8444 --token "$JWT"
              agentgate approvals deny 01JD... --reason "not during the freeze" --data-dir .agentgate --token "$JWT"
            """,
        subcommands: [List.self, Show.self, Approve.self, Deny.self]
    )

    enum Output: String, ExpressibleByArgument { case table, json }
    /// `name` prints one id per line, for scripts.
    enum ListOutput: String, ExpressibleByArgument { case table, json, name }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List approvals, newest first (pending ones by default).")
        @OptionGroup var target: AdminTarget
        @Option(help: "pending, approved, denied, expired, abandoned or all.") var state: String = "pending"
        @Option(name: .shortAndLong, help: "table, json or name (ids only, newest first).") var output: ListOutput = .table

        func run() async throws {
            let result = try await target.client().listApprovals(state: state == "all" ? nil : state)
            if output == .json { print(result.prettyPrinted()); return }
            if output == .name {
                for a in result["items"]?.arrayValue ?? [] { print(a["id"]?.stringValue ?? "") }
                return
            }
            var rows = [["ID", "STATE", "CONNECTION", "SUBJECT", "REQUEST", "RULE", "CREATED", "EXPIRES", "DECIDED BY"]]
            for a in result["items"]?.arrayValue ?? [] {
                rows.append([a["id"]?.stringValue ?? "", a["state"]?.stringValue ?? "", a["connection"]?.stringValue ?? "",
                             a["subject"]?.stringValue ?? "", describe(a), a["rule"]?.stringValue ?? "",
                             a["createdAt"]?.stringValue ?? "", a["expiresAt"]?.stringValue ?? "",
                             a["decidedBy"]?.stringValue ?? "-"])
            }
            print(table(rows))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one approval: the request, its masked body and the dry-run answer.")
        @OptionGroup var target: AdminTarget
        @Argument(help: "Approval ID.") var id: String
        @Option(name: .shortAndLong, help: "table or json.") var output: Output = .table

        func run() async throws {
            let a = try await target.client().approval(id: id)
            if output == .json { print(a.prettyPrinted()); return }
            print("Approval \(id)  state=\(a["state"]?.stringValue ?? "")  connection=\(a["connection"]?.stringValue ?? "")  rule=\(a["rule"]?.stringValue ?? "")")
            print("Requested by \(a["subject"]?.stringValue ?? "") (model \(a["model"]?.stringValue ?? "-")) at \(a["createdAt"]?.stringValue ?? ""); expires \(a["expiresAt"]?.stringValue ?? "")")
            print("> \(a["method"]?.stringValue ?? "") \(a["path"]?.stringValue ?? "")\((a["query"]?.stringValue).map { $0.isEmpty ? "" : "?" + $0 } ?? "")")
            if let body = a["requestBody"]?.stringValue { print(body) }
            if let code = a["dryRunStatusCode"] { print("Dry run: \(code.serializedString())") }
            if let body = a["dryRunBody"]?.stringValue { print(body) }
            if let by = a["decidedBy"]?.stringValue { print("Decided by \(by): \(a["reason"]?.stringValue ?? "")") }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a held request: it is forwarded exactly as it was.")
        @OptionGroup var target: AdminTarget
        @Argument(help: "Approval ID.") var id: String
        @Option(help: "Why (recorded with the decision).") var reason: String

        func run() async throws {
            let a = try await target.client(needsApprover: true).decide(approvalID: id, approve: true, reason: reason)
            print("approval \(id) approved by \(a["decidedBy"]?.stringValue ?? ""): \(describe(a))")
        }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a held request: the agent gets 403 with your name and reason.")
        @OptionGroup var target: AdminTarget
        @Argument(help: "Approval ID.") var id: String
        @Option(help: "Why (shown to the agent and recorded).") var reason: String

        func run() async throws {
            let a = try await target.client(needsApprover: true).decide(approvalID: id, approve: false, reason: reason)
            print("approval \(id) denied by \(a["decidedBy"]?.stringValue ?? ""): \(describe(a))")
        }
    }
}

/// `delete deployments default/web`.
private func describe(_ a: JSONValue) -> String {
    let resource = [a["resource"]?.stringValue ?? "", a["subresource"]?.stringValue ?? ""].filter { !$0.isEmpty }.joined(separator: "/")
    let object = [a["namespace"]?.stringValue ?? "", a["name"]?.stringValue ?? ""].filter { !$0.isEmpty }.joined(separator: "/")
    return "\(a["verb"]?.stringValue ?? "") \(resource) \(object)".trimmingCharacters(in: .whitespaces)
}
