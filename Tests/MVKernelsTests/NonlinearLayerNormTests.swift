import MVKernels
import XCTest

final class NonlinearLayerNormTests: XCTestCase {
    struct Case {
        var c: Int
        var sx: Double, zx: Int32, sy: Double, zy: Int32
        var gamma: [Double], beta: [Double], eps: Double
    }

    func run(_ input: [Int8], tokens: Int, inStride: Int, outStride: Int, _ p: IntegerLayerNorm.Parameters,
             isa: KernelISA, range: Range<Int>? = nil) -> [Int8] {
        var out = [Int8](repeating: 5, count: tokens * outStride)
        input.withUnsafeBufferPointer { ip in
            out.withUnsafeMutableBufferPointer { op in
                IntegerLayerNorm.run(input: ip.baseAddress!, inputTokenStride: inStride, output: op.baseAddress!,
                                     outputTokenStride: outStride, tokens: range ?? 0..<tokens, parameters: p, isa: isa)
            }
        }
        return out
    }

    /// Float LayerNorm of the dequantised token, in output codes (unclamped, unrounded). Mean and
    /// variance come from exact integer sums of the codes (a naive double mean of a constant token
    /// is off by an ulp, which with eps = 0 blows up), then everything is double.
    func floatLayerNorm(_ x: ArraySlice<Int8>, _ k: Case) -> [Double] {
        let q = x.map { Int64($0) }
        let n = Int64(q.count)
        let s = q.reduce(0, +), s2 = q.map { $0 * $0 }.reduce(0, +)
        let cd = Double(n)
        let variance = k.sx * k.sx * Double(n * s2 - s * s) / (cd * cd)
        // A constant token with eps = 0 is 0/0 in float; the integer kernel gives x̂ = 0 (output β).
        let inv = variance + k.eps == 0 ? 0 : 1 / (variance + k.eps).squareRoot()
        return q.indices.map { i in
            let centered = k.sx * Double(n * q[i] - s) / cd
            return (k.gamma[i] * centered * inv + k.beta[i]) / k.sy + Double(k.zy)
        }
    }

    /// IntegerLayerNorm's stated error bound for channel i, in output LSB (plus 1e-3 for the float
    /// reference's own rounding).
    func bound(_ p: IntegerLayerNorm.Parameters, _ k: Case, _ i: Int) -> Double {
        let g = Swift.abs(k.gamma[i] / k.sy), h = Double(p.shifts[i]), q = Double(p.normShift)
        let nmax = pow(2, q) * Double(p.channels - 1).squareRoot() + 1
        return 0.5 + 0.51 * g * pow(2, -q) + (nmax + 1) * pow(2, -(h + 1)) + 1e-3
    }

    func randomCase(_ rng: inout NLRNG, c: Int) -> Case {
        let sx = rng.logUniform(1e-3, 0.5)
        let sy = rng.logUniform(0.005, 0.2)
        let gamma = (0..<c).map { _ -> Double in
            switch rng.int(0, 9) {
            case 0: return 0
            case 1: return -rng.logUniform(0.01, 3)
            default: return rng.logUniform(0.01, 3)
            }
        }
        let beta = (0..<c).map { _ in rng.double(-1.5, 1.5) }
        let eps = [1e-5, 1e-6, 1e-12, 0, 1e-3][rng.int(0, 4)]
        return Case(c: c, sx: sx, zx: Int32(rng.int(-128, 127)), sy: sy, zy: Int32(rng.int(-30, 30)),
                    gamma: gamma, beta: beta, eps: eps)
    }

    /// Tokens of various kinds: uniform codes, narrow normal, near-constant, constant, outliers.
    func randomTokens(_ rng: inout NLRNG, c: Int, count: Int, stride: Int) -> [Int8] {
        var x = [Int8](repeating: 0, count: count * stride)
        for t in 0..<count {
            let base = t * stride
            let center = rng.int(-100, 100)
            let kind = rng.int(0, 5)
            for i in 0..<c {
                let v: Int
                switch kind {
                case 0: v = rng.int(-128, 127)
                case 1: v = center + Int((rng.normal() * rng.double(1, 30)).rounded())
                case 2: v = center + (rng.int(0, 20) == 0 ? rng.int(-1, 1) : 0)  // near-constant
                case 3: v = center  // constant
                case 4: v = center + rng.int(-2, 2)
                default: v = rng.int(0, 10) == 0 ? rng.int(-128, 127) : center + rng.int(-3, 3)  // outliers
                }
                x[base + i] = Int8(max(-128, min(127, v)))
            }
        }
        return x
    }

