import MVKernels
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Activation tables, add, global average pooling and bilinear resize.
final class NonlinearElementwiseTests: XCTestCase {
    // MARK: activation tables

    /// The functions again, from libm (independent of DeterministicMath).
    func libmFunction(_ f: ActivationTable.Function, _ x: Double) -> Double {
        switch f {
        case .silu: return x / (1 + Glibc.exp(-x))
        case .sigmoid: return 1 / (1 + Glibc.exp(-x))
        case .gelu: return 0.5 * x * (1 + Glibc.erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + Glibc.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .hardSwish: return x * min(max(x + 3, 0), 6) / 6
        case .hardSigmoid: return min(max(x + 3, 0), 6) / 6
        case .relu: return max(x, 0)
        case .relu6: return min(max(x, 0), 6)
        case .tanh: return Glibc.tanh(x)
        case .identity: return x
        }
    }

    func testActivationTablesWithinHalfLSB() throws {
        var rng = NLRNG(11)
        var worst: [ActivationTable.Function: Double] = [:]
        for f in ActivationTable.Function.allCases {
            for _ in 0..<40 {
                let sx = rng.logUniform(0.005, 0.25), zx = Int32(rng.int(-128, 127))
                // Output range from the function's range over the input range, as calibration would.
                let xs = (-128...127).map { sx * Double(Int32($0) - zx) }
                let ys = xs.map { libmFunction(f, $0) }
                let lo = min(ys.min()!, 0), hi = max(ys.max()!, 0)
                let sy = max((hi - lo) / 255, 1e-6) * rng.double(0.8, 1.2)
                let zy = Int32(max(-128, min(127, (-128 - lo / sy).rounded())))
                let t = try ActivationTable.make(function: f, inputScale: sx, inputZeroPoint: zx, outputScale: sy, outputZeroPoint: zy)
                for q in -128...127 {
                    let target = min(max(ys[q + 128] / sy + Double(zy), -128), 127)
                    let err = Swift.abs(Double(t.entries[q + 128]) - target)
                    worst[f] = max(worst[f] ?? 0, err)
                    XCTAssertLessThanOrEqual(err, 0.5 + 1e-9, "\(f) q=\(q)")
                }
            }
        }
        print("activation tables: max |entry − f| in output LSB: " +
              ActivationTable.Function.allCases.map { "\($0.rawValue) \(worst[$0]!)" }.joined(separator: ", "))
        // Identity with equal quantisations is the identity table.
        let id = try ActivationTable.make(function: .identity, inputScale: 0.1, inputZeroPoint: 7, outputScale: 0.1, outputZeroPoint: 7)
        XCTAssertEqual(id.entries, (-128...127).map { Int8($0) })
    }

    // MARK: add

    func randomAdd(_ rng: inout NLRNG) throws -> (AddInt8.Parameters, Double, Int32, Double, Int32, Double, Int32) {
        let sa = rng.logUniform(0.002, 0.5)
        let sb = sa * rng.logUniform(1.0 / 64, 64)
        let sy = max(sa, sb) * rng.logUniform(1.0 / 64, 4)
        let za = Int32(rng.int(-128, 127)), zb = Int32(rng.int(-128, 127)), zy = Int32(rng.int(-128, 127))
        var cmin: Int32 = -128, cmax: Int32 = 127
        if rng.int(0, 3) == 0 { cmin = zy }  // fused ReLU
        if rng.int(0, 5) == 0 { cmax = Int32(rng.int(Int(cmin), 127)) }
        let p = try AddInt8.Parameters.make(inputScaleA: sa, inputZeroPointA: za, inputScaleB: sb, inputZeroPointB: zb,
                                            outputScale: sy, outputZeroPoint: zy, clampMin: cmin, clampMax: cmax)
        return (p, sa, za, sb, zb, sy, zy)
    }

    func testAddAgainstFloat() throws {
        var rng = NLRNG(17)
        var worst = 0.0
        for _ in 0..<60 {
            let (p, sa, za, sb, zb, sy, zy) = try randomAdd(&rng)
            for a in -128...127 {
                for b in stride(from: -128, through: 127, by: 3) {
                    let q = AddInt8.add(Int8(a), Int8(b), p)
                    let real = sa * Double(Int32(a) - za) + sb * Double(Int32(b) - zb)
                    let target = min(max(real / sy + Double(zy), Double(p.clampMin)), Double(p.clampMax))
                    let err = Swift.abs(Double(q) - target)
                    // AddInt8's stated bound: rounding, plus the 15-bit multipliers' rounding.
                    let bound = 0.5 + max(sa, sb) / sy / 64 + 1e-4
                    worst = max(worst, err - 0.5)
                    XCTAssertLessThanOrEqual(err, bound)
                }
            }
        }
        print("add: max |q − float| = 0.5 + \(worst) output LSB")
    }

    func run2D(_ rows: Int, _ cols: Int, inStride: Int, outStride: Int, range: Range<Int>,
               _ body: (UnsafePointer<Int8>, UnsafeMutablePointer<Int8>) -> Void, input: [Int8]) -> [Int8] {
        var out = [Int8](repeating: 42, count: rows * outStride)
        input.withUnsafeBufferPointer { ip in out.withUnsafeMutableBufferPointer { op in body(ip.baseAddress!, op.baseAddress!) } }
        return out
    }

    func testAddSIMDBitExactAndStrided() throws {
        var rng = NLRNG(23)
        for isa in KernelISA.available {
            for it in 0..<150 {
                var (p, _, _, _, _, _, _) = try randomAdd(&rng)
                if it % 10 == 0 {
                    // The ends of the parameter range, with extreme zero points: the smallest shift
                    // (output scale 10⁴ times finer than the inputs') and the largest (2⁹ coarser).
                    let fine = it % 20 == 0
                    p = try AddInt8.Parameters.make(inputScaleA: 0.5, inputZeroPointA: 127, inputScaleB: 0.25, inputZeroPointB: -128,
                                                    outputScale: fine ? 0.5 / 1e4 : 0.5 * 512, outputZeroPoint: fine ? -128 : 127)
                    XCTAssertEqual(p.shift, fine ? 1 : AddInt8.maxShift)
                }
                let rows = rng.int(1, 5), cols = it < 40 ? it + 1 : rng.int(1, 200)
                let sa = cols + rng.int(0, 7), sb = cols + rng.int(0, 7), so = cols + rng.int(0, 7)
                var a = rng.int8s(rows * sa), b = rng.int8s(rows * sb)
                if it % 4 == 0 { for i in a.indices where i % 3 == 0 { a[i] = -128 }; for i in b.indices where i % 2 == 0 { b[i] = 127 } }
                let lo = rng.int(0, rows - 1)
                var out = [Int8](repeating: 42, count: rows * so)
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { op in
                    AddInt8.run(a: ap.baseAddress!, aRowStride: sa, b: bp.baseAddress!, bRowStride: sb, output: op.baseAddress!,
                                outputRowStride: so, columns: cols, rows: lo..<rows, parameters: p, isa: isa)
                } } }
                for r in 0..<rows {
                    for i in 0..<so {
                        let expected: Int8 = r >= lo && i < cols ? AddInt8.add(a[r * sa + i], b[r * sb + i], p) : 42
                        XCTAssertEqual(out[r * so + i], expected, "\(isa) r=\(r) i=\(i)")
                    }
                }
            }
        }
    }

    // MARK: global average pooling

    func testGlobalAveragePool() throws {
        var rng = NLRNG(41)
        var worst = 0.0
        for it in 0..<80 {
            let h = rng.int(1, 16), w = rng.int(1, 16), c = rng.int(1, 70)
            let pixelStride = c + rng.int(0, 5), rowStride = w * pixelStride + rng.int(0, 9)
            let sx = rng.logUniform(0.005, 0.5), sy = sx * rng.logUniform(0.2, 2)
            let zx = Int32(rng.int(-128, 127)), zy = Int32(rng.int(-128, 127))
            let p = try GlobalAveragePoolInt8.Parameters.make(inputScale: sx, inputZeroPoint: zx, outputScale: sy,
                                                              outputZeroPoint: zy, pixelCount: h * w)
            var x = rng.int8s(h * rowStride)
            if it % 5 == 0 { for i in x.indices { x[i] = 127 } }
            var out = [Int8](repeating: 0, count: c)
            var scratch = [Int32](repeating: 0, count: c)
            let split = rng.int(0, c)
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                for part in [0..<split, split..<c] {
                    GlobalAveragePoolInt8.run(input: xp.baseAddress!, width: w, rowStride: rowStride, pixelStride: pixelStride,
                                              output: op.baseAddress!, channels: part, parameters: p, scratch: sp.baseAddress!)
                }
            } } }
            for ch in 0..<c {
                var sum = 0.0
                for y in 0..<h { for xx in 0..<w { sum += sx * Double(Int32(x[y * rowStride + xx * pixelStride + ch]) - zx) } }
                let target = min(max(sum / Double(h * w) / sy + Double(zy), -128), 127)
                let err = Swift.abs(Double(out[ch]) - target)
                worst = max(worst, err)
                XCTAssertLessThanOrEqual(err, 0.5 + 1.0 / 256, "h=\(h) w=\(w) ch=\(ch)")
            }
        }
        print("global average pool: max |q − float| = \(worst) output LSB")
    }

    // MARK: bilinear resize

    /// PyTorch's float32 computation (upsample_bilinear2d, align_corners=False) of one output.
    func torchBilinear(_ x: [Int8], h: Int, w: Int, c: Int, oh: Int, ow: Int, oy: Int, ox: Int, ch: Int) -> Double {
        func axis(_ n: Int, _ m: Int, _ o: Int) -> (Int, Int, Float) {
            let scale = Float(n) / Float(m)
            var src = scale * (Float(o) + 0.5) - 0.5
            if src < 0 { src = 0 }
            let i0 = Int(src)
            let i1 = i0 + (i0 < n - 1 ? 1 : 0)
            let l1 = min(max(src - Float(i0), 0), 1)
            return (i0, i1, l1)
        }
        let (y0, y1, ly) = axis(h, oh, oy), (x0, x1, lx) = axis(w, ow, ox)
        func v(_ y: Int, _ xx: Int) -> Float { Float(x[(y * w + xx) * c + ch]) }
        let top = (1 - lx) * v(y0, x0) + lx * v(y0, x1)
        let bottom = (1 - lx) * v(y1, x0) + lx * v(y1, x1)
        return Double((1 - ly) * top + ly * bottom)
    }

    /// The exact-rational bilinear (double precision) the kernel approximates.
    func exactBilinear(_ x: [Int8], h: Int, w: Int, c: Int, oh: Int, ow: Int, oy: Int, ox: Int, ch: Int) -> Double {
        func axis(_ n: Int, _ m: Int, _ o: Int) -> (Int, Int, Double) {
            let num = max(0, (2 * o + 1) * n - m), den = 2 * m
            let i0 = num / den
            return (i0, min(i0 + 1, n - 1), Double(num % den) / Double(den))
        }
        let (y0, y1, ly) = axis(h, oh, oy), (x0, x1, lx) = axis(w, ow, ox)
        func v(_ y: Int, _ xx: Int) -> Double { Double(x[(y * w + xx) * c + ch]) }
        return (1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1))
    }

    func testBilinearResizeMatchesTorchSemantics() throws {
        var rng = NLRNG(53)
        var worstExact = 0.0, worstTorch = 0.0
        let sizes: [(Int, Int, Int, Int)] = [(7, 7, 8, 8), (8, 8, 7, 7), (1, 1, 5, 3), (5, 3, 1, 1), (3, 3, 3, 3),
                                             (4, 4, 8, 8), (8, 8, 4, 4), (13, 9, 29, 4), (14, 14, 16, 16), (16, 16, 14, 14),
                                             (2, 7, 9, 2), (32, 32, 32, 32)]
        for (h, w, oh, ow) in sizes {
            let c = rng.int(1, 20)
            let plan = try BilinearResizeInt8.Plan.make(inputHeight: h, inputWidth: w, outputHeight: oh, outputWidth: ow)
            let x = rng.int8s(h * w * c)
            // Output with a wider pixel stride (a channel slice), written in two row ranges.
            let ops = c + 3
            var out = [Int8](repeating: 99, count: oh * ow * ops)
            let split = rng.int(0, oh)
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
                for rows in [split..<oh, 0..<split] {
                    BilinearResizeInt8.run(input: xp.baseAddress!, inputRowStride: w * c, inputPixelStride: c,
                                           output: op.baseAddress! + 1, outputRowStride: ow * ops, outputPixelStride: ops,
                                           channels: c, outputRows: rows, plan: plan)
                }
            } }
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let base = (oy * ow + ox) * ops
                    XCTAssertEqual(out[base], 99)
                    XCTAssertEqual(out[base + c + 1], 99)
                    for ch in 0..<c {
                        let q = Double(out[base + 1 + ch])
                        let e = Swift.abs(q - exactBilinear(x, h: h, w: w, c: c, oh: oh, ow: ow, oy: oy, ox: ox, ch: ch))
                        let t = Swift.abs(q - torchBilinear(x, h: h, w: w, c: c, oh: oh, ow: ow, oy: oy, ox: ox, ch: ch))
                        worstExact = max(worstExact, e)
                        worstTorch = max(worstTorch, t)
                        XCTAssertLessThanOrEqual(e, 0.51, "\(h)x\(w)→\(oh)x\(ow) (\(oy),\(ox),\(ch))")
                        XCTAssertLessThanOrEqual(t, 0.52)
                        if h == oh && w == ow { XCTAssertEqual(out[base + 1 + ch], x[(oy * w + ox) * c + ch]) }
                    }
                }
            }
        }
        print("bilinear resize: max |q − exact| = \(worstExact), |q − torch float32| = \(worstTorch) LSB")
    }

    func testBilinearAxisWeights() throws {
        // 7 → 8: src = (o + 0.5)·7/8 − 0.5 = (7o − 0.5)/8.
        let a = try BilinearResizeInt8.Axis.make(inputSize: 7, outputSize: 8)
        XCTAssertEqual(a.index0, [0, 0, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(a.index1, [1, 1, 2, 3, 4, 5, 6, 6])
        // o = 1: src = 0.8125 → weight1 = 0.8125·32768 = 26624.
        XCTAssertEqual(a.weight1[1], 26624)
        XCTAssertEqual(a.weight1[0], 0)  // src clamped to 0
        // Downscale 8 → 4: src = 2o + 0.5.
        let d = try BilinearResizeInt8.Axis.make(inputSize: 8, outputSize: 4)
        XCTAssertEqual(d.index0, [0, 2, 4, 6])
        XCTAssertEqual(d.weight1, [16384, 16384, 16384, 16384])
        // Last pixel: i1 clamps to n − 1.
        let u = try BilinearResizeInt8.Axis.make(inputSize: 2, outputSize: 4)
        XCTAssertEqual(u.index0, [0, 0, 0, 1])
        XCTAssertEqual(u.index1, [1, 1, 1, 1])
        XCTAssertEqual(u.weight1, [0, 8192, 24576, 8192])
    }
}
