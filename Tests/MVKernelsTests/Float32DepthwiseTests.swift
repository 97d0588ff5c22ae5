import MVKernels
// The C entry point, to run the generic build as well as the one `Float32Kernels` picks for this
// CPU (MVKernelsC comes with MVKernels).
import MVKernelsC
import XCTest

/// The float depthwise 3×3 of the reference executor, dilated and not, against a direct
/// convolution in Double: float sums in another order differ in the last bits, so within a
/// tolerance.
final class Float32DepthwiseTests: XCTestCase {
    /// Output [oh][ow][c] of a 3×3 depthwise convolution with taps at −d, 0, +d and padding d.
    func naive(_ input: [Float], h: Int, w: Int, c: Int, weights: [Float], bias: [Float], stride: Int, dilation: Int,
               relu: Bool) -> [Float] {
        let oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1
        var out = [Float](repeating: 0, count: oh * ow * c)
        for y in 0..<oh { for x in 0..<ow { for ch in 0..<c {
            var acc = Double(bias[ch])
            for dy in 0..<3 { for dx in 0..<3 {
                let iy = y * stride + (dy - 1) * dilation, ix = x * stride + (dx - 1) * dilation
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                acc += Double(weights[(dy * 3 + dx) * c + ch]) * Double(input[(iy * w + ix) * c + ch])
            } }
            out[(y * ow + x) * c + ch] = Float(relu ? max(acc, 0) : acc)
        } } }
        return out
    }

    func testDilatedDepthwiseMatchesNaive() {
        var rng = Int8TestRNG(seed: 40)
        func floats(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.unit() * 2 - 1) } }
        // Generic build always; the AVX2+FMA one where the CPU has it.
        let builds: [Int32] = Float32Kernels.useAVX2 ? [0, 1] : [0]
        let sizes = [(7, 11), (13, 5), (1, 1), (3, 4), (25, 27)]
        var cases = 0
        for d in [1, 2, 3, 6, 12] {
            for (h, w) in sizes {
                for stride in [1, 2] {
                    for c in [1, 3, 16, 17, 40] {
                        let input = floats(h * w * c), weights = floats(9 * c), bias = floats(c)
                        let relu = rng.bool()
                        let want = naive(input, h: h, w: w, c: c, weights: weights, bias: bias, stride: stride,
                                         dilation: d, relu: relu)
                        let oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1
                        let split = rng.int(0, oh)
                        for build in builds {
                            var got = [Float](repeating: .nan, count: oh * ow * c)
                            got.withUnsafeMutableBufferPointer { out in
                                for rows in [0..<split, split..<oh] {
                                    if build == (Float32Kernels.useAVX2 ? 1 : 0) && rng.bool() {
                                        // Through the public wrapper (which runs this build).
                                        Float32Kernels.depthwise3x3(input: input, height: h, width: w, channels: c,
                                                                    weights: weights, bias: bias, stride: stride,
                                                                    dilation: d, output: out.baseAddress!, outWidth: ow,
                                                                    rows: rows, activation: relu ? .relu : .none)
                                    } else {
                                        mv_depthwise3x3_f32(build, input, h, w, c, weights, bias, Int32(stride), Int32(d),
                                                            out.baseAddress!, ow, rows.lowerBound, rows.upperBound,
                                                            relu ? 2 : 0)
                                    }
                                }
                            }
                            // NaN (a pixel never written) counts as infinitely far.
                            let worst = zip(got, want).map { $0.isNaN ? Float.infinity : abs($0 - $1) }.max() ?? 0
                            XCTAssertLessThan(worst, 1e-5, "build \(build): \(h)x\(w)x\(c) stride \(stride) dilation \(d)")
                            cases += 1
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThanOrEqual(cases, 250)
    }
}
