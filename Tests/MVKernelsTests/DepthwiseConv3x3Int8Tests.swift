@testable import MVKernels
import Dispatch
import XCTest

final class DepthwiseConv3x3Int8Tests: XCTestCase {
    struct Case {
        var h: Int, w: Int, c: Int, stride: Int, ips: Int, ops: Int
        var input: [Int8], weights: [Int8], bias: [Int32]?
        var zpIn: Int32, zpOut: Int32, clampMin: Int32, clampMax: Int32
        var requant: RequantizationParameters
        var lut: [Int8]?
        /// One table per channel (`lut` holds C × 256 entries, stride 256).
        var lutPerChannel = false
        var dilation: Int

        init(_ rng: inout Int8TestRNG, h: Int, w: Int, c: Int, stride: Int, dilation: Int = 1) {
            self.h = h; self.w = w; self.c = c; self.stride = stride; self.dilation = dilation
            ips = c + (rng.bool() ? 0 : rng.int(1, 7))
            ops = c + (rng.bool() ? 0 : rng.int(1, 7))
            input = rng.int8s(h * w * ips)
            weights = rng.int8s(c * 9, -127, 127)
            if rng.int(0, 3) == 0 { for i in weights.indices where rng.int(0, 2) == 0 { weights[i] = rng.bool() ? -127 : 127 } }
            if rng.int(0, 3) == 0 { for i in input.indices where rng.int(0, 2) == 0 { input[i] = rng.bool() ? -128 : 127 } }
            bias = rng.bool() ? (0..<c).map { _ in Int32(rng.int(-50_000, 50_000)) } : nil
            let zps: [Int32] = [-128, 127, 0, Int32(rng.int(-128, 127))]
            zpIn = zps[rng.int(0, 3)]; zpOut = zps[rng.int(0, 3)]
            clampMin = rng.bool() ? -128 : Int32(rng.int(-128, 0))
            clampMax = rng.bool() ? 127 : Int32(rng.int(Int(clampMin), 127))
            if rng.bool() {
                var p = randomRequantPair(&rng)
                if p.1 >= 0 && p.1 < 40 { p.1 += 8 }
                requant = RequantizationParameters(multiplier: p.0, shift: p.1)
            } else {
                var ms: [Int32] = [], ss: [Int32] = []
                for _ in 0..<c { var p = randomRequantPair(&rng); if p.1 >= 0 && p.1 < 40 { p.1 += 8 }; ms.append(p.0); ss.append(p.1) }
                requant = RequantizationParameters(multipliers: ms, shifts: ss)
            }
            lut = rng.bool() ? randomLUT(&rng) : nil
        }

        var outSize: (height: Int, width: Int) { DepthwiseConv3x3Int8.outputSize(inputHeight: h, inputWidth: w, stride: stride) }

        /// Straight from the definition: Σ w·(x − zp) over taps at offsets −d, 0, +d, with padding
        /// (d wide) contributing 0.
        func naive() -> [Int8] {
            let (oh, ow) = outSize
            var out = [Int8](repeating: 0, count: oh * ow * c)
            for y in 0..<oh { for x in 0..<ow { for ch in 0..<c {
                var acc = Int64(bias?[ch] ?? 0)
                for dy in 0..<3 { for dx in 0..<3 {
                    let iy = y * stride + (dy - 1) * dilation, ix = x * stride + (dx - 1) * dilation
                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                    acc += Int64(weights[ch * 9 + dy * 3 + dx]) * (Int64(input[(iy * w + ix) * ips + ch]) - Int64(zpIn))
                } }
                let (m, s) = requant.pair(ch)
                var o = requantizeToInt8(Int32(acc), multiplier: m, shift: s, zeroPoint: zpOut, clampMin: clampMin, clampMax: clampMax)
                if let lut { o = lut[(lutPerChannel ? ch * 256 : 0) + Int(o) + 128] }
                out[(y * ow + x) * c + ch] = o
            } } }
            return out
        }

