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

    /// The job API splits 0..<count into `tasks` contiguous ranges: every unit runs exactly once,
    /// in ranges of the expected sizes, whatever the thread and task counts.
    func testRangeJobsCoverEveryUnitOnce() {
        struct Mark: ParallelRangeJob, @unchecked Sendable {
            let hits: UnsafeMutablePointer<Int>
            let ranges: UnsafeMutablePointer<Int>  // per unit: the length of the range that ran it
            let threads: Int
            func run(_ units: Range<Int>, worker: Int) {
                precondition(worker >= 0 && worker < threads)
                for u in units {
                    hits[u] += 1
                    ranges[u] = units.count
                }
            }
        }
        for threads in [1, 2, 3] {
            let pool = ThreadPool(threads: threads)
            for (count, tasks) in [(1, 1), (7, 3), (100, 8), (5, 9), (64, 0), (1000, 12)] {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
                let ranges = UnsafeMutablePointer<Int>.allocate(capacity: count)
                hits.initialize(repeating: 0, count: count)
                ranges.initialize(repeating: 0, count: count)
                pool.parallelFor(count, tasks: tasks, Mark(hits: hits, ranges: ranges, threads: threads))
                let split = min(max(tasks, 1), count)
                for u in 0..<count {
                    XCTAssertEqual(hits[u], 1, "threads \(threads) count \(count) tasks \(tasks) unit \(u)")
                    if threads > 1 {
                        XCTAssertTrue([count / split, (count + split - 1) / split].contains(ranges[u]))
                    }
                }
                hits.deallocate()
                ranges.deallocate()
            }
        }
    }

    /// Dropping a pool stops and joins its workers: creating and dropping 20 pools of 3 threads
    /// (40 workers) leaves the process with no more threads than it had.
    ///
    /// A joined thread can stay listed in /proc/self/task for a moment after `pthread_join`
    /// returns (the kernel wakes the joiner before it reaps the task; under qemu-user the host
    /// thread outlives the guest's exit for longer). Threads of earlier tests may therefore still
    /// be leaving while this one counts, so the test waits, up to 10 s, for the count to fall to
    /// the starting one or below, rather than asking for equality at one instant. A leak keeps
    /// 40 threads alive and never satisfies it.
    func testDroppedPoolsStopTheirThreads() throws {
        guard let before = Self.threadCount() else { throw XCTSkip("no /proc/self/task on this system") }
        for _ in 0..<20 {
            let pool = ThreadPool(threads: 3)
            pool.parallelFor(8) { _, _ in }
        }
        var after = Self.threadCount() ?? Int.max
        var waitedMilliseconds = 0
        while after > before && waitedMilliseconds < 10_000 {
            usleep(10_000)
            waitedMilliseconds += 10
            after = Self.threadCount() ?? Int.max
        }
        XCTAssertLessThanOrEqual(after, before, "threads: \(before) before, \(after) after dropping the pools")
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
