/// libFuzzer target: SPDY/3.1 frames and header blocks as an agent's `kubectl port-forward`
/// or SPDY exec sends them to the gateway (Sources/SPDY).
///
/// The first byte picks a mode:
/// - stream: the rest is one direction of a connection, fed to ``SPDYFrameCodec/decode(_:)``
///   in input-chosen pieces (TCP segments);
/// - frames: the rest drives a generator of frames (header blocks with odd names and values,
///   NULs, many entries), encoded by one codec;
/// - block: the rest is an uncompressed header block for ``SPDYHeaders/decode(_:)``.
///
/// Invariants (any violation aborts, which libFuzzer saves as a crash):
/// - Splitting the bytes differently never changes the frames decoded (nor whether decoding
///   fails): a frame's meaning cannot depend on how TCP cut it.
/// - Every decoded frame survives encode → decode on a fresh codec pair unchanged (frames
///   in the same order, so header compression state matches).
/// - A generated frame decodes to itself; a header block that decodes re-encodes to a block
///   that decodes to the same headers.
/// - Nothing decodes past the limits: control frames ≤ 1 MiB, header blocks ≤ 1 MiB.
import Foundation
import SPDY

func fail(_ message: @autoclosure () -> String) -> Never {
    FileHandle.standardError.write(Data(("spdy invariant violated: " + message() + "\n").utf8))
    abort()
}

struct Reader {
    var bytes: ArraySlice<UInt8>
    mutating func next() -> UInt8 { bytes.popFirst() ?? 0 }
    mutating func u32() -> UInt32 { (0..<4).reduce(0) { acc, _ in acc << 8 | UInt32(next()) } }
    /// Header text; NUL only in names (in a value it separates values, by the SPDY/3 format).
    mutating func text(_ limit: Int, nul: Bool = false) -> String {
        let n = Int(next()) % limit
        let alphabet = Array(("abcXYZ-_:/ é\u{301}\u{212A}%" + (nul ? "\u{0}" : "")).unicodeScalars)
        return String(String.UnicodeScalarView((0..<n).map { _ in alphabet[Int(next()) % alphabet.count] }))
    }
}

/// Decodes `bytes` cut at the given piece sizes; nil when decoding throws.
func decodeAll(_ bytes: [UInt8], pieces: [Int]) -> [SPDYFrame]? {
    guard let codec = try? SPDYFrameCodec() else { fail("codec init") }
    var frames: [SPDYFrame] = []
    var i = 0
    var p = 0
    do {
        while i < bytes.count {
            let n = pieces.isEmpty ? bytes.count : max(1, pieces[p % pieces.count])
            p += 1
            frames += try codec.decode(Array(bytes[i..<min(i + n, bytes.count)]))
            i += n
        }
    } catch {
        return nil
    }
    return frames
}

func roundTrip(_ frames: [SPDYFrame], origin: String) {
    guard let encoder = try? SPDYFrameCodec(), let decoder = try? SPDYFrameCodec() else { fail("codec init") }
    var wire: [UInt8] = []
    for frame in frames {
        guard let bytes = try? encoder.encode(frame) else { fail("\(origin): cannot encode \(frame)") }
        wire += bytes
    }
    let again: [SPDYFrame]
    do {
        again = try decoder.decode(wire)
    } catch {
        fail("\(origin): re-encoded frames do not decode (\(error)): \(frames)")
    }
    guard again == frames else { fail("\(origin): frames changed over encode/decode:\n  \(frames)\n  \(again)") }
}

func generatedFrame(_ r: inout Reader) -> SPDYFrame {
    func headers() -> SPDYHeaders {
        var h = SPDYHeaders()
        for _ in 0..<Int(r.next() % 6) {
            let name = r.text(12, nul: true)
            if name.isEmpty { continue }
            h.add(name, r.text(20))
        }
        return h
    }
    let id = r.u32() & 0x7fff_ffff
    switch r.next() % 9 {
    case 0: return .synStream(streamID: id, associatedStreamID: r.u32() & 0x7fff_ffff, priority: r.next() % 8, fin: r.next() & 1 == 1,
                              unidirectional: r.next() & 1 == 1, headers: headers())
    case 1: return .synReply(streamID: id, fin: r.next() & 1 == 1, headers: headers())
    case 2: return .rstStream(streamID: id, status: SPDYResetStatus(rawValue: UInt32(1 + r.next() % 11)) ?? .cancel)
    case 3: return .settings((0..<Int(r.next() % 4)).map { _ in SPDYSetting(flags: r.next(), id: r.u32() & 0xff_ffff, value: r.u32()) })
    case 4: return .ping(id: r.u32())
    case 5: return .goAway(lastGoodStreamID: id, status: r.u32())
    case 6: return .headers(streamID: id, fin: r.next() & 1 == 1, headers: headers())
    case 7: return .windowUpdate(streamID: id, delta: r.u32() & 0x7fff_ffff)
    default: return .data(streamID: id, fin: r.next() & 1 == 1, payload: Array(r.bytes.prefix(Int(r.next()))))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func spdyFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    switch mode % 3 {
    case 0:
        let cuts = Int(bytes.count > 1 ? bytes[1] : 0)
        let pieces = bytes.dropFirst(2).prefix(cuts % 8).map { Int($0) + 1 }
        let stream = Array(bytes.dropFirst(2 + cuts % 8))
        let whole = decodeAll(stream, pieces: [])
        let split = decodeAll(stream, pieces: pieces)
        if (whole == nil) != (split == nil) || (whole != nil && whole! != split!) {
            fail("decoding depends on how the bytes are cut (\(pieces)):\n  whole \(String(describing: whole))\n  split \(String(describing: split))")
        }
        if let whole {
            for frame in whole {
                switch frame {
                case .synStream(_, _, _, _, _, let h), .synReply(_, _, let h), .headers(_, _, let h):
                    if h.encoded().count > (1 << 20) { fail("a header block over 1 MiB decoded") }
                default: break
                }
            }
            roundTrip(whole, origin: "decoded stream")
        }
    case 1:
        var reader = Reader(bytes: bytes.dropFirst())
        var frames: [SPDYFrame] = []
        while !reader.bytes.isEmpty && frames.count < 16 { frames.append(generatedFrame(&reader)) }
        roundTrip(frames, origin: "generated frames")
    default:
        let block = Array(bytes.dropFirst())
        guard let headers = try? SPDYHeaders.decode(block) else { return 0 }
        let again: SPDYHeaders
        do {
            again = try SPDYHeaders.decode(headers.encoded())
        } catch {
            fail("re-encoded header block does not decode (\(error)): \(headers)")
        }
        guard again == headers else { fail("header block changed over encode/decode: \(headers) -> \(again)") }
    }
    return 0
}
