/// How a ``JSONMaskRun`` masks a document nested deeper than it may recurse.
///
/// The walk recurses once per container, so its stack grows with the document's depth, which
/// whoever writes an object controls (Go's JSON decoder, and so kube-apiserver, accepts 10,000
/// levels; an upstream may send more). At ``JSONMaskRun/depthLimit`` the walk does
/// not descend: it copies the bytes before the container, notes where the container's output
/// belongs and what walk it was owed (resource, plain value, masked whole), and skips it.
/// When the walk is done, each postponed container is walked from depth zero, in document
/// order, by the same run (so field rules selected above it still apply), and its output is
/// spliced in; what it postpones in turn is handled the same way, from a work stack rather
/// than by recursion. Nothing is masked less for being deep, and the stack stays bounded.
enum PostponedWalk {
    case resource(inherited: [UInt8]?, topLevel: Bool)
    case plain(key: Int?)
    case maskAll(Replacement, base64: Bool)
}

struct PostponedSubtree {
    /// The container's token.
    var token: Int
    var walk: PostponedWalk
    /// Where its output goes in the output of the walk that postponed it.
    var offset: Int
}

extension JSONMaskRun {
    /// Containers a run walks into by recursion before it postpones the next one. A level
    /// costs up to 2 KiB of stack in a debug build, less in release: a run fits in a 512 KiB
    /// thread stack, and ordinary objects never nest this deep, so they pay nothing for it.
    static let maxWalkDepth = 128
    /// The depth a document nested in a string value may reach before its run postpones:
    /// what is left of this run's, but never less than a few levels, so that the stack of all
    /// the nested runs together stays near ``maxWalkDepth``.
    var nestedDepthLimit: Int { max(depthLimit - depth, 16) }

    /// Puts container `t` off (see the file's comment): its bytes are left to `walk`.
    mutating func postpone(_ t: Int, _ walk: PostponedWalk) {
        let tok = token(t)
        out.append(contentsOf: Buffer(rebasing: b[cursor..<Int(tok.start)]))
        postponed.append(PostponedSubtree(token: t, walk: walk, offset: out.count))
        cursor = Int(tok.end)
    }

    /// The run's output with every postponed container walked and spliced in where it stood.
    mutating func spliceInPostponed() -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(b.count + 64)
        var segments = [PostponedSegment(bytes: out, holes: postponed)]
        while let top = segments.indices.last {
            guard segments[top].nextHole < segments[top].holes.count else {
                result.append(contentsOf: segments[top].bytes[segments[top].copied...])
                segments.removeLast()
                continue
            }
            let hole = segments[top].holes[segments[top].nextHole]
            result.append(contentsOf: segments[top].bytes[segments[top].copied..<hole.offset])
            segments[top].copied = hole.offset
            segments[top].nextHole += 1
            segments.append(walkPostponed(hole))
        }
        return result
    }

    /// The output of one postponed container, walked from depth zero, with the containers it
    /// postpones in turn.
    private mutating func walkPostponed(_ hole: PostponedSubtree) -> PostponedSegment {
        let tok = token(hole.token)
        out = []
        postponed = []
        depth = 0
        cursor = Int(tok.start)
        switch hole.walk {
        case .resource(let inherited, let topLevel): walkResource(hole.token, inherited: inherited, topLevel: topLevel)
        case .plain(let key): walkPlain(hole.token, key: key)
        case .maskAll(let rule, let base64): maskAll(hole.token, rule, base64: base64)
        }
        out.append(contentsOf: Buffer(rebasing: b[cursor..<Int(tok.end)]))
        return PostponedSegment(bytes: out, holes: postponed)
    }
}

/// Output of a walk with the places where postponed containers' output goes.
private struct PostponedSegment {
    var bytes: [UInt8]
    var holes: [PostponedSubtree]
    var nextHole = 0
    var copied = 0
}
