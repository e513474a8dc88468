import ArgumentParser

/// `--kubeconfig` and `--context`, shared by every command that talks to a cluster. Without
/// `--kubeconfig`, KubeClient follows kubectl: KUBECONFIG, then ~/.kube/config, then the
/// in-cluster ServiceAccount.
struct KubeconfigOptions: ParsableArguments {
    @Option(name: .long, help: "Path to a kubeconfig (default: KUBECONFIG, ~/.kube/config, then in-cluster).")
    var kubeconfig: String?

    @Option(name: .long, help: "Kubeconfig context to use (default: the current context).")
    var context: String?
}
