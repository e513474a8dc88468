import Foundation
import KubeClient
import KubeCore
import TestSupport
import XCTest

/// Fails the test unless `body` throws a KubeError matching `matches`; returns the error.
@discardableResult
func assertKubeError<T>(_ body: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                        _ matches: (KubeError) -> Bool) async -> KubeError? {
    do {
        _ = try await body()
        XCTFail("expected a KubeError, got success", file: file, line: line)
        return nil
    } catch let error as KubeError {
        XCTAssertTrue(matches(error), "unexpected KubeError: \(error) (\(String(describing: error.status)))", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a KubeError, got \(error)", file: file, line: line)
        return nil
    }
}