        /// Runs with `isa` (its own loop when `loop`, not the one the family's table picks), rows
        /// split into up to three calls, on two threads at once when `threads` is 2; returns [oh][ow][c].
        func run(_ isa: KernelISA, splits: [Int], loop: Bool = false, threads: Int = 1) -> [Int8] {
            let conv = weights.withUnsafeBufferPointer { wp in
                (bias ?? [Int32](repeating: 0, count: c)).withUnsafeBufferPointer { bp in
                    loop ? DepthwiseConv3x3Int8(weights: wp.baseAddress!, bias: bp.baseAddress!, channels: c, inputZeroPoint: zpIn,
                                                requantization: requant, loop: isa)
                         : DepthwiseConv3x3Int8(weights: wp.baseAddress!, bias: bp.baseAddress!, channels: c, inputZeroPoint: zpIn,
                                                requantization: requant, isa: isa)
                }
            }
            precondition(!loop || conv.isa == isa)
            let (oh, ow) = outSize
            var out = [Int8](repeating: 0x33, count: oh * ow * ops)
            input.withUnsafeBufferPointer { ip in
                out.withUnsafeMutableBufferPointer { op in
                    (lut ?? []).withUnsafeBufferPointer { lp in
                        var bounds = [0] + splits.filter { $0 > 0 && $0 < oh }.sorted() + [oh]
                        bounds = bounds.enumerated().filter { $0.offset == 0 || $0.element != bounds[$0.offset - 1] }.map(\.element)
                        let ip = UnsafeSendable(ip.baseAddress!), op = UnsafeSendable(op.baseAddress!)
                        let lp = UnsafeSendable(lp.baseAddress)
                        let lut = self.lut, h = self.h, w = self.w, ips = self.ips, stride = self.stride, dilation = self.dilation
                        let ops = self.ops, zpOut = self.zpOut, clampMin = self.clampMin, clampMax = self.clampMax
                        let lutPerChannel = self.lutPerChannel, ranges = bounds
                        // Threads take every other row range: disjoint ranges running concurrently.
                        DispatchQueue.concurrentPerform(iterations: threads) { thread in
                            for i in Swift.stride(from: thread, to: ranges.count - 1, by: threads) {
                                let (ip, op, lp) = (ip.value, op.value, lp.value)
                                conv.run(input: ip, inputHeight: h, inputWidth: w, inputPixelStride: ips, stride: stride,
                                         dilation: dilation, output: op, outputPixelStride: ops, outputZeroPoint: zpOut,
                                         clampMin: clampMin, clampMax: clampMax, lookupTable: lut == nil ? nil : lp,
                                         lookupTableStride: lutPerChannel ? 256 : 0, rows: ranges[i]..<ranges[i + 1])
                            }
                        }
                    }
                }
            }
            var dense = [Int8](repeating: 0, count: oh * ow * c)
            for p in 0..<oh * ow { for ch in 0..<c { dense[p * c + ch] = out[p * ops + ch] } }
            // Channels beyond c in a wider output must be untouched.
            for p in 0..<oh * ow { for ch in c..<ops { precondition(out[p * ops + ch] == 0x33, "wrote outside the channel slice") } }
            return dense
        }
    }

    func testReferenceMatchesNaive() {
        var rng = Int8TestRNG(seed: 20)
        for i in 0..<120 {
            let c = Case(&rng, h: rng.int(1, 9), w: rng.int(1, 9), c: rng.int(1, 40), stride: rng.int(1, 2))
            XCTAssertEqual(c.run(.reference, splits: [rng.int(0, 5)]), c.naive(), "case \(i)")
        }
    }

    func testEveryISAMatchesReference() {
        var rng = Int8TestRNG(seed: 21)
        for isa in KernelISA.available where isa != .reference {
            var shapes: [(Int, Int, Int, Int)] = [(1, 1, 1, 1), (1, 1, 16, 2), (2, 3, 17, 1), (5, 4, 32, 2), (8, 8, 64, 1), (7, 9, 48, 2), (3, 3, 15, 1)]
            for _ in 0..<150 { shapes.append((rng.int(1, 12), rng.int(1, 12), rng.int(1, 70), rng.int(1, 2))) }
            for (i, s) in shapes.enumerated() {
                let c = Case(&rng, h: s.0, w: s.1, c: s.2, stride: s.3)
                let splits = [rng.int(0, 6), rng.int(0, 6)]
                XCTAssertEqual(c.run(isa, splits: splits), c.run(.reference, splits: []), "\(isa) case \(i) \(s)")
            }
        }
    }

