import MVKernels
import XCTest

/// The integer label map against a direct per-pixel computation, ties to the lowest class.
final class BilinearArgmaxInt32Tests: XCTestCase {
    func testMatchesDirectComputationAndBreaksTiesLow() throws {
        var rng = SystemRandomNumberGenerator()
        let cases = [(4, 5, 3, 16, 20, false), (1, 1, 2, 7, 3, false), (13, 19, 21, 200, 300, false), (8, 8, 1, 8, 8, false),
                     (6, 4, 5, 3, 2, false), (16, 16, 21, 128, 128, true), (9, 11, 4, 72, 88, true)]
        for (h, w, classes, oh, ow, regions) in cases {
            // Small values make ties common; a few huge ones check there is no overflow.
            var values = (0..<(h * w * classes)).map { _ in Int32.random(in: -3...3, using: &rng) }
            if regions {
                // A segmentation-like map: blocks of one leading class, so most output pixels lie
                // between source columns that agree (the shortcut), some between blocks, and some
                // pixels where the leader ties with another class, lower or higher.
                for y in 0..<h {
                    for x in 0..<w {
                        let lead = (y / 3 + x / 4) % classes, base = (y * w + x) * classes
                        values[base + lead] = 6
                        if (x + y) % 5 == 0 { values[base + (lead + 1) % classes] = 6 }
                    }
                }
            }
            values[0] = Int32.max
            values[values.count - 1] = Int32.min
            let plan = try BilinearArgmaxInt32.Plan(height: h, width: w, classes: classes, outputHeight: oh, outputWidth: ow)
            var labels = [Int32](repeating: -1, count: oh * ow)
            var scratch = [Int64](repeating: 0, count: plan.scratchCount)
            values.withUnsafeBufferPointer { v in
                labels.withUnsafeMutableBufferPointer { l in
                    scratch.withUnsafeMutableBufferPointer { s in
                        // In two row ranges, as two workers would.
                        BilinearArgmaxInt32.run(values: v.baseAddress!, plan: plan, labels: l.baseAddress!, outputRows: 0..<(oh / 2),
                                                scratch: s.baseAddress!)
                        BilinearArgmaxInt32.run(values: v.baseAddress!, plan: plan, labels: l.baseAddress!, outputRows: (oh / 2)..<oh,
                                                scratch: s.baseAddress!)
                    }
                }
            }
            func source(_ o: Int, _ n: Int, _ m: Int) -> (Int, Int, Int64) {
                let num = max(0, (2 * o + 1) * n - m), den = 2 * m
                return (num / den, min(num / den + 1, n - 1), (Int64(num % den) << 16 + Int64(den)) / Int64(2 * den))
            }
            for y in 0..<oh {
                let (y0, y1, wy) = source(y, h, oh)
                for x in 0..<ow {
                    let (x0, x1, wx) = source(x, w, ow)
                    var best = Int64.min, label = -1
                    for k in 0..<classes {
                        func v(_ yy: Int, _ xx: Int) -> Int64 { Int64(values[(yy * w + xx) * classes + k]) }
                        let value = (32768 - wy) * ((32768 - wx) * v(y0, x0) + wx * v(y0, x1))
                            + wy * ((32768 - wx) * v(y1, x0) + wx * v(y1, x1))
                        if value > best { best = value; label = k }
                    }
                    XCTAssertEqual(labels[y * ow + x], Int32(label), "\(h)×\(w)×\(classes) → \(oh)×\(ow) at (\(y), \(x))")
                }
            }
        }
    }

    func testRefusesImpossibleSizes() {
        XCTAssertThrowsError(try BilinearArgmaxInt32.Plan(height: 4, width: 4, classes: 0, outputHeight: 8, outputWidth: 8))
        XCTAssertThrowsError(try BilinearArgmaxInt32.Plan(height: 4, width: 4, classes: 3, outputHeight: 0, outputWidth: 8))
    }
}
