import MVKernels
import XCTest
#if canImport(Glibc)
import Glibc
#endif

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

    /// Dropping a pool stops and joins its workers: creating and dropping pools leaves the
    /// process's thread count where it was.
    func testDroppedPoolsStopTheirThreads() throws {
        guard let before = Self.threadCount() else { throw XCTSkip("no /proc/self/task on this system") }
        for _ in 0..<20 {
            let pool = ThreadPool(threads: 3)
            pool.parallelFor(8) { _, _ in }
        }
        XCTAssertEqual(Self.threadCount(), before)
    }

    /// Threads of this process, from /proc/self/task (Linux).
    static func threadCount() -> Int? {
        guard let dir = opendir("/proc/self/task") else { return nil }
        defer { closedir(dir) }
        var n = 0
        while let entry = readdir(dir) {
            let first = withUnsafeBytes(of: entry.pointee.d_name) { $0[0] }
            if first != UInt8(ascii: ".") { n += 1 }
        }
        return n
    }
}
