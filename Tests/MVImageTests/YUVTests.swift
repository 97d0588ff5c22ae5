import MVImage
import XCTest

/// I420 → RGB (BT.601 limited range, 16-bit fixed point): within ±1 of the float matrix rounded
/// to nearest, exact on the reference colours, and the 4:2:0 plane layout with odd sizes.
final class YUVTests: XCTestCase {
    func testFixedPointWithinOneOfTheFloatMatrix() {
        var worst = 0, differing = 0, total = 0
        for y in 0...255 {
            for cb in stride(from: 0, through: 255, by: 3) {
                for cr in stride(from: 0, through: 255, by: 3) {
                    let a = YUV.rgb(y: UInt8(y), cb: UInt8(cb), cr: UInt8(cr))
                    let b = YUV.referenceRGB(y: UInt8(y), cb: UInt8(cb), cr: UInt8(cr))
                    let d = max(abs(Int(a.0) - Int(b.0)), abs(Int(a.1) - Int(b.1)), abs(Int(a.2) - Int(b.2)))
                    worst = max(worst, d)
                    if d > 0 { differing += 1 }
                    total += 1
                }
            }
        }
        print("I420 fixed point vs float: \(differing) of \(total) samples differ, by at most \(worst)")
        XCTAssertLessThanOrEqual(worst, 1)
        XCTAssertLessThan(differing, total / 100)
    }

    func testKnownColours() {
        func check(_ yuv: (UInt8, UInt8, UInt8), _ rgb: (UInt8, UInt8, UInt8), tolerance: Int = 0, line: UInt = #line) {
            let c = YUV.rgb(y: yuv.0, cb: yuv.1, cr: yuv.2)
            let d = max(abs(Int(c.0) - Int(rgb.0)), abs(Int(c.1) - Int(rgb.1)), abs(Int(c.2) - Int(rgb.2)))
            XCTAssertLessThanOrEqual(d, tolerance, "\(yuv) gave \(c), expected \(rgb)", line: line)
        }
        check((16, 128, 128), (0, 0, 0))         // black
        check((235, 128, 128), (255, 255, 255))  // white
        check((126, 128, 128), (128, 128, 128))  // mid grey: 1.164383 · 110 = 128.08
        check((0, 128, 128), (0, 0, 0))          // below black clamps
        check((255, 128, 128), (255, 255, 255))  // above white clamps
        // 100% primaries and secondaries as 8-bit BT.601 codes (Y, Cb, Cr rounded, so ±2 after conversion).
        check((81, 90, 240), (255, 0, 0), tolerance: 2)     // red
        check((145, 54, 34), (0, 255, 0), tolerance: 2)     // green
        check((41, 240, 110), (0, 0, 255), tolerance: 2)    // blue
        check((210, 16, 146), (255, 255, 0), tolerance: 2)  // yellow
        check((170, 166, 16), (0, 255, 255), tolerance: 2)  // cyan
        check((106, 202, 222), (255, 0, 255), tolerance: 2) // magenta
    }

    /// 3×3: a 3×3 Y plane, then 2×2 U and V; chroma (x/2, y/2) covers each pixel.
    func testPlaneLayoutWithOddSizes() {
        XCTAssertEqual(YUV.i420FrameBytes(width: 3, height: 3), 9 + 4 + 4)
        XCTAssertEqual(YUV.i420FrameBytes(width: 640, height: 480), 640 * 480 * 3 / 2)
        let ys: [UInt8] = [16, 50, 100, 150, 200, 235, 30, 60, 90]
        let us: [UInt8] = [128, 90, 200, 54]
        let vs: [UInt8] = [128, 240, 100, 34]
        let frame = ys + us + vs
        var rgb = [UInt8](repeating: 0, count: 27)
        frame.withUnsafeBytes { f in rgb.withUnsafeMutableBufferPointer { YUV.i420ToRGB(f, width: 3, height: 3, into: $0) } }
        for row in 0..<3 {
            for x in 0..<3 {
                let c = (row / 2) * 2 + x / 2
                let e = YUV.rgb(y: ys[row * 3 + x], cb: us[c], cr: vs[c])
                XCTAssertEqual([rgb[(row * 3 + x) * 3], rgb[(row * 3 + x) * 3 + 1], rgb[(row * 3 + x) * 3 + 2]], [e.0, e.1, e.2], "pixel \(x),\(row)")
            }
        }
    }
}
