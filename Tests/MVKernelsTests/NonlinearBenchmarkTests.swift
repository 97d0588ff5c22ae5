import MVKernels
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints ns per element of the non-linear kernels on every ISA (no timing assertions). Opt-in and
/// meaningful in release builds only:
/// `MVQUANT_BENCH=1 swift test -c release --filter NonlinearBenchmarkTests`.
final class NonlinearBenchmarkTests: XCTestCase {
    func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// ns per element of `body` (which processes `elements` elements): the minimum over repeated
    /// single calls for 0.1 s, so time stolen by other processes on a shared machine drops out.
    func measure(elements: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        let start = now()
        var calls = 0
        while calls < 20 || now() - start < 0.1 {
            let t0 = now()
            body()
            best = min(best, now() - t0)
            calls += 1
        }
        return best / Double(elements) * 1e9
    }

    func fmt(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return "\(r)"
    }

    func testPrintThroughput() throws {
        guard getenv("MVQUANT_BENCH") != nil else { print("SKIP NonlinearBenchmarkTests: set MVQUANT_BENCH=1"); return }
        var rng = NLRNG(1)
        var lines: [String] = []
        // Softmax: 64 rows of length N.
        let sp = try IntegerSoftmax.Parameters.make(inputScale: 0.002)
        for n in [16, 64, 256, 1024] {
            let rows = 64
            let s = (0..<rows * n).map { _ in Int32(rng.int(-3000, 3000)) }
            var out = [Int8](repeating: 0, count: rows * n)
            var scratch = [Int32](repeating: 0, count: n)
            var cols: [String] = []
            for isa in KernelISA.available where !KernelResolution(family: .softmax, requested: isa).isFallback {
                let ns = s.withUnsafeBufferPointer { sb in out.withUnsafeMutableBufferPointer { ob in scratch.withUnsafeMutableBufferPointer { sc in
                    measure(elements: rows * n) {
                        IntegerSoftmax.run(scores: sb.baseAddress!, scoreRowStride: n, output: ob.baseAddress!, outputRowStride: n,
                                           rowLength: n, rows: 0..<rows, parameters: sp, scratch: sc.baseAddress!, isa: isa)
                    }
                } } }
                cols.append("\(isa.rawValue) \(fmt(ns))")
            }
            lines.append("softmax N=\(n): " + cols.joined(separator: ", ") + " ns/element")
        }
        // LayerNorm: 256 tokens of C channels.
        for c in [64, 96, 240] {
            let tokens = 256
            let lp = try IntegerLayerNorm.Parameters.make(inputScale: 0.05, inputZeroPoint: 3, outputScale: 0.03, outputZeroPoint: -2,
                                                          gamma: (0..<c).map { _ in rng.double(0.2, 2) },
                                                          beta: (0..<c).map { _ in rng.double(-1, 1) }, eps: 1e-5)
            let x = rng.int8s(tokens * c)
            var out = [Int8](repeating: 0, count: tokens * c)
            var cols: [String] = []
            for isa in KernelISA.available where !KernelResolution(family: .layerNorm, requested: isa).isFallback {
                let ns = x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
                    measure(elements: tokens * c) {
                        IntegerLayerNorm.run(input: xb.baseAddress!, inputTokenStride: c, output: ob.baseAddress!, outputTokenStride: c,
                                             tokens: 0..<tokens, parameters: lp, isa: isa)
                    }
                } }
                cols.append("\(isa.rawValue) \(fmt(ns))")
            }
            lines.append("LayerNorm C=\(c): " + cols.joined(separator: ", ") + " ns/element")
        }
        // Element-wise: 64×64 pixels × 64 channels.
        let count = 64 * 64 * 64
        let a = rng.int8s(count), b = rng.int8s(count)
        var out = [Int8](repeating: 0, count: count)
        let ap = try AddInt8.Parameters.make(inputScaleA: 0.05, inputZeroPointA: 3, inputScaleB: 0.08, inputZeroPointB: -9,
                                             outputScale: 0.1, outputZeroPoint: 1)
        var addCols: [String] = []
        for isa in KernelISA.available where !KernelResolution(family: .add, requested: isa).isFallback {
            let addNs = a.withUnsafeBufferPointer { ab in b.withUnsafeBufferPointer { bb in out.withUnsafeMutableBufferPointer { ob in
                measure(elements: count) {
                    AddInt8.run(a: ab.baseAddress!, aRowStride: 64, b: bb.baseAddress!, bRowStride: 64, output: ob.baseAddress!,
                                outputRowStride: 64, columns: 64, rows: 0..<(count / 64), parameters: ap, isa: isa)
                }
            } } }
            addCols.append("\(isa.rawValue) \(fmt(addNs))")
        }
        lines.append("add: " + addCols.joined(separator: ", ") + " ns/element")
        print(lines.joined(separator: "\n"))
    }
}
