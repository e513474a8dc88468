import Foundation
import KubeCore

/// The demo scenario `agentgate dev` applies on a first start: `samples/scenario`, as
/// embedded by `scripts/embed-scenario.py`, with every AgentConnection's issuer (the
/// samples' `https://oidc.example.com`) replaced by the sandbox issuer.
public enum SandboxScenario {
    public static var files: [(name: String, text: String)] { ScenarioFiles.all }

    public static func objects(issuer: String) throws -> [JSONValue] {
        var objects: [JSONValue] = []
        for file in ScenarioFiles.all {
            for var object in try JSONValue.parseYAMLDocuments(file.text) {
                if object["kind"]?.stringValue == "AgentConnection",
                   object[path: ["spec", "identity", "issuer"]]?.stringValue == DevSandbox.sampleIssuer {
                    object.set(.string(issuer), at: ["spec", "identity", "issuer"])
                }
                objects.append(object)
            }
        }
        return objects
    }
}
