import Foundation
import SessionStore
import XCTest

/// Ids (`SortableID`) sort by their time and never repeat: the random part comes from a pool
/// refilled from the kernel, so ids drawn across many refills and from many threads at once,
/// all in the same millisecond, must still all differ.
final class SortableIDTests: XCTestCase {
    func testIdsOfOneMillisecondFromManyThreadsAreAllDistinctAndWellFormed() async {
        let moment = Date(timeIntervalSince1970: 1_750_000_000.123)
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<2_000).map { _ in SortableID.make(at: moment) } }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        XCTAssertEqual(ids.count, 16_000)
        XCTAssertEqual(Set(ids).count, ids.count, "an id was handed out twice")
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for id in ids.prefix(100) {
            XCTAssertEqual(id.count, 26)
            XCTAssertTrue(id.allSatisfy(alphabet.contains), id)
            XCTAssertEqual(id.prefix(10), ids[0].prefix(10), "the same millisecond, the same time prefix")
        }
        // Every random digit takes many values: the bits are not stuck.
        for position in 10..<26 {
            let digits = Set(ids.prefix(1_000).map { Array($0)[position] })
            XCTAssertGreaterThan(digits.count, 16, "digit \(position)")
        }
    }

    func testLaterIdsSortAfterEarlierOnes() {
        let early = SortableID.make(at: Date(timeIntervalSince1970: 1_750_000_000))
        let late = SortableID.make(at: Date(timeIntervalSince1970: 1_750_000_000.002))
        XCTAssertLessThan(early, late)
    }
}
