import Foundation
import Logging
@testable import SessionStore
import XCTest

/// How the SQLite driver checkpoints its WAL under sustained writes: a few checkpoints per
/// `checkpointPages` frames, not one per commit, and a WAL that starts over instead of growing.
final class SQLiteCheckpointTests: XCTestCase {
    func testSustainedCommitsCheckpointOncePerThousandFramesNotOncePerCommit() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let path = String(url.dropFirst("sqlite:".count))
        // One request in flight: every commit runs inline, as a lone gateway client's do.
        let load = RequestLoad()
        load.enter()
        let driver = try await SQLiteDriver.open(path: path, synchronousFull: false, load: load, logger: Logger(label: "test"))
        _ = try await driver.write { tx in
            try await tx.query("CREATE TABLE records (id INTEGER PRIMARY KEY, body BLOB NOT NULL)", [])
        }
        // 8,000 commits of an 8 KiB row, 0.3 ms apart as a lone gateway client makes them:
        // three or four WAL frames each, so past `restartFrames` three times. The pace
        // matters: a checkpoint takes longer than the gap between two commits (two fsyncs), so
        // it never finds the WAL idle, and a checkpointer starting one whenever none is running
        // runs one every few commits.
        let commits = 8_000
        let body = SQLValue.blob([UInt8](repeating: 0x5A, count: 8 * 1024))
        var largestWAL = 0
        for index in 0..<commits {
            try await driver.write { tx in
                try await tx.query("INSERT INTO records (id, body) VALUES (?, ?)", [.int(Int64(index)), body])
            }
            let next = Date().addingTimeInterval(0.000_3)
            while Date() < next {}   // a sleep this short oversleeps
            if index % 100 == 0 {
                let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
                largestWAL = max(largestWAL, size)
            }
        }
        let checkpoints = driver.checkpointCount
        // Each cycle of about 1,000 frames is at most `maxPasses` background checkpoints and
        // one by the writer. A checkpoint started at every commit that found none running —
        // chasing the WAL's tail — ran hundreds.
        let cycles = commits * 4 / Int(SQLiteDriver.checkpointPages) + 1
        XCTAssertGreaterThan(checkpoints, 0, "no checkpoint ran: the WAL is never copied back")
        XCTAssertLessThanOrEqual(checkpoints, cycles * (WALCheckpointer.maxPasses + 1),
                                 "\(checkpoints) checkpoints for \(commits) commits: checkpoints chase the WAL's tail")
        // The WAL starts over once it holds `restartFrames`, give or take what is committed
        // while the last background passes and flushes run: far less than the 30,000 frames
        // (120 MiB) written here.
        XCTAssertLessThan(largestWAL, Int(SQLiteDriver.restartFrames * 2) * 4_096,
                          "the WAL grew to \(largestWAL) bytes: it does not start over")
        let rows = try await driver.read("SELECT COUNT(*) AS n, SUM(LENGTH(body)) AS bytes FROM records", [])
        XCTAssertEqual(rows.first?.int("n"), Int64(commits))
        XCTAssertEqual(rows.first?.int("bytes"), Int64(commits * 8 * 1024))
        try await driver.close()
    }
}
