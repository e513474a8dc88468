import SPDY
import TestSupport

extension LoopbackTCP {
    /// Reads SPDY frames until `predicate` holds for the frames so far, or the peer closes.
    func readFrames(codec: SPDYFrameCodec, until predicate: ([SPDYFrame]) -> Bool) throws -> [SPDYFrame] {
        var frames: [SPDYFrame] = []
        while !predicate(frames) {
            let bytes = try readSome()
            if bytes.isEmpty { break }
            frames += try codec.decode(bytes)
        }
        return frames
    }
}
