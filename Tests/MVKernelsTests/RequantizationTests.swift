import MVKernels
import XCTest

final class RequantizationTests: XCTestCase {
    func testQuantizeMultiplierRoundTrips() {
        var rng = Int8TestRNG(seed: 1)
        var reals: [Double] = [1e-6, 1e-3, 0.5, 0.75, 1, 1.5, 2, 1000, 0.9999999999, 0.49999999999]
        for _ in 0..<20000 {
            // log-uniform in [1e-6, 1e3]
            let e = -6.0 + 9.0 * rng.unit()
            var r = 1.0
            var i = 0.0
            while i < e.rounded(.down) { r *= 10; i += 1 }
            while i > e.rounded(.down) { r /= 10; i -= 1 }
            reals.append(r * (1 + 9 * rng.unit()))
        }
        for real in reals where real >= 1e-6 && real <= 1e3 {
            let q = quantizeMultiplier(real)
            XCTAssertGreaterThanOrEqual(q.multiplier, 1 << 30, "\(real)")
            XCTAssertLessThanOrEqual(q.shift, 62)
            XCTAssertGreaterThanOrEqual(q.shift, -31)
            let back = dequantizeMultiplier(multiplier: q.multiplier, shift: q.shift)
            XCTAssertLessThanOrEqual(abs(back - real) / real, 1.0 / Double(1 << 30), "\(real) -> \(q)")
        }
        XCTAssertTrue(quantizeMultiplier(0) == (0, 0))
        XCTAssertTrue(quantizeMultiplier(0.5) == (1 << 30, 0))
        XCTAssertTrue(quantizeMultiplier(1) == (1 << 30, -1))
        XCTAssertTrue(quantizeMultiplier(0.25) == (1 << 30, 1))
        // Rounds up to 2^31: halved and shift decremented.
        let almostOne = 1 - 1.0 / Double(1 << 33)
        XCTAssertTrue(quantizeMultiplier(almostOne) == (1 << 30, -1))
        // Tiny values clamp to shift 62.
        let tiny = quantizeMultiplier(1e-22)
        XCTAssertEqual(tiny.shift, 62)
        XCTAssertEqual(quantizeMultiplier(1e-40).multiplier, 0)
    }

    func testRequantizeKnownValues() {
        // multiplier 2^30 = 0.5: y = round_half_up(acc / 2)
        XCTAssertEqual(requantize(3, multiplier: 1 << 30, shift: 0), 2)
        XCTAssertEqual(requantize(-3, multiplier: 1 << 30, shift: 0), -1)
        XCTAssertEqual(requantize(5, multiplier: 1 << 30, shift: 1), 2)   // y = 3, 3/2 = 1.5 -> 2
        XCTAssertEqual(requantize(-5, multiplier: 1 << 30, shift: 1), -1)  // y = -2, -2/2 = -1
        XCTAssertEqual(requantize(7, multiplier: 1 << 30, shift: 1), 2)   // y = 4, 4/2 = 2
        XCTAssertEqual(requantize(Int32.max, multiplier: Int32.max, shift: 0), Int32.max - 1)
        XCTAssertEqual(requantize(Int32.min, multiplier: Int32.max, shift: 0), Int32.min + 1)
        // Saturating left shift.
        XCTAssertEqual(requantize(1 << 20, multiplier: 1 << 30, shift: -12), Int32.max / 2 + 1)
        XCTAssertEqual(requantize(-(1 << 20), multiplier: 1 << 30, shift: -12), Int32.min / 2)
        XCTAssertEqual(requantize(3, multiplier: 1 << 30, shift: -1), 3)
        // Shifts of 32 and more give 0.
        for s: Int32 in [32, 40, 62] {
            XCTAssertEqual(requantize(Int32.min, multiplier: Int32.max, shift: s), 0)
            XCTAssertEqual(requantize(Int32.max, multiplier: Int32.max, shift: s), 0)
        }
        XCTAssertEqual(requantize(Int32.min, multiplier: Int32.max, shift: 31), -1)
        XCTAssertEqual(requantize(Int32.max, multiplier: Int32.max, shift: 31), 1)
    }

    func testRequantizeAgainstDoubleModel() {
        var rng = Int8TestRNG(seed: 2)
        for _ in 0..<200_000 {
            let acc = Int32(truncatingIfNeeded: rng.int(-(1 << 24), 1 << 24) >> rng.int(0, 20))
            let (m, s) = randomRequantPair(&rng)
            let z = requantize(acc, multiplier: m, shift: s)
            // Exact real value acc·m·2^(−31−s); two round-half-up steps are off by at most 1.
            let real = Double(acc) * Double(m) * dequantizeMultiplier(multiplier: 1, shift: s)
            if s < 0, abs(Double(acc) * Double(1 << Int(-s))) >= 2147483647 {
                continue  // saturated left shift
            }
            XCTAssertLessThanOrEqual(abs(Double(z) - real), 1.0, "acc \(acc) m \(m) s \(s)")
            // Single rounding bound when the right shift is 0: |z − real| ≤ 0.5.
            if s <= 0 { XCTAssertLessThanOrEqual(abs(Double(z) - real), 0.5, "acc \(acc) m \(m) s \(s)") }
            // Round half up: when real is exactly representable as k + 0.5, z = k + 1.
        }
    }

    func testOutputStageClampsWithoutOverflow() {
        XCTAssertEqual(addZeroPointAndClamp(Int32.max, zeroPoint: 127, clampMin: -128, clampMax: 127), 127)
        XCTAssertEqual(addZeroPointAndClamp(Int32.min, zeroPoint: -128, clampMin: -128, clampMax: 127), -128)
        XCTAssertEqual(addZeroPointAndClamp(5, zeroPoint: -3, clampMin: 0, clampMax: 127), 2)
        XCTAssertEqual(addZeroPointAndClamp(-5, zeroPoint: -3, clampMin: 0, clampMax: 127), 0)
        XCTAssertEqual(requantizeToInt8(1000, multiplier: 1 << 30, shift: 0, zeroPoint: 10), 127)
        XCTAssertEqual(requantizeToInt8(-1000, multiplier: 1 << 30, shift: 2, zeroPoint: 10), -115)
    }
}