    /// Dilated cases (DeepLabV3: dilation 2 in the backbone, the ASPP rates): odd sizes, maps
    /// smaller than the dilation (every off-centre tap of a pixel is padding), channel counts around
    /// the 16-channel SIMD groups, both strides, shared and per-channel requantisation and tables.
    static func dilatedCases(_ rng: inout Int8TestRNG) -> [Case] {
        let sizes = [(7, 11), (13, 5), (1, 1), (3, 4), (2, 9), (16, 14), (25, 27)]
        var cases: [Case] = []
        for d in [1, 2, 3, 6, 12] {
            for (h, w) in sizes {
                for stride in [1, 2] {
                    for ch in [1, 3, 16, 17, 40] {
                        // The two largest maps only at a few channel counts: they add windows wholly
                        // inside the image at dilation 6 and 12, not new channel tails.
                        if h * w > 300 && ch != 17 && ch != 40 { continue }
                        var c = Case(&rng, h: h, w: w, c: ch, stride: stride, dilation: d)
                        if c.lut != nil && rng.bool() {
                            c.lutPerChannel = true
                            c.lut = rng.int8s(256 * ch)
                        }
                        cases.append(c)
                    }
                }
            }
        }
        return cases
    }

    func testDilatedReferenceMatchesNaive() {
        var rng = Int8TestRNG(seed: 22)
        for (i, c) in Self.dilatedCases(&rng).enumerated() {
            XCTAssertEqual(c.run(.reference, splits: [rng.int(0, 5)]), c.naive(),
                           "case \(i): \(c.h)x\(c.w)x\(c.c) stride \(c.stride) dilation \(c.dilation)")
        }
    }

    /// The AVX-512 loop, which the family's table does not select (KernelFamily.resolve), reached
    /// through `init(loop:)`: channel counts around its 32-channel groups and 16-channel last groups,
    /// strides 1 and 2, dilations, padding, shared and per-channel requantisation, no table, one
    /// table and per-channel tables, weights of −128, one and two threads.
    func testAVX512LoopMatchesReference() throws {
        guard KernelISA.avx512vnni.isSupported else { throw XCTSkip("no AVX-512 VNNI on this CPU (the cross-ISA harness emulates it)") }
        var rng = Int8TestRNG(seed: 24)
        var cases = Self.dilatedCases(&rng)
        for ch in [1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 80, 96, 100, 130] {
            for stride in [1, 2] {
                let d = [1, 1, 2, 3][rng.int(0, 3)]
                var c = Case(&rng, h: rng.int(1, 14), w: rng.int(1, 75), c: ch, stride: stride, dilation: d)
                if rng.int(0, 2) == 0 { c.lutPerChannel = true; c.lut = rng.int8s(256 * ch) }
                if rng.int(0, 3) == 0 { c.weights[rng.int(0, c.weights.count - 1)] = -128 }
                cases.append(c)
            }
        }
        for (i, c) in cases.enumerated() {
            let want = c.run(.reference, splits: [])
            let splits = [rng.int(0, 6), rng.int(0, 6)]
            for threads in [1, 2] {
                XCTAssertEqual(c.run(.avx512vnni, splits: splits, loop: true, threads: threads), want,
                               "avx512 case \(i): \(c.h)x\(c.w)x\(c.c) stride \(c.stride) dilation \(c.dilation) threads \(threads)")
            }
        }
    }

    func testDilatedEveryISAMatchesReference() {
        var rng = Int8TestRNG(seed: 23)
        let cases = Self.dilatedCases(&rng)
        for isa in KernelISA.available where isa != .reference {
            for (i, c) in cases.enumerated() {
                let splits = [rng.int(0, 6), rng.int(0, 6)]
                XCTAssertEqual(c.run(isa, splits: splits), c.run(.reference, splits: []),
                               "\(isa) case \(i): \(c.h)x\(c.w)x\(c.c) stride \(c.stride) dilation \(c.dilation)")
            }
        }
    }
}

/// A pointer handed to the threads of one test run (disjoint rows each).
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
