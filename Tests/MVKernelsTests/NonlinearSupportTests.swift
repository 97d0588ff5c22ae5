import MVKernels
import MVKernelsC
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Deterministic generator for the non-linear kernel tests (SplitMix64).
struct NLRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in lo...hi (inclusive).
    mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }
    mutating func bool() -> Bool { next() & 1 == 1 }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func double(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }
    /// Log-uniform in [lo, hi].
    mutating func logUniform(_ lo: Double, _ hi: Double) -> Double { Glibc.exp(double(Glibc.log(lo), Glibc.log(hi))) }
    mutating func normal() -> Double {
        let u = max(unit(), 1e-300), v = unit()
        return (-2 * Glibc.log(u)).squareRoot() * Glibc.cos(2 * Double.pi * v)
    }
    mutating func int8s(_ n: Int, _ lo: Int = -128, _ hi: Int = 127) -> [Int8] { (0..<n).map { _ in Int8(int(lo, hi)) } }
}

/// The SIMD ISAs this machine has (every non-reference entry of `KernelISA.available`).
let nonlinearSIMDISAs: [KernelISA] = KernelISA.available.filter { $0 != .reference }

final class NonlinearSupportTests: XCTestCase {
    func testIntegerSquareRoot() {
        func check(_ x: UInt64, file: StaticString = #filePath, line: UInt = #line) {
            let r = integerSquareRoot(x)
            let sq = r.multipliedFullWidth(by: r)
            XCTAssert(sq.high == 0 && sq.low <= x, "floor sqrt too big at \(x)", file: file, line: line)
            let r1 = (r + 1).multipliedFullWidth(by: r + 1)
            XCTAssert(r1.high > 0 || r1.low > x, "floor sqrt too small at \(x)", file: file, line: line)
            let rr = integerSquareRootRounded(x)
            // Nearest: (2rr − 1)² ≤ 4x < (2rr + 1)², compared exactly in 128 bits.
            func wide(_ v: (high: UInt64, low: UInt64)) -> (UInt64, UInt64) { (v.high, v.low) }
            let four = wide(x.multipliedFullWidth(by: 4))
            let below = rr == 0 ? (0, 0) : wide((2 * rr - 1).multipliedFullWidth(by: 2 * rr - 1))
            let above = (2 * rr + 1).multipliedFullWidth(by: 2 * rr + 1)
            XCTAssert(x == 0 || below <= four, "rounded sqrt too big at \(x)", file: file, line: line)
            XCTAssert(above.high > 0 || four < wide(above), "rounded sqrt too small at \(x)", file: file, line: line)
        }
        for x: UInt64 in 0...100_000 { check(x) }
        var rng = NLRNG(1)
        for _ in 0..<100_000 {
            let bits = rng.int(1, 64)
            check(bits == 64 ? rng.next() : rng.next() >> UInt64(64 - bits))
        }
        // (Typed parts: Swift 6.0's type checker cannot infer this concatenation.)
        let strided: [UInt64] = Array(stride(from: UInt64(1), to: UInt64(1) << 32, by: 65_521))
        let top: [UInt64] = [(UInt64(1) << 32) - 3, (UInt64(1) << 32) - 2, (UInt64(1) << 32) - 1]
        for k in strided + top {
            check(k * k); check(k * k - 1); check(k * k + 1); check(k * k + k); check(k * k + k + 1)
        }
        check(UInt64.max); check(UInt64.max - 1); check(1 << 62); check((1 << 62) - 1)
        XCTAssertEqual(integerSquareRoot(UInt64.max), 4_294_967_295)
        XCTAssertEqual(integerSquareRootRounded(UInt64.max), 4_294_967_296)
        XCTAssertEqual(integerSquareRootRounded(2), 1)
        XCTAssertEqual(integerSquareRootRounded(3), 2)
        XCTAssertEqual(integerSquareRootRounded(6), 2)
        XCTAssertEqual(integerSquareRootRounded(7), 3)
    }

