import KubeCore

/// Stops parsing or evaluation before it uses too much of the caller's thread stack.
///
/// The tree-height limit bounds recursion in principle, but the stack a level takes differs
/// between debug and release builds, and the caller's thread may be small (512 KiB on secondary
/// threads on macOS). So the parser and evaluator each get a stack budget, measured from where
/// they were entered, and check it at every level of recursion; running out is an ordinary
/// ``CELError`` ("nested too deeply"), never a crash. In release builds the budget is far more
/// than the height limit needs; in debug builds it can trip first on absurdly deep rules.
struct CELStackGuard {
    /// Bytes of stack one parse or one evaluation may use.
    static let budget: UInt = 256 * 1024

    /// Lowest stack address this parse or evaluation may reach (stacks grow down).
    private let floor: UInt

    init() {
        let entry = CELStackGuard.currentAddress()
        floor = entry > CELStackGuard.budget ? entry - CELStackGuard.budget : 0
    }

    /// Whether the stack still has room for another level of recursion.
    func hasRoom() -> Bool { CELStackGuard.currentAddress() > floor }

    @inline(never)
    private static func currentAddress() -> UInt {
        var marker: UInt8 = 0
        return withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
    }
}
