@testable import MVKernels
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

final class NonlinearSoftmaxTests: XCTestCase {
    /// Runs one row through `IntegerSoftmax` on `isa`.
    func softmax(_ s: [Int32], _ p: IntegerSoftmax.Parameters, isa: KernelISA = .reference) -> [Int8] {
        var out = [Int8](repeating: 0, count: s.count)
        var scratch = [Int32](repeating: 0, count: IntegerSoftmax.scratchCount(rowLength: s.count))
        s.withUnsafeBufferPointer { sp in
            out.withUnsafeMutableBufferPointer { op in
                scratch.withUnsafeMutableBufferPointer { sc in
                    IntegerSoftmax.run(scores: sp.baseAddress!, scoreRowStride: s.count, output: op.baseAddress!,
                                       outputRowStride: s.count, rowLength: s.count, rows: 0..<1, parameters: p,
                                       scratch: sc.baseAddress!, isa: isa)
                }
            }
        }
        return out
    }

    /// Float softmax of the dequantised scores (double precision).
    func floatSoftmax(_ s: [Int32], scale: Double) -> [Double] {
        let m = s.max()!
        let e = s.map { Glibc.exp(scale * (Double($0) - Double(m))) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    func testExp2FractionPolynomialExhaustive() {
        var worst = 0.0
        var prev = UInt32.max
        for x in UInt32(0)..<2048 {
            let p = IntegerSoftmax.exp2Fraction(x)
            XCTAssertLessThan(p, prev, "not strictly decreasing at \(x)")
            prev = p
            XCTAssert(p >= 32768 && p <= 65535)
            let exact = 65536 * Glibc.exp2(-Double(x) / 2048)
            worst = max(worst, Swift.abs(Double(p) - exact) / exact)
        }
        XCTAssertGreaterThanOrEqual(2 * IntegerSoftmax.exp2Fraction(2047), IntegerSoftmax.exp2Fraction(0))
        print("exp2Fraction: max relative error \(worst)")
        XCTAssertLessThanOrEqual(worst, 1.04e-4)
    }

    /// Steps 2-4 alone: e of every score difference against 32766 · e^(S·(s − m)), over input
    /// scales from 1e-5 to 10 (pre-shifts, no shift and left shifts): relative to the row
    /// maximum's e, within the truncations of steps 2-3 less their + 1 offset (1 Q11 unit, 3.4e-4),
    /// the rounding of the multiplier (2^−14 · u), the polynomial (1.04e-4) and the rounding to Q15
    /// (half a unit).
    func testExpErrorBound() throws {
        var rng = NLRNG(5)
        var worst = 0.0, checked = 0
        var sawPre = false, sawLeft = false, sawNone = false
        for scale in [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 0.01, 0.05, 0.1, 0.17, 0.3, 1, 3, 10] + (0..<40).map({ _ in rng.logUniform(1e-5, 10) }) {
            let p = try IntegerSoftmax.Parameters.make(inputScale: scale)
            sawPre = sawPre || p.expPreShift > 0
            sawLeft = sawLeft || p.expLeftShift > 0
            sawNone = sawNone || (p.expPreShift == 0 && p.expLeftShift == 0)
            // Differences up to where e^(−S·d) · 32766 falls under 0.5, densely near 0.
            let top = 12.0 / scale
            for j in 0..<4000 {
                let d = j < 1000 ? Double(j) : (rng.bool() ? rng.double(0, top) : rng.logUniform(1, top))
                let diff = UInt32(min(d.rounded(), Double(UInt32.max)))
                let e = Double(IntegerSoftmax.expQ15(diff, p))
                let exact = 32766 * Glibc.exp(-scale * Double(diff))
                let err = Swift.abs(e - exact) - 0.5
                worst = max(worst, err / 32766)
                // u within 1 Q11 unit and 2^−14 · u either side of the exact S′·d.
                let uExact = scale * Double(diff) * 1.44269504088896338700 * 2048
                let uError = 1 + uExact / 16384
                XCTAssertLessThanOrEqual(err, exact * (uError * 0.693147 / 2048 + 1.04e-4) + 1e-9,
                                         "scale \(scale) diff \(diff): e \(e), exact \(exact)")
                checked += 1
            }
        }
        XCTAssertTrue(sawPre && sawLeft && sawNone, "the scales should cover all three shift cases")
        print("softmax e: \(checked) differences; worst |e − exact| − ½ relative to the maximum's e: \(worst)")
    }

    /// Rows of the kinds attention produces, for a given scale.
    func makeRows(_ rng: inout NLRNG, scale: Double, count: Int, maxLength: Int = 1024) -> [[Int32]] {
        var rows: [[Int32]] = []
        let lengths = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 256, 1024].filter { $0 <= maxLength }
        for i in 0..<count {
            let n = i < lengths.count ? lengths[i] : rng.int(1, maxLength)
            // Spread of the real logits: from nearly flat to very peaked.
            let spread = [0.1, 1, 4, 10, 30][rng.int(0, 4)]
            let center = rng.double(-1e6, 1e6)
            var row = (0..<n).map { _ -> Int32 in
                let real = spread * rng.normal()
                return Int32(clamping: Int64((center + real / scale).rounded()))
            }
            switch rng.int(0, 5) {
            case 0:  // one dominant logit
                row[rng.int(0, n - 1)] = Int32(clamping: Int64((center + (spread * 3 + 12) / scale).rounded()))
            case 1:  // all equal
                let v = row[0]
                row = [Int32](repeating: v, count: n)
            case 2:  // two levels
                let a = row[0], b = Int32(clamping: Int64(a) - Int64((rng.double(0, 8) / scale).rounded()))
                row = (0..<n).map { _ in rng.bool() ? a : b }
            default: break
            }
            rows.append(row)
        }
        return rows
    }

    /// Max abs error of the probabilities against float softmax, within the documented bound.
    func testAccuracyAgainstFloat() throws {
        var rng = NLRNG(42)
        let scales = [1e-5, 1e-4, 3e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.25, 0.5, 3, 10]
        let outputs: [(Double, Int32)] = [(1.0 / 256, -128), (1.0 / 255, -128), (1.0 / 1024, -128), (1.0 / 128, 0)]
        var worstUnsat = 0.0, worstSat = 0.0, worstSumExcess = 0.0, rowsChecked = 0
        var worstExcess = 0.0, worstAbsExcess = 0.0
        /// Beyond the final rounding's half step: relative errors of e and of the reciprocal,
        /// and e's rounding to Q15 (see IntegerSoftmax).
        func bound(_ p: Double, _ n: Int) -> Double { 1e-3 * p + Double(n) / 65532 * p + 2e-5 }
        for (outScale, outZP) in outputs {
            for scale in scales {
                let p = try IntegerSoftmax.Parameters.make(inputScale: scale, outputScale: outScale, outputZeroPoint: outZP)
                let count = outScale == 1.0 / 256 ? 40 : 12
                for row in makeRows(&rng, scale: scale, count: count) {
                    let q = softmax(row, p)
                    let f = floatSoftmax(row, scale: scale)
                    let top = Double(127 - outZP) * outScale
                    var sum = 0.0, sumBound = 0.0
                    for i in 0..<row.count {
                        let deq = Double(Int32(q[i]) - outZP) * outScale
                        sum += deq
                        let err = Swift.abs(deq - f[i])
                        if f[i] > Double(127.5 - Double(outZP)) * outScale {
                            XCTAssertEqual(Int32(q[i]), 127)
                            if outScale == 1.0 / 256 { worstSat = max(worstSat, err / outScale) }
                            XCTAssertLessThanOrEqual(err, f[i] - top + bound(f[i], row.count))
                            sumBound += f[i] - top + bound(f[i], row.count)
                        } else {
                            worstUnsat = max(worstUnsat, err / outScale)
                            worstExcess = max(worstExcess, (err - 0.5 * outScale) / max(f[i], 1e-9))
                            worstAbsExcess = max(worstAbsExcess, err - 0.5 * outScale)
                            XCTAssertLessThanOrEqual(err, 0.5 * outScale + bound(f[i], row.count), "n=\(row.count) scale=\(scale) i=\(i) p=\(f[i]) q=\(q[i])")
                            sumBound += min(f[i] + bound(f[i], row.count), 0.5 * outScale + bound(f[i], row.count))
                        }
                    }
                    // The row sum is as close to 1 as element-wise rounding allows.
                    XCTAssertLessThanOrEqual(Swift.abs(sum - 1), sumBound + 1e-9)
                    if outScale == 1.0 / 256 && row.count <= 64 {
                        worstSumExcess = max(worstSumExcess, Swift.abs(sum - 1))
                    }
                    // Order is preserved: a larger score never gets a smaller probability.
                    let order = row.indices.sorted { row[$0] < row[$1] }
                    for j in 1..<order.count { XCTAssertLessThanOrEqual(q[order[j - 1]], q[order[j]]) }
                    rowsChecked += 1
                }
            }
        }
        print("softmax: \(rowsChecked) rows; max (|err| − ½ LSB)/p \(worstExcess), max |err| − ½ LSB \(worstAbsExcess); max |err| unsaturated \(worstUnsat) output LSB; saturated (1/256, p > 255.5/256) \(worstSat) LSB; max |Σp − 1| (1/256, n ≤ 64) \(worstSumExcess)")
    }

    func testSpecialRows() throws {
        let p = try IntegerSoftmax.Parameters.make(inputScale: 0.01)
        // Single element: probability 1 saturates to the top code.
        XCTAssertEqual(softmax([12345], p), [127])
        // All equal rows: exactly 1/n each.
        for n in [1, 2, 4, 8, 16, 64, 256, 1024] {  // (512 would be an exact rounding tie)
            let q = softmax([Int32](repeating: -77, count: n), p)
            let expected = Int32((256.0 / Double(n)).rounded(.toNearestOrAwayFromZero)) - 128
            XCTAssertEqual(Set(q), [Int8(max(-128, min(127, expected)))], "n=\(n)")
        }
        // Extreme int32 values: differences past 2^31 are handled (unsigned) and give 0.
        let q = softmax([Int32.min, Int32.max, 0, Int32.max], p)
        XCTAssertEqual(q[0], -128)
        XCTAssertEqual(q[2], -128)
        XCTAssertEqual(q[1], q[3])
        XCTAssertEqual(Int(q[1]), 0)  // 0.5 each → 128 − 128
        // A dominant logit takes everything.
        let dom = softmax([0, 0, 0, 100_000], p)
        XCTAssertEqual(dom, [-128, -128, -128, 127])
    }

    func testLongRows() throws {
        var rng = NLRNG(7)
        let p = try IntegerSoftmax.Parameters.make(inputScale: 0.02, outputScale: 1.0 / 2048, outputZeroPoint: -128)
        for n in [2048, 4096] {
            let row = (0..<n).map { _ in Int32(rng.int(-400, 400)) }
            let q = softmax(row, p)
            let f = floatSoftmax(row, scale: 0.02)
            for i in 0..<n {
                let deq = Double(Int32(q[i]) + 128) / 2048
                if f[i] <= 255.5 / 2048 { XCTAssertLessThanOrEqual(Swift.abs(deq - f[i]), 0.5 / 2048 + 1e-3 * f[i] + 3e-5) }
            }
        }
    }

    /// Every SIMD path equals the reference bit for bit, on random shapes, strides and parameters.
    func testSIMDBitExact() throws {
        if nonlinearSIMDISAs.isEmpty { print("softmax SIMD: no SIMD ISA on this machine") }
        var rng = NLRNG(99)
        for isa in nonlinearSIMDISAs {
            var cases = 0
            for it in 0..<300 {
                let n = it < 40 ? it + 1 : (it % 50 == 0 ? [1024, 4096, 777][it / 50 % 3] : rng.int(1, 300))
                let rows = rng.int(1, 4)
                let inStride = n + rng.int(0, 5), outStride = n + rng.int(0, 9)
                let scale = rng.logUniform(1e-6, 10)
                let outScale = [1.0 / 256, 1.0 / 255, rng.logUniform(1.0 / 2048, 1)][rng.int(0, 2)]
                let p = try IntegerSoftmax.Parameters.make(inputScale: scale, outputScale: outScale,
                                                           outputZeroPoint: Int32(rng.int(-128, 127)))
                var s = [Int32](repeating: 0, count: rows * inStride)
                let mode = rng.int(0, 3)
                for i in s.indices {
                    switch mode {
                    case 0: s[i] = Int32(truncatingIfNeeded: rng.next())
                    case 1: s[i] = Int32(rng.int(-3000, 3000))
                    case 2: s[i] = Int32(rng.int(-20, 20)) * Int32(rng.int(1, 1000))
                    default: s[i] = rng.bool() ? Int32.max : Int32(rng.int(-5, 5))
                    }
                }
                var ref = [Int8](repeating: 0, count: rows * outStride), got = ref
                var scratch = [Int32](repeating: 0, count: IntegerSoftmax.scratchCount(rowLength: n))
                let lo = rng.int(0, rows - 1)
                for (dst, k) in [(0, isa), (1, KernelISA.reference)] {
                    var o = [Int8](repeating: 3, count: rows * outStride)
                    s.withUnsafeBufferPointer { sp in
                        o.withUnsafeMutableBufferPointer { op in
                            scratch.withUnsafeMutableBufferPointer { sc in
                                IntegerSoftmax.run(scores: sp.baseAddress!, scoreRowStride: inStride, output: op.baseAddress!,
                                                   outputRowStride: outStride, rowLength: n, rows: lo..<rows, parameters: p,
                                                   scratch: sc.baseAddress!, isa: k)
                            }
                        }
                    }
                    if dst == 0 { got = o } else { ref = o }
                }
                XCTAssertEqual(got, ref, "\(isa) n=\(n) rows=\(rows) scale=\(scale) outScale=\(outScale)")
                cases += 1
            }
            print("softmax \(isa.rawValue): \(cases) random cases bit-exact with the reference")
        }
    }
}
