import AgentGateAPI
import ArgumentParser
import Foundation

/// `agentgate generate ...`: writes artefacts derived from the embedded sources of truth.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate files from AgentGate's embedded definitions.",
        subcommands: [GenerateCRDsCommand.self]
    )
}

/// `agentgate generate crds [--output-dir crds]`: writes the CRD manifests embedded in
/// AgentGateAPI (one file per kind plus a kustomization.yaml). A test fails while `crds/`
/// differs from them, so run this after changing a `<Kind>CRD.swift` file.
struct GenerateCRDsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crds",
        abstract: "Write the CustomResourceDefinitions of the three kinds to a directory.",
        discussion: "Files: \(AgentGateCRDs.files.map(\.fileName).joined(separator: ", "))."
    )

    @Option(name: .customLong("output-dir"), help: "Directory to write the manifests to.")
    var outputDirectory: String = "crds"

    func run() throws {
        let written = try AgentGateCRDs.write(to: URL(fileURLWithPath: outputDirectory, isDirectory: true))
        for url in written {
            print("wrote \(outputDirectory)/\(url.lastPathComponent)")
        }
    }
}
