@testable import MVQuant
import XCTest

/// Error-compensating weight rounding lowers the layer's output error on correlated inputs, and is
/// round-to-nearest when inputs are uncorrelated.
final class ErrorCompensatingRoundingTests: XCTestCase {
    typealias Random = RangeObserverTests.Random

    /// Inputs x = A z with z standard normal: correlated channels of unequal power.
    func correlatedInputs(rows: Int, channels n: Int, rng: inout Random) -> [Float] {
        let a = (0..<(n * n)).map { _ in rng.normal() / Double(n).squareRoot() + 0 }
        var x = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows {
            let z = (0..<n).map { _ in rng.normal() }
            let common = rng.normal() * 2
            for i in 0..<n {
                var v = common * (i % 3 == 0 ? 1 : 0.3)
                for k in 0..<n { v += a[i * n + k] * z[k] }
                x[r * n + i] = Float(v * (1 + Double(i % 5)))
            }
        }
        return x
    }

    func secondMoment(_ x: [Float], channels n: Int) -> [Double] {
        let observer = RangeObserver()
        x.withUnsafeBufferPointer { observer.observeRowProducts($0, channels: n) }
        observer.symmetrizeRowProducts()
        return observer.secondMoment!
    }

    /// Σ over rows and outputs of ((W − Ŵ) x)², Ŵ = codes · scale.
    func outputError(_ w: [Float], _ q: [Int8], scales: [Double], x: [Float], outputs: Int, inputs n: Int) -> Double {
        var total = 0.0
        for r in 0..<(x.count / n) {
            for o in 0..<outputs {
                var e = 0.0
                for i in 0..<n { e += (Double(w[o * n + i]) - Double(q[o * n + i]) * scales[o]) * Double(x[r * n + i]) }
                total += e * e
            }
        }
        return total
    }

    func testLowersOutputErrorOnCorrelatedInputs() throws {
        var rng = Random(state: 0x9E3779B97F4A7C15)
        let outputs = 24, n = 40
        let w = (0..<(outputs * n)).map { _ in Float(rng.normal() * 0.1) }
        let (nearest, scales) = Int8Compiler.quantizeWeights(w, channels: outputs)
        let calibration = correlatedInputs(rows: 2000, channels: n, rng: &rng)
        let heldOut = correlatedInputs(rows: 500, channels: n, rng: &rng)
        let h = secondMoment(calibration, channels: n)
        let q = try XCTUnwrap(ErrorCompensatingRounding.round(weights: w, outputs: outputs, inputs: n, scales: scales,
                                                             secondMoment: h))
        XCTAssertTrue(q.allSatisfy { $0 >= -127 })
        let before = outputError(w, nearest, scales: scales, x: heldOut, outputs: outputs, inputs: n)
        let after = outputError(w, q, scales: scales, x: heldOut, outputs: outputs, inputs: n)
        print("output error: round-to-nearest \(before), compensated \(after)")
        XCTAssertLessThan(after, 0.7 * before)
        // Each code stays within one step of the unrounded value plus what it absorbed: never far off.
        XCTAssertLessThan(zip(q, nearest).map { abs(Int($0) - Int($1)) }.max()!, 16)
    }

    func testUncorrelatedInputsRoundToNearest() throws {
        var rng = Random(state: 42)
        let outputs = 8, n = 16
        let w = (0..<(outputs * n)).map { _ in Float(rng.normal()) }
        let (nearest, scales) = Int8Compiler.quantizeWeights(w, channels: outputs)
        var identity = [Double](repeating: 0, count: n * n)
        for i in 0..<n { identity[i * n + i] = 3 }
        let q = try XCTUnwrap(ErrorCompensatingRounding.round(weights: w, outputs: outputs, inputs: n, scales: scales,
                                                             secondMoment: identity))
        XCTAssertEqual(q, nearest)
    }

    func testUnusableStatisticsFallBack() {
        let w: [Float] = [1, 2, 3, 4]
        XCTAssertNil(ErrorCompensatingRounding.round(weights: w, outputs: 2, inputs: 2, scales: [1, 1],
                                                    secondMoment: [0, 0, 0, 0]))
        XCTAssertNil(ErrorCompensatingRounding.round(weights: w, outputs: 2, inputs: 2, scales: [1, 1],
                                                    secondMoment: [1, .nan, .nan, 1]))
        XCTAssertNil(ErrorCompensatingRounding.round(weights: w, outputs: 2, inputs: 2, scales: [1, 1],
                                                    secondMoment: [1, 0, 0]))
    }

    func testCholeskyFactorOfInverse() throws {
        // H = [[4, 2], [2, 3]]: H⁻¹ = [[3, −2], [−2, 4]] / 8; check Uᵀ U = H⁻¹.
        let u = try XCTUnwrap(ErrorCompensatingRounding.upperCholeskyOfInverse([4, 2, 2, 3], 2))
        XCTAssertEqual(u[2], 0)
        let product = [u[0] * u[0], u[0] * u[1], u[1] * u[0], u[1] * u[1] + u[3] * u[3]]
        for (a, b) in zip(product, [3.0 / 8, -2.0 / 8, -2.0 / 8, 4.0 / 8]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
    }
}

extension RangeObserverTests.Random {
    /// Box–Muller.
    mutating func normal() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()) }
}
