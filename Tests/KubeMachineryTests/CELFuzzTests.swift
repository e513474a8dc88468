import Foundation
import KubeCore
import KubeMachinery
import XCTest

/// Feeds random and mutated rules through compile and evaluate. Any outcome but a crash or a
/// non-CEL error is acceptable; the counters make sure the corpus exercises both paths.
final class CELFuzzTests: XCTestCase {
    /// SplitMix64: deterministic, so a failure reproduces.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seeds = [
        "duration(self.rotateBefore) < duration(self.tokenTTL)",
        "!has(self.timeout) || (duration(self.timeout) >= duration('30s') && duration(self.timeout) <= duration('24h'))",
        "self.rules.all(r, r.verbs.size() > 0)",
        "self.x == oldSelf.x",
        "self.name.matches('^[a-z]+$') ? [1, 2u, 3.0][0] : {'a': b'x'}['a']",
        "timestamp('2024-01-01T00:00:00Z') + duration('-1.5h') > timestamp(0)",
        "self.rules.map(r, r.verbs.filter(v, v.startsWith('g'))).exists_one(l, size(l) == 1)",
        "int('12') % 5 - -9223372036854775807 / 3 * uint(2) == double(\"1e3\")",
        "'''tri\\x41ple''' + r\"raw\\n\" in ['a'].map(x, string(x).upperAscii().trim())",
    ]

    static let vocabulary = [
        "self", "oldSelf", ".", "x", "rules", "verbs", "(", ")", "[", "]", "{", "}", ",", ":", "?", "!", "-", "+",
        "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in", "has", "size", "all", "exists",
        "exists_one", "map", "filter", "duration", "timestamp", "int", "uint", "double", "string", "bool", "bytes",
        "matches", "'1h'", "'abc'", "\"(\"", "r'\\d'", "b'\\xff'", "'''", "0", "1", "-1", "1u", "1.5", "1e308",
        "9223372036854775807", "0x", "true", "false", "null", "r", " ", "\\", "'", "\"", "µ", "😀", "\n",
    ]

    let object: JSONValue = [
        "x": 1, "name": "abc", "timeout": "5m", "rotateBefore": "5m", "tokenTTL": "1h",
        "rules": [["verbs": ["get", "list"]], ["verbs": []]],
    ]

    func testRandomAndMutatedRulesNeverCrash() {
        var rng = Generator(state: 0xC0FFEE)
        var compiled = 0, evaluated = 0, failed = 0
        for iteration in 0..<4_000 {
            let source: String
            switch iteration % 3 {
            case 0:
                let count = Int.random(in: 1...25, using: &rng)
                source = (0..<count).map { _ in Self.vocabulary.randomElement(using: &rng) ?? "" }.joined(separator: Bool.random(using: &rng) ? " " : "")
            case 1:
                source = mutate(Self.seeds.randomElement(using: &rng) ?? "", rng: &rng)
            default:
                let count = Int.random(in: 0...40, using: &rng)
                var scalars = String.UnicodeScalarView()
                for _ in 0..<count {
                    let value = Bool.random(using: &rng) ? UInt32.random(in: 0x20...0x7E, using: &rng) : UInt32.random(in: 0...0x1FFFF, using: &rng)
                    if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
                }
                source = String(scalars)
            }
            do {
                let program = try CELProgram(compiling: source, maxSteps: 10_000)
                compiled += 1
                _ = try program.evaluate(self: object, oldSelf: object)
                evaluated += 1
            } catch is CELError {
                failed += 1
            } catch {
                XCTFail("non-CEL error for \(source): \(error)")
            }
        }
        print("CEL fuzz: \(compiled) compiled, \(evaluated) evaluated, \(failed) rejected")
        XCTAssertGreaterThan(compiled, 100)
        XCTAssertGreaterThan(evaluated, 50)
        XCTAssertGreaterThan(failed, 1_000)
    }

    /// Random but well-formed expressions, so most reach the evaluator: extreme numbers,
    /// every operator and builtin, mixed types. Errors are expected; traps are not.
    func testRandomWellFormedExpressionsNeverCrash() {
        var rng = Generator(state: 0xCE1)
        var evaluated = 0, failed = 0
        for _ in 0..<3_000 {
            let source = expression(depth: 0, rng: &rng)
            do {
                _ = try CELProgram(compiling: source, maxSteps: 10_000).evaluate(self: object, oldSelf: object)
                evaluated += 1
            } catch is CELError {
                failed += 1
            } catch {
                XCTFail("non-CEL error for \(source): \(error)")
            }
        }
        print("CEL grammar fuzz: \(evaluated) evaluated, \(failed) errors")
        XCTAssertGreaterThan(evaluated, 500)
        XCTAssertGreaterThan(failed, 300)
    }

    static let atoms = [
        "0", "1", "-1", "9223372036854775807", "-9223372036854775808", "18446744073709551615u", "0u", "1.5", "-0.0",
        "1e308", "0.0/0.0", "'abc'", "''", "'😀é'", "b'\\xff'", "true", "false", "null", "[]", "[1, 'a']", "{'k': 2}",
        "self", "self.x", "self.rules", "self.name", "oldSelf.x", "duration('-2562047h')", "duration('1.5h')",
        "timestamp('0001-01-01T00:00:00Z')", "timestamp('9999-12-31T23:59:59Z')", "int", "type(1)",
    ]
    static let binaryOperators = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in"]
    static let functions = [
        "size", "int", "uint", "double", "string", "bool", "bytes", "duration", "timestamp", "type", "dyn",
    ]
    static let methods = [
        "size()", "startsWith('a')", "endsWith('')", "contains('b')", "matches('^a+$')", "lowerAscii()", "upperAscii()",
        "trim()", "split(',')", "join('-')", "replace('a', 'bb')", "indexOf('c')", "substring(1)", "charAt(0)",
        "isSorted()", "sum()", "min()", "max()", "getHours()", "getFullYear()", "getMilliseconds()",
        "all(v, v > 0)", "exists(v, v == 1)", "exists_one(v, true)", "map(v, v + v)", "filter(v, v != null)",
    ]

    private func expression(depth: Int, rng: inout Generator) -> String {
        let pick = depth > 4 ? 0 : Int.random(in: 0..<7, using: &rng)
        switch pick {
        case 0, 1:
            return Self.atoms.randomElement(using: &rng) ?? "1"
        case 2:
            let op = Self.binaryOperators.randomElement(using: &rng) ?? "+"
            return "(\(expression(depth: depth + 1, rng: &rng)) \(op) \(expression(depth: depth + 1, rng: &rng)))"
        case 3:
            let function = Self.functions.randomElement(using: &rng) ?? "size"
            return "\(function)(\(expression(depth: depth + 1, rng: &rng)))"
        case 4:
            return "\(expression(depth: depth + 1, rng: &rng)).\(Self.methods.randomElement(using: &rng) ?? "size()")"
        case 5:
            return "(\(expression(depth: depth + 1, rng: &rng)) ? \(expression(depth: depth + 1, rng: &rng)) : \(expression(depth: depth + 1, rng: &rng)))"
        default:
            let prefix = ["-", "!", "has(self.", "[", "{'a': "].randomElement(using: &rng) ?? "-"
            let inner = expression(depth: depth + 1, rng: &rng)
            switch prefix {
            case "has(self.": return "has(self.\(["x", "rules", "missing"].randomElement(using: &rng) ?? "x"))"
            case "[": return "[\(inner)][\(["0", "1", "-1", "0u"].randomElement(using: &rng) ?? "0")]"
            case "{'a': ": return "{'a': \(inner)}['a']"
            default: return prefix + inner
            }
        }
    }

    private func mutate(_ seed: String, rng: inout Generator) -> String {
        var scalars = Array(seed.unicodeScalars)
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = Int.random(in: 0...scalars.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where position < scalars.count:
                scalars.remove(at: position)
            case 1:
                let token = Self.vocabulary.randomElement(using: &rng) ?? ""
                scalars.insert(contentsOf: token.unicodeScalars, at: position)
            case 2 where position < scalars.count:
                scalars[position] = scalars[Int.random(in: 0..<scalars.count, using: &rng)]
            default:
                let end = min(scalars.count, position + Int.random(in: 0...8, using: &rng))
                let slice = Array(scalars[position..<end])
                scalars.insert(contentsOf: slice, at: position)
            }
        }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars)
        return String(text)
    }
}
