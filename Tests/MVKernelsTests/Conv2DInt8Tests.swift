import MVKernels
import XCTest

final class Conv2DInt8Tests: XCTestCase {
    struct Case {
        var h: Int, w: Int, cin: Int, cout: Int, n: Int, stride: Int
        var ips: Int, inOffset: Int, ops: Int, outOffset: Int
        var input: [Int8], weights: [Int8], bias: [Int32]?
        var zpIn: Int32, zpOut: Int32, clampMin: Int32, clampMax: Int32
        var requant: RequantizationParameters
        var lut: [Int8]?
        /// One table per output channel (`lut` holds Cout × 256 entries, stride 256).
        var lutPerChannel = false
        var dilation: Int

        /// `denseInput`: pixel stride = Cin (the im2col fast path), else a random channel slice.
        init(_ rng: inout Int8TestRNG, h: Int, w: Int, cin: Int, cout: Int, n: Int, stride: Int, dilation: Int = 1,
             denseInput: Bool = false) {
            self.h = h; self.w = w; self.cin = cin; self.cout = cout; self.n = n; self.stride = stride
            self.dilation = dilation
            inOffset = denseInput || rng.bool() ? 0 : rng.int(1, 5)
            ips = cin + inOffset + (denseInput || rng.bool() ? 0 : rng.int(0, 4))
            outOffset = rng.bool() ? 0 : rng.int(1, 5)
            ops = cout + outOffset + (rng.bool() ? 0 : rng.int(0, 4))
            input = rng.int8s(h * w * ips)
            weights = rng.int8s(cout * cin * n * n, -127, 127)
            bias = rng.bool() ? (0..<cout).map { _ in Int32(rng.int(-100_000, 100_000)) } : nil
            let zps: [Int32] = [-128, 127, 0, Int32(rng.int(-128, 127))]
            zpIn = zps[rng.int(0, 3)]; zpOut = zps[rng.int(0, 3)]
            clampMin = rng.bool() ? -128 : Int32(rng.int(-128, 0))
            clampMax = rng.bool() ? 127 : Int32(rng.int(Int(clampMin), 127))
            let kShift = Int32(max(0, 64 - Int(UInt64(n * n * cin * 128 * 128).leadingZeroBitCount) - 8))
            var ms: [Int32] = [], ss: [Int32] = []
            for _ in 0..<(rng.bool() ? 1 : cout) {
                var p = randomRequantPair(&rng)
                if p.1 >= 0 && p.1 < 30 { p.1 += kShift }
                ms.append(p.0); ss.append(p.1)
            }
            requant = RequantizationParameters(multipliers: ms, shifts: ss)
            lut = rng.bool() ? randomLUT(&rng) : nil
        }

        /// Padding d·(n/2) and window extent d·(n − 1) + 1.
        var outSize: (Int, Int) {
            let pad = dilation * (n / 2), extent = dilation * (n - 1) + 1
            return ((h + 2 * pad - extent) / stride + 1, (w + 2 * pad - extent) / stride + 1)
        }

        func naive() -> [Int8] {
            let (oh, ow) = outSize
            var out = [Int8](repeating: 0, count: oh * ow * cout)
            for y in 0..<oh { for x in 0..<ow { for co in 0..<cout {
                var acc = Int64(bias?[co] ?? 0)
                for ci in 0..<cin { for ky in 0..<n { for kx in 0..<n {
                    let iy = y * stride + ky * dilation - dilation * (n / 2), ix = x * stride + kx * dilation - dilation * (n / 2)
                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                    acc += Int64(weights[((co * cin + ci) * n + ky) * n + kx]) * (Int64(input[(iy * w + ix) * ips + inOffset + ci]) - Int64(zpIn))
                } } }
                let (m, s) = requant.pair(co)
                var o = requantizeToInt8(Int32(acc), multiplier: m, shift: s, zeroPoint: zpOut, clampMin: clampMin, clampMax: clampMax)
                if let lut { o = lut[(lutPerChannel ? co * 256 : 0) + Int(o) + 128] }
                out[(y * ow + x) * cout + co] = o
            } } }
            return out
        }

        func run(_ isa: KernelISA, tile: Int, split: Int) -> [Int8] {
            run(Conv2DInt8(weights: weights, bias: bias, inChannels: cin, outChannels: cout, kernelSize: n,
                           stride: stride, dilation: dilation, inputZeroPoint: zpIn, requantization: requant, isa: isa),
                tile: tile, split: split)
        }

