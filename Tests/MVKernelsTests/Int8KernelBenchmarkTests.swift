import MVKernels
import XCTest

/// Prints int8 kernel throughput (no timing assertions). Meaningful in release builds:
/// `swift test -c release --filter Int8KernelBenchmarkTests`. Set MVQUANT_BENCH_SECONDS to change
/// the measuring time per shape (default 0.05 s).
final class Int8KernelBenchmarkTests: XCTestCase {
    func testPrintThroughput() {
        var seconds = 0.05
        if let raw = getenv("MVQUANT_BENCH_SECONDS"), let v = Double(String(cString: raw)) { seconds = v }
        #if DEBUG
        // Debug builds compile the C kernels at -O0 and the Swift reference unoptimised: these
        // figures only show the benchmark runs; measure with `-c release`.
        print("int8 kernel benchmark in a DEBUG build (figures not meaningful; use swift test -c release):")
        print(Int8KernelBenchmark.report(minSeconds: min(seconds, 0.01), isas: KernelISA.available.filter { $0 != .reference }))
        #else
        print(Int8KernelBenchmark.report(minSeconds: seconds))
        #endif
    }
}
