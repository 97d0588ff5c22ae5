import MVKernels
import XCTest

/// Per-channel activation tables (`lookupTableStride` 256): every ISA matches the reference, and
/// the reference applies channel c's table to column c.
final class PerChannelTableTests: XCTestCase {
    func testGEMMPerColumnTablesOnEveryISA() {
        var rng = Int8TestRNG(seed: 91)
        for (m, k, n) in [(7, 13, 5), (33, 64, 40), (5, 3, 17), (64, 80, 160)] {
            let a = rng.int8s(m * k), w = rng.int8s(n * k, -127, 127)
            let bias = (0..<n).map { _ in Int32(rng.int(-5000, 5000)) }
            let pairs = (0..<n).map { _ in randomRequantPair(&rng, allowNegativeShift: false) }
            let rq = RequantizationParameters(multipliers: pairs.map(\.0), shifts: pairs.map(\.1))
            let tables = rng.int8s(256 * n)
            let zp = Int32(rng.int(-20, 20)), az = Int32(rng.int(-128, 127))
            func run(_ isa: KernelISA, _ stride: Int) -> [Int8] {
                let b = PackedInt8Matrix(weights: w, n: n, k: k, bias: bias, aZeroPoint: az, requantization: rq, isa: isa)
                var out = [Int8](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { ab in
                    out.withUnsafeMutableBufferPointer { ob in
                        tables.withUnsafeBufferPointer { t in
                            Int8GEMM.run(a: ab.baseAddress!, aRows: .strided(k), m: m, k: k, b: b, output: ob.baseAddress!,
                                         outRows: .strided(n), outputZeroPoint: zp, lookupTable: t.baseAddress,
                                         lookupTableStride: stride)
                        }
                    }
                }
                return out
            }
            let plain = run(.reference, 0)
            let expected = run(.reference, 256)
            // Column c of the per-channel result is table c applied to the table-0 input code.
            var untabled = [Int8](repeating: 0, count: m * n)
            let b = PackedInt8Matrix(weights: w, n: n, k: k, bias: bias, aZeroPoint: az, requantization: rq, isa: .reference)
            a.withUnsafeBufferPointer { ab in
                untabled.withUnsafeMutableBufferPointer { ob in
                    Int8GEMM.run(a: ab.baseAddress!, aRows: .strided(k), m: m, k: k, b: b, output: ob.baseAddress!,
                                 outRows: .strided(n), outputZeroPoint: zp)
                }
            }
            for i in 0..<(m * n) {
                XCTAssertEqual(expected[i], tables[(i % n) * 256 + Int(untabled[i]) + 128])
                XCTAssertEqual(plain[i], tables[Int(untabled[i]) + 128])
            }
            for isa in KernelISA.available where isa != .reference {
                XCTAssertEqual(run(isa, 256), expected, "\(isa) m=\(m) k=\(k) n=\(n)")
            }
        }
    }

    func testDepthwisePerChannelTablesOnEveryISA() {
        var rng = Int8TestRNG(seed: 92)
        for (h, w, c, stride) in [(5, 7, 3, 1), (9, 6, 37, 2), (8, 8, 32, 1)] {
            let input = rng.int8s(h * w * c), weights = rng.int8s(c * 9, -127, 127)
            let bias = (0..<c).map { _ in Int32(rng.int(-3000, 3000)) }
            let pairs = (0..<c).map { _ in randomRequantPair(&rng, allowNegativeShift: false) }
            let rq = RequantizationParameters(multipliers: pairs.map(\.0), shifts: pairs.map(\.1))
            let tables = rng.int8s(256 * c)
            let (oh, ow) = DepthwiseConv3x3Int8.outputSize(inputHeight: h, inputWidth: w, stride: stride)
            func run(_ isa: KernelISA) -> [Int8] {
                let dw = DepthwiseConv3x3Int8(weights: weights, bias: bias, channels: c, inputZeroPoint: 3, requantization: rq, isa: isa)
                var out = [Int8](repeating: 0, count: oh * ow * c)
                input.withUnsafeBufferPointer { ib in
                    out.withUnsafeMutableBufferPointer { ob in
                        tables.withUnsafeBufferPointer { t in
                            dw.run(input: ib.baseAddress!, inputHeight: h, inputWidth: w, stride: stride, output: ob.baseAddress!,
                                   outputZeroPoint: -5, lookupTable: t.baseAddress, lookupTableStride: 256, rows: 0..<oh)
                        }
                    }
                }
                return out
            }
            let expected = run(.reference)
            for isa in KernelISA.available where isa != .reference {
                XCTAssertEqual(run(isa), expected, "\(isa) \(h)x\(w)x\(c) stride \(stride)")
            }
        }
    }
}