    func testDeterministicMathMatchesLibm() {
        var worstExp = 0.0, worstErf = 0.0, worstTanh = 0.0
        var x = -740.0
        while x < 709 {
            let a = DeterministicMath.exp(x), b = Glibc.exp(x)
            if b > 1e-300 { worstExp = max(worstExp, Swift.abs(a - b) / b) }
            x += 0.0137
        }
        x = -7
        while x < 7 {
            worstErf = max(worstErf, Swift.abs(DeterministicMath.erf(x) - Glibc.erf(x)))
            worstTanh = max(worstTanh, Swift.abs(DeterministicMath.tanh(x) - Glibc.tanh(x)))
            x += 0.000731
        }
        XCTAssertLessThan(worstExp, 1e-15)
        XCTAssertLessThan(worstErf, 1e-14)
        XCTAssertLessThan(worstTanh, 1e-15)
        XCTAssertEqual(DeterministicMath.exp(0), 1)
        XCTAssertEqual(DeterministicMath.exp(1000), .infinity)
        XCTAssertEqual(DeterministicMath.exp(-1000), 0)
        print("DeterministicMath vs libm: exp rel \(worstExp), erf abs \(worstErf), tanh abs \(worstTanh)")
    }

    /// Every parameter-preparation function rejects zero, negative, NaN and infinite scales and
    /// out-of-range zero points with a thrown error.
    func testBadParametersAreRejected() {
        let bad: [Double] = [0, -1, -0.0, .nan, .infinity, -.infinity]
        for s in bad {
            XCTAssertThrowsError(try IntegerSoftmax.Parameters.make(inputScale: s))
            XCTAssertThrowsError(try IntegerSoftmax.Parameters.make(inputScale: 0.01, outputScale: s))
            XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: s, inputZeroPoint: 0, outputScale: 0.1,
                                                                      outputZeroPoint: 0, gamma: [1, 1], beta: [0, 0], eps: 1e-5))
            XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: s,
                                                                      outputZeroPoint: 0, gamma: [1, 1], beta: [0, 0], eps: 1e-5))
            XCTAssertThrowsError(try ActivationTable.make(function: .silu, inputScale: s, inputZeroPoint: 0, outputScale: 0.1, outputZeroPoint: 0))
            XCTAssertThrowsError(try ActivationTable.make(function: .silu, inputScale: 0.1, inputZeroPoint: 0, outputScale: s, outputZeroPoint: 0))
            XCTAssertThrowsError(try AddInt8.Parameters.make(inputScaleA: s, inputZeroPointA: 0, inputScaleB: 0.1, inputZeroPointB: 0,
                                                             outputScale: 0.1, outputZeroPoint: 0))
            XCTAssertThrowsError(try AddInt8.Parameters.make(inputScaleA: 0.1, inputZeroPointA: 0, inputScaleB: s, inputZeroPointB: 0,
                                                             outputScale: 0.1, outputZeroPoint: 0))
            XCTAssertThrowsError(try AddInt8.Parameters.make(inputScaleA: 0.1, inputZeroPointA: 0, inputScaleB: 0.1, inputZeroPointB: 0,
                                                             outputScale: s, outputZeroPoint: 0))
            XCTAssertThrowsError(try GlobalAveragePoolInt8.Parameters.make(inputScale: s, inputZeroPoint: 0, outputScale: 0.1,
                                                                           outputZeroPoint: 0, pixelCount: 4))
            XCTAssertThrowsError(try GlobalAveragePoolInt8.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: s,
                                                                           outputZeroPoint: 0, pixelCount: 4))
        }
        for z: Int32 in [-129, 128, 1000] {
            XCTAssertThrowsError(try IntegerSoftmax.Parameters.make(inputScale: 0.01, outputZeroPoint: z))
            XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: z, outputScale: 0.1,
                                                                      outputZeroPoint: 0, gamma: [1], beta: [0], eps: 1e-5))
            XCTAssertThrowsError(try ActivationTable.make(function: .silu, inputScale: 0.1, inputZeroPoint: z, outputScale: 0.1, outputZeroPoint: 0))
            XCTAssertThrowsError(try AddInt8.Parameters.make(inputScaleA: 0.1, inputZeroPointA: 0, inputScaleB: 0.1, inputZeroPointB: 0,
                                                             outputScale: 0.1, outputZeroPoint: z))
            XCTAssertThrowsError(try GlobalAveragePoolInt8.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                           outputZeroPoint: z, pixelCount: 4))
        }
        // Other shape / value errors.
        XCTAssertThrowsError(try IntegerSoftmax.Parameters.make(inputScale: 0.01, outputScale: 2))
        XCTAssertThrowsError(try IntegerSoftmax.Parameters.make(inputScale: 1e6))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                  outputZeroPoint: 0, gamma: [], beta: [], eps: 1e-5))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                  outputZeroPoint: 0, gamma: [1, 2], beta: [0], eps: 1e-5))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                  outputZeroPoint: 0, gamma: [1], beta: [0], eps: .nan))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                  outputZeroPoint: 0, gamma: [1], beta: [0], eps: -1))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                  outputZeroPoint: 0, gamma: [.nan], beta: [0], eps: 1e-5))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                  outputZeroPoint: 0, gamma: [1], beta: [.infinity], eps: 1e-5))
        XCTAssertThrowsError(try IntegerLayerNorm.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 1e-9,
                                                                  outputZeroPoint: 0, gamma: [1], beta: [0], eps: 1e-5))
        XCTAssertThrowsError(try AddInt8.Parameters.make(inputScaleA: 0.1, inputZeroPointA: 0, inputScaleB: 0.1, inputZeroPointB: 0,
                                                         outputScale: 0.1, outputZeroPoint: 0, clampMin: 10, clampMax: 0))
        XCTAssertThrowsError(try GlobalAveragePoolInt8.Parameters.make(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.1,
                                                                       outputZeroPoint: 0, pixelCount: 0))
        XCTAssertThrowsError(try BilinearResizeInt8.Plan.make(inputHeight: 0, inputWidth: 4, outputHeight: 4, outputWidth: 4))
        XCTAssertThrowsError(try ActivationTable(entries: [1, 2, 3]))
    }

    /// Parameters restored from their stored integer fields equal the prepared ones and pass
    /// `validated()` (the model loader's path).
    func testRestoredParametersRoundTrip() throws {
        var rng = NLRNG(8)
        for _ in 0..<50 {
            let s = try IntegerSoftmax.Parameters.make(inputScale: rng.logUniform(1e-6, 10), outputScale: 1.0 / Double(rng.int(128, 2048)),
                                                       outputZeroPoint: Int32(rng.int(-128, 127)))
            XCTAssertEqual(try IntegerSoftmax.Parameters.restored(expPreShift: s.expPreShift, expLeftShift: s.expLeftShift,
                                                              expMultiplier: s.expMultiplier, outputMultiplier: s.outputMultiplier,
                                                              outputShift: s.outputShift, outputZeroPoint: s.outputZeroPoint,
                                                              inputScale: s.inputScale, outputScale: s.outputScale), s)
            let c = rng.int(1, 1024)
            let l = try IntegerLayerNorm.Parameters.make(inputScale: rng.logUniform(1e-4, 1), inputZeroPoint: 0,
                                                         outputScale: rng.logUniform(1e-3, 1), outputZeroPoint: Int32(rng.int(-128, 127)),
                                                         gamma: (0..<c).map { _ in rng.double(-5, 5) }, beta: (0..<c).map { _ in rng.double(-50, 50) },
                                                         eps: [0, 1e-5, 1e-6, 1][rng.int(0, 3)])
            XCTAssertEqual(try IntegerLayerNorm.Parameters.restored(channels: l.channels, varianceShift: l.varianceShift, epsilonTerm: l.epsilonTerm,
                                                                gammaMultipliers: l.gammaMultipliers, shifts: l.shifts, biases: l.biases,
                                                                outputZeroPoint: l.outputZeroPoint), l)
            let a = try AddInt8.Parameters.make(inputScaleA: rng.logUniform(1e-3, 1), inputZeroPointA: 1, inputScaleB: rng.logUniform(1e-3, 1),
                                                inputZeroPointB: -3, outputScale: rng.logUniform(1e-3, 1), outputZeroPoint: 9)
            XCTAssertEqual(try AddInt8.Parameters.restored(inputZeroPointA: a.inputZeroPointA, inputZeroPointB: a.inputZeroPointB,
                                                       multiplierA: a.multiplierA, multiplierB: a.multiplierB, shift: a.shift,
                                                       outputZeroPoint: a.outputZeroPoint, clampMin: a.clampMin, clampMax: a.clampMax), a)
            let sx = rng.logUniform(1e-3, 1)
            let hw = rng.int(1, 4096)
            let g = try GlobalAveragePoolInt8.Parameters.make(inputScale: sx, inputZeroPoint: 2, outputScale: rng.logUniform(1e-3, 1),
                                                              outputZeroPoint: 0, pixelCount: hw)
            XCTAssertEqual(try GlobalAveragePoolInt8.Parameters.restored(pixelCount: g.pixelCount, inputZeroPoint: g.inputZeroPoint,
                                                                     preShift: g.preShift, multiplier: g.multiplier, shift: g.shift,
                                                                     outputZeroPoint: g.outputZeroPoint), g)
        }
    }
}