        func run(_ conv: Conv2DInt8, tile: Int, split: Int) -> [Int8] {
            let (oh, ow) = outSize
            var out = [Int8](repeating: 0x21, count: oh * ow * ops)
            var scratch = [Int8](repeating: 0, count: max(1, conv.scratchSize(tilePixels: tile)))
            input.withUnsafeBufferPointer { ip in
                out.withUnsafeMutableBufferPointer { op in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        (lut ?? []).withUnsafeBufferPointer { lp in
                            let s = min(max(split, 0), oh)
                            for r in [0..<s, s..<oh] {
                                conv.run(input: ip.baseAddress! + inOffset, inputHeight: h, inputWidth: w, inputPixelStride: ips,
                                         output: op.baseAddress! + outOffset, outputPixelStride: ops, outputZeroPoint: zpOut,
                                         clampMin: clampMin, clampMax: clampMax, lookupTable: lut == nil ? nil : lp.baseAddress,
                                         lookupTableStride: lutPerChannel ? 256 : 0, rows: r, scratch: sp.baseAddress!, tilePixels: tile)
                            }
                        }
                    }
                }
            }
            var dense = [Int8](repeating: 0, count: oh * ow * cout)
            for p in 0..<oh * ow {
                for c in 0..<ops {
                    if c >= outOffset && c < outOffset + cout { dense[p * cout + c - outOffset] = out[p * ops + c] }
                    else { precondition(out[p * ops + c] == 0x21, "conv wrote outside its channel slice") }
                }
            }
            return dense
        }
    }

    func testReferenceMatchesNaive() {
        var rng = Int8TestRNG(seed: 30)
        for i in 0..<60 {
            let n = [1, 1, 3, 3, 3, 5][rng.int(0, 5)]
            let c = Case(&rng, h: rng.int(1, 9), w: rng.int(1, 9), cin: rng.int(1, 12), cout: rng.int(1, 20), n: n, stride: rng.int(1, 2))
            XCTAssertEqual(c.run(.reference, tile: rng.int(1, 20), split: rng.int(0, 4)), c.naive(), "case \(i) n\(n)")
        }
    }

    /// The im2col fast path (windows inside the image, pixel stride = Cin) against the naive
    /// convolution: the stem (runs of 9 bytes), runs of 17…32 bytes and longer ones of 16-byte
    /// moves with and without a remainder, odd and even sizes, tiles starting mid-row.
    func testIm2colFastPathMatchesNaive() {
        var rng = Int8TestRNG(seed: 32)
        let shapes: [(h: Int, w: Int, cin: Int, n: Int, stride: Int)] = [
            (17, 16, 3, 3, 2), (16, 17, 3, 3, 1), (12, 13, 7, 3, 2), (9, 11, 16, 3, 1), (10, 9, 11, 3, 1),
            (8, 8, 48, 3, 1), (7, 9, 5, 5, 1), (9, 8, 4, 5, 2), (3, 3, 6, 3, 1), (2, 5, 3, 3, 1)]
        for (i, s) in shapes.enumerated() {
            let c = Case(&rng, h: s.h, w: s.w, cin: s.cin, cout: rng.int(1, 20), n: s.n, stride: s.stride, denseInput: true)
            let tile = [1, 3, s.w - 1, s.w + 1, 1000][i % 5]
            XCTAssertEqual(c.run(.reference, tile: max(tile, 1), split: rng.int(0, 4)), c.naive(), "case \(i) \(s) tile \(tile)")
        }
    }

    func testEveryISAMatchesReference() {
        var rng = Int8TestRNG(seed: 31)
        for isa in KernelISA.available where isa != .reference {
            // The stem (3 channels, stride 2) and wide 3x3 convs first, then random shapes.
            var shapes: [(Int, Int, Int, Int, Int, Int)] = [(16, 16, 3, 16, 3, 2), (8, 8, 48, 64, 3, 1), (5, 6, 96, 40, 3, 1), (4, 4, 480, 24, 3, 1), (7, 7, 20, 20, 1, 1), (7, 7, 20, 20, 1, 2)]
            for _ in 0..<60 {
                shapes.append((rng.int(1, 10), rng.int(1, 10), rng.int(1, 40), rng.int(1, 40), [1, 3, 3, 5][rng.int(0, 3)], rng.int(1, 2)))
            }
            for (i, s) in shapes.enumerated() {
                let c = Case(&rng, h: s.0, w: s.1, cin: s.2, cout: s.3, n: s.4, stride: s.5)
                let tile = rng.int(1, 40), split = rng.int(0, 5)
                XCTAssertEqual(c.run(isa, tile: tile, split: split), c.run(.reference, tile: rng.int(1, 40), split: rng.int(0, 5)), "\(isa) case \(i) \(s)")
            }
        }
    }

    /// The AVX2 Winograd F(2×2, 3×3) path (3×3, stride 1, Cin ≥ 16) against the reference: odd and
    /// even sizes (partial 2×2 tiles), single rows and columns, Cin not a multiple of 16 or odd,
    /// Cout of at most 8 and not a multiple of 16, per-channel tables, row ranges starting at odd
    /// rows, blocks of tiles spanning several tile rows; and Cin = 3584 (MV_WINO_MAX_CIN) with every
    /// input and weight at ±128/127, where 4·Σ w·x comes within 2% of 2³¹: the exactness bound.
    func testWinogradMatchesReference() {
        guard KernelISA.available.contains(.avx2) else {
            print("SKIP testWinogradMatchesReference: this CPU has no AVX2")
            return
        }
        var rng = Int8TestRNG(seed: 33)
        let shapes: [(h: Int, w: Int, cin: Int, cout: Int)] = [
            (1, 1, 16, 1), (2, 2, 16, 16), (3, 5, 17, 9), (7, 6, 33, 40), (9, 9, 48, 48), (1, 13, 31, 33),
            (13, 1, 24, 3), (6, 6, 16, 8), (11, 14, 96, 48), (5, 7, 160, 80), (4, 3, 1000, 17), (16, 16, 64, 20)]
        for (i, s) in shapes.enumerated() {
            var c = Case(&rng, h: s.h, w: s.w, cin: s.cin, cout: s.cout, n: 3, stride: 1)
            if i % 2 == 1 {
                c.lutPerChannel = true
                c.lut = rng.int8s(256 * s.cout)
            }
            let wino = Conv2DInt8(weights: c.weights, bias: c.bias, inChannels: c.cin, outChannels: c.cout, kernelSize: 3,
                                  stride: 1, inputZeroPoint: c.zpIn, requantization: c.requant, isa: .avx2)
            XCTAssertTrue(wino.usesWinograd, "case \(i)")
            let want = c.run(.reference, tile: 7, split: 0)
            for split in Set([0, 1, s.h / 2, s.h - 1, rng.int(0, s.h)]) {
                XCTAssertEqual(c.run(wino, tile: 24, split: split), want, "case \(i) \(s) split \(split)")
            }
        }
        // The bound: Cin = MV_WINO_MAX_CIN, inputs and padding at an extreme, weights ±128/127.
        var c = Case(&rng, h: 3, w: 4, cin: 3584, cout: 5, n: 3, stride: 1)
        for sign in [Int8(-128), 127] {
            c.input = [Int8](repeating: sign, count: c.input.count)
            c.zpIn = Int32(sign)
            c.weights = (0..<c.weights.count).map { $0 % 7 == 0 ? 127 : (sign == -128 ? -128 : 127) }
            c.bias = nil
            c.requant = RequantizationParameters(multipliers: [1 << 30], shifts: [0])  // acc / 2: any error saturates
            c.lut = nil
            let wino = Conv2DInt8(weights: c.weights, bias: nil, inChannels: c.cin, outChannels: c.cout, kernelSize: 3,
                                  stride: 1, inputZeroPoint: c.zpIn, requantization: c.requant, isa: .avx2)
            XCTAssertTrue(wino.usesWinograd)
            XCTAssertEqual(c.run(wino, tile: 24, split: 1), c.run(.reference, tile: 7, split: 0), "extreme \(sign)")
        }
        // Beyond the bound the direct path runs.
        let wide = Conv2DInt8(weights: [Int8](repeating: 1, count: 4 * 3585 * 9), bias: nil, inChannels: 3585, outChannels: 4,
                              kernelSize: 3, stride: 1, inputZeroPoint: 0, requantization: RequantizationParameters(multipliers: [1 << 30], shifts: [1]),
                              isa: .avx2)
        XCTAssertFalse(wide.usesWinograd)
    }

    /// Dilated convolutions (DeepLabV3's ASPP: 3×3 at the atrous rates; padding d·(n/2)): dilations
    /// 1, 2, 3, 6, 12, odd maps and maps smaller than the dilation (every off-centre tap of a pixel
    /// is padding), both strides, 3×3 and 5×5, channel counts around the SIMD widths, dense inputs
    /// (the im2col fast path) and channel slices (the edge path only), shared and per-channel
    /// requantisation and tables.
    static func dilatedCases(_ rng: inout Int8TestRNG) -> [Case] {
        let sizes = [(7, 11), (13, 5), (1, 1), (3, 4), (2, 9), (25, 27)]
        let channels = [1, 3, 16, 17, 40]
        var cases: [Case] = []
        for d in [1, 2, 3, 6, 12] {
            for (si, (h, w)) in sizes.enumerated() {
                for stride in [1, 2] {
                    for (ci, cin) in channels.enumerated() {
                        // The largest map at two channel counts only: it gives dilation 6 and 12
                        // windows wholly inside the image, not new channel tails.
                        if h * w > 300 && cin != 17 && cin != 3 { continue }
                        let n = (si + ci + d) % 4 == 0 ? 5 : 3
                        var c = Case(&rng, h: h, w: w, cin: cin, cout: channels[(ci + si + 2) % 5], n: n, stride: stride,
                                     dilation: d, denseInput: rng.int(0, 2) != 0)
                        if c.lut != nil && rng.bool() {
                            c.lutPerChannel = true
                            c.lut = rng.int8s(256 * c.cout)
                        }
                        cases.append(c)
                    }
                }
            }
        }
        return cases
    }

    func testDilatedReferenceMatchesNaive() {
        var rng = Int8TestRNG(seed: 34)
        for (i, c) in Self.dilatedCases(&rng).enumerated() {
            XCTAssertEqual(c.run(.reference, tile: rng.int(1, 40), split: rng.int(0, 5)), c.naive(),
                           "case \(i): \(c.h)x\(c.w) \(c.cin)->\(c.cout) n\(c.n) stride \(c.stride) dilation \(c.dilation)")
        }
    }

    func testDilatedEveryISAMatchesReference() {
        var rng = Int8TestRNG(seed: 35)
        let cases = Self.dilatedCases(&rng)
        for isa in KernelISA.available where isa != .reference {
            for (i, c) in cases.enumerated() {
                XCTAssertEqual(c.run(isa, tile: rng.int(1, 40), split: rng.int(0, 5)),
                               c.run(.reference, tile: rng.int(1, 40), split: rng.int(0, 5)),
                               "\(isa) case \(i): \(c.h)x\(c.w) \(c.cin)->\(c.cout) n\(c.n) stride \(c.stride) dilation \(c.dilation)")
            }
        }
    }

    /// Winograd transforms tiles of adjacent pixels: a dilated 3×3 stride-1 convolution that it
    /// would otherwise take (AVX2, Cin ≥ 16) runs im2col + GEMM, and matches the naive convolution.
    func testDilatedConvolutionNeverTakesWinograd() {
        var rng = Int8TestRNG(seed: 36)
        // Packing for AVX2 needs an AVX2 CPU (its pack routine traps elsewhere).
        guard KernelISA.available.contains(.avx2) else {
            print("SKIP testDilatedConvolutionNeverTakesWinograd: this CPU has no AVX2 (Winograd is AVX2 only)")
            return
        }
        for d in [1, 2, 6] {
            let c = Case(&rng, h: 9, w: 8, cin: 32, cout: 20, n: 3, stride: 1, dilation: d, denseInput: true)
            let conv = Conv2DInt8(weights: c.weights, bias: c.bias, inChannels: c.cin, outChannels: c.cout, kernelSize: 3,
                                  stride: 1, dilation: d, inputZeroPoint: c.zpIn, requantization: c.requant, isa: .avx2)
            XCTAssertEqual(conv.usesWinograd, d == 1, "dilation \(d)")
            XCTAssertEqual(conv.rowGranularity, d == 1 ? 2 : 1)
            XCTAssertEqual(conv.dilation, d)
            XCTAssertEqual(c.run(conv, tile: 24, split: 3), c.naive(), "dilation \(d)")
        }
    }
}
