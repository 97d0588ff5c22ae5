import MVKernels
import XCTest

final class ThreadPoolTests: XCTestCase {
    /// Many short jobs back to back (as an executor issues them): every index runs exactly once per
    /// job, and no job's closure outlives its call (the runtime traps if it escapes).
    func testBackToBackJobsRunEveryIndexOnce() {
        for threads in [1, 2, 3, 4] {
            let pool = ThreadPool(threads: threads)
            for job in 0..<3000 {
                let count = 1 + job % 9
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress!
                    pool.parallelFor(count) { i, worker in
                        XCTAssert(worker >= 0 && worker < threads)
                        base[i] += 1
                    }
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: count), "threads \(threads) job \(job)")
            }
        }
    }
}