    func testAccuracyAgainstFloat() throws {
        var rng = NLRNG(2024)
        var worst = 0.0, worstBeyondHalf = 0.0, largestBound = 0.0, tokensChecked = 0
        for c in [1, 3, 64, 80, 96, 240, 1000] {
            for _ in 0..<8 {
                let k = randomCase(&rng, c: c)
                let p = try IntegerLayerNorm.Parameters.make(inputScale: k.sx, inputZeroPoint: k.zx, outputScale: k.sy,
                                                             outputZeroPoint: k.zy, gamma: k.gamma, beta: k.beta, eps: k.eps)
                let tokens = c >= 240 ? 12 : 40
                let x = randomTokens(&rng, c: c, count: tokens, stride: c)
                let q = run(x, tokens: tokens, inStride: c, outStride: c, p, isa: .reference)
                for t in 0..<tokens {
                    let f = floatLayerNorm(x[t * c..<(t + 1) * c], k)
                    for i in 0..<c {
                        let target = min(max(f[i], -128), 127)
                        let err = Swift.abs(Double(q[t * c + i]) - target)
                        let b = bound(p, k, i)
                        worst = max(worst, err)
                        worstBeyondHalf = max(worstBeyondHalf, (err - 0.5) / (b - 0.5))
                        largestBound = max(largestBound, b)
                        XCTAssertLessThanOrEqual(err, b, "C=\(c) token \(t) ch \(i): q=\(q[t * c + i]) float=\(f[i]) eps=\(k.eps)")
                    }
                    tokensChecked += 1
                }
            }
        }
        print("LayerNorm: \(tokensChecked) tokens; max |q − float| = \(worst) output LSB (bounds up to \(largestBound)); "
              + "largest share of a bound's excess over 0.5 used: \(worstBeyondHalf)")
    }

    /// Tiny variance relative to eps (and exactly constant tokens) behave like float.
    func testNearConstantAndEpsDominated() throws {
        for (sx, eps) in [(1e-4, 1e-5), (1e-3, 1e-5), (0.05, 1e-5), (0.05, 0.0), (1e-2, 1.0)] {
            for c in [1, 3, 64, 96] {
                let k = Case(c: c, sx: sx, zx: 3, sy: 0.02, zy: -5,
                             gamma: (0..<c).map { Double($0 % 5) * 0.3 - 0.5 }, beta: (0..<c).map { Double($0 % 3) * 0.1 },
                             eps: eps)
                let p = try IntegerLayerNorm.Parameters.make(inputScale: sx, inputZeroPoint: 3, outputScale: 0.02,
                                                             outputZeroPoint: -5, gamma: k.gamma, beta: k.beta, eps: eps)
                var x = [Int8](repeating: 17, count: 3 * c)
                x[c] = 18  // token 1: one channel differs by one code
                if c > 1 { x[2 * c + 1] = 16; x[2 * c] = 18 }
                let q = run(x, tokens: 3, inStride: c, outStride: c, p, isa: .reference)
                for t in 0..<3 {
                    let f = floatLayerNorm(x[t * c..<(t + 1) * c], k)
                    for i in 0..<c {
                        XCTAssertLessThanOrEqual(Swift.abs(Double(q[t * c + i]) - min(max(f[i], -128), 127)), bound(p, k, i),
                                                 "sx=\(sx) eps=\(eps) C=\(c) t=\(t) i=\(i)")
                    }
                }
            }
        }
    }

    /// The reciprocal square root of step 3 against the float one, over the whole range of W:
    /// relative error ≤ 2^−27, y in [2^30 − 64, 2^31].
    func testReciprocalSquareRoot() {
        var rng = NLRNG(77)
        var worst = 0.0
        func check(_ w: UInt64) {
            let (y, e) = IntegerLayerNorm.reciprocalSquareRoot(w)
            XCTAssert(y >= (1 << 30) - 64 && y <= 1 << 31, "y = \(y) at w = \(w)")
            let approx = Double(y) * pow(2, Double(-30 - e))
            let rel = Swift.abs(approx * Double(w).squareRoot() - 1)
            worst = max(worst, rel)
            XCTAssertLessThanOrEqual(rel, pow(2, -27), "w = \(w)")
        }
        for w: UInt64 in 1...20_000 { check(w) }
        for _ in 0..<200_000 {
            let bits = rng.int(1, 62)
            check(max(1, rng.next() >> UInt64(64 - bits)))
        }
        for b in 1...62 { check(UInt64(1) << UInt64(b - 1)); check((UInt64(1) << UInt64(b)) - 1) }
        print("LayerNorm reciprocal square root: max relative error \(worst) (2^\(log2(worst)))")
    }

    func testSIMDBitExact() throws {
        var rng = NLRNG(5)
        for isa in nonlinearSIMDISAs {
            var cases = 0
            for it in 0..<200 {
                let c = it < 40 ? it + 1 : [64, 80, 96, 144, 192, 240, 1000, 1024][it % 8] + (it % 3 == 0 ? rng.int(0, 20) : 0)
                var k = randomCase(&rng, c: c)
                if it % 7 == 0 { k.gamma = k.gamma.map { $0 * 40 } }  // large multipliers, saturation
                let p = try IntegerLayerNorm.Parameters.make(inputScale: k.sx, inputZeroPoint: k.zx, outputScale: k.sy,
                                                             outputZeroPoint: k.zy, gamma: k.gamma, beta: k.beta, eps: k.eps)
                let tokens = rng.int(1, 6)
                let inStride = c + rng.int(0, 9), outStride = c + rng.int(0, 9)
                let x = randomTokens(&rng, c: c, count: tokens, stride: inStride)
                let range = rng.int(0, tokens - 1)..<tokens
                let ref = run(x, tokens: tokens, inStride: inStride, outStride: outStride, p, isa: .reference, range: range)
                let got = run(x, tokens: tokens, inStride: inStride, outStride: outStride, p, isa: isa, range: range)
                XCTAssertEqual(got, ref, "\(isa) C=\(c)")
                cases += 1
            }
            print("LayerNorm \(isa.rawValue): \(cases) random cases bit-exact with the reference")
        }
    }
}
