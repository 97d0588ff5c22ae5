// Dense n x n int8 convolution (NHWC, odd n, stride 1 or 2, dilation d ≥ 1, padding d·(n−1)/2):
// im2col of a tile of output pixels into caller-provided scratch (padding taps = the input zero
// point, so the folded bias stays exact), then the int8 GEMM. A 1x1 stride-1 convolution skips
// im2col entirely, and a 3x3 stride-1 undilated one on AVX2 runs as an exact integer Winograd
// F(2x2, 3x3) (winograd_avx2.c).
import MVKernelsC

/// Dense convolution with weights packed once (B = [Cout][ky][kx][Cin], K = n·n·Cin).
public final class Conv2DInt8: @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    /// Spacing of the kernel taps in the input (1: an ordinary convolution; DeepLabV3's ASPP uses
    /// its atrous rates, e.g. 6, 12, 18). The padding is `dilation · (kernelSize − 1) / 2`, so the
    /// output size does not depend on it.
    public let dilation: Int
    public let inputZeroPoint: Int32
    /// The packed weights of the im2col + GEMM path (their ISA is the one the GEMM runs); nil where
    /// the Winograd path runs instead.
    public let weights: PackedInt8Matrix?

    /// Reduction length of the convolution: kernelSize² · inChannels.
    public var k: Int { kernelSize * kernelSize * inChannels }

    /// Bytes of an im2col row, and the K of its GEMM: `k` rounded up to a multiple of 4, the
    /// padding's weights zero. The stem (3 channels, k = 27) gets rows of 28: whole rows that the
    /// VNNI GEMM copies to its panel with a few 64-byte moves instead of a masked load and store
    /// per row. (A pointwise convolution's rows are its input pixels, K = `k`.)
    public var im2colRowLength: Int { Self.im2colRowLength(k: k, pointwise: isPointwise) }

    static func im2colRowLength(k: Int, pointwise: Bool) -> Int { pointwise ? k : (k + 3) & ~3 }

    /// The Winograd F(2×2, 3×3) operands, for 3×3 stride-1 undilated convolutions on AVX2 with
    /// 16…3584 input channels (`WinogradConv3x3Weights.applies`): exact, and 2.25 times fewer
    /// multiply-adds.
    let winograd: WinogradConv3x3Weights?
    /// Whether `run` uses the Winograd path (for tests and benchmarks).
    public var usesWinograd: Bool { winograd != nil }
    /// The fewest output rows worth giving one `run` call: Winograd computes rows in pairs, so a
    /// call for one row computes two.
    public var rowGranularity: Int { usesWinograd ? 2 : 1 }

    /// - Parameters:
    ///   - weights: `[Cout][Cin][n][n]` int8 (PyTorch layout), symmetric per output channel.
    ///   - bias: Cout int32 values at input_scale·weight_scale[c], or nil.
    ///   - requantization: per output channel (Cout entries) or shared.
    ///   - dilation: spacing of the taps (see `dilation`); only 1 may take the Winograd path.
    public init(weights w: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int, dilation: Int = 1, inputZeroPoint: Int32,
                requantization: RequantizationParameters, isa: KernelISA = .best, allowWinograd: Bool = true) {
        precondition(kernelSize >= 1 && kernelSize % 2 == 1, "kernel size must be odd")
        precondition(stride == 1 || stride == 2, "stride must be 1 or 2")
        precondition(dilation >= 1, "dilation must be at least 1")
        precondition(inChannels >= 1 && outChannels >= 1)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.dilation = dilation
        self.inputZeroPoint = inputZeroPoint
        let n = kernelSize, k = n * n * inChannels
        // Winograd only for dilation 1: its tiles are of adjacent pixels (`applies` checks it).
        if allowWinograd && WinogradConv3x3Weights.applies(kernelSize: n, stride: stride, dilation: dilation,
                                                           inChannels: inChannels, isa: isa) {
            winograd = WinogradConv3x3Weights(weights: w, bias: bias, inChannels: inChannels, outChannels: outChannels,
                                              inputZeroPoint: inputZeroPoint, requantization: requantization)
            weights = nil
            return
        }
        winograd = nil
        // Reorder to [Cout][ky][kx][Cin] so an im2col row is n·n runs of Cin contiguous channels,
        // then zeros to the row length.
        let rowLength = Self.im2colRowLength(k: k, pointwise: kernelSize == 1 && stride == 1)
        let reordered = UnsafeMutablePointer<Int8>.allocate(capacity: outChannels * rowLength)
        defer { reordered.deallocate() }
        reordered.initialize(repeating: 0, count: outChannels * rowLength)
        for co in 0..<outChannels {
            for ci in 0..<inChannels {
                for ky in 0..<n {
                    for kx in 0..<n {
                        reordered[co * rowLength + (ky * n + kx) * inChannels + ci] = w[((co * inChannels + ci) * n + ky) * n + kx]
                    }
                }
            }
        }
        weights = PackedInt8Matrix(rows: UnsafePointer(reordered), rowStride: rowLength, n: outChannels, k: rowLength,
                                   bias: bias, aZeroPoint: inputZeroPoint, requantization: requantization, isa: isa)
    }

    /// Convenience: weights `[Cout][Cin][n][n]` and bias as arrays.
    public convenience init(weights: [Int8], bias: [Int32]?, inChannels: Int, outChannels: Int, kernelSize: Int,
                            stride: Int, dilation: Int = 1, inputZeroPoint: Int32,
                            requantization: RequantizationParameters, isa: KernelISA = .best,
                            allowWinograd: Bool = true) {
        precondition(weights.count == outChannels * inChannels * kernelSize * kernelSize, "weights must hold Cout·Cin·n·n values")
        precondition(bias == nil || bias!.count == outChannels)
        let wp = UnsafeMutablePointer<Int8>.allocate(capacity: weights.count)
        defer { wp.deallocate() }
        wp.initialize(from: weights, count: weights.count)
        if let bias {
            let bp = UnsafeMutablePointer<Int32>.allocate(capacity: bias.count)
            defer { bp.deallocate() }
            bp.initialize(from: bias, count: bias.count)
            self.init(weights: UnsafePointer(wp), bias: UnsafePointer(bp), inChannels: inChannels, outChannels: outChannels,
                      kernelSize: kernelSize, stride: stride, dilation: dilation, inputZeroPoint: inputZeroPoint,
                      requantization: requantization, isa: isa, allowWinograd: allowWinograd)
        } else {
            self.init(weights: UnsafePointer(wp), bias: nil, inChannels: inChannels, outChannels: outChannels,
                      kernelSize: kernelSize, stride: stride, dilation: dilation, inputZeroPoint: inputZeroPoint,
                      requantization: requantization, isa: isa, allowWinograd: allowWinograd)
        }
    }

    /// Output height and width: `(H + 2·p − e) / stride + 1` with padding p = d·(n/2) and window
    /// extent e = d·(n − 1) + 1, which is `(H − 1) / stride + 1` for every dilation d.
    public func outputSize(inputHeight: Int, inputWidth: Int) -> (height: Int, width: Int) {
        let p = dilation * (kernelSize / 2), e = dilation * (kernelSize - 1) + 1
        return ((inputHeight + 2 * p - e) / stride + 1, (inputWidth + 2 * p - e) / stride + 1)
    }

    /// Whether `run` needs no im2col scratch (1x1, stride 1).
    public var isPointwise: Bool { kernelSize == 1 && stride == 1 }

    /// Bytes of scratch `run` needs for tiles of `tilePixels` output pixels (0 when pointwise).
    public func scratchSize(tilePixels: Int) -> Int {
        if let winograd { return winograd.scratchBytes }
        // 16 bytes past the last row: im2col's 16-byte moves may run past a row's end.
        return isPointwise ? 0 : (tilePixels * im2colRowLength + 16 + 63) & ~63
    }

    /// A tile size keeping the im2col tile within 32 KiB: a multiple of 24 pixels (at least 24, at
    /// most 504), which every GEMM microkernel's row count (2, 4, 6, 8) divides. A tile that is
    /// not a multiple of the microkernel's rows ends in a partial row tile computed in full: 32
    /// pixels (the fusion convolution's K = 864) ran 36 rows on AVX2, 11% of its multiply-adds
    /// wasted.
    public var recommendedTilePixels: Int { max(24, min(504, (32 * 1024 / max(im2colRowLength, 1)) / 24 * 24)) }

    /// Copies `count` bytes with overlapping unaligned moves instead of a `memmove` call per run:
    /// the calls cost the stem (runs of 9 bytes: a 3×3 row of RGB) as much as its GEMM, and the
    /// local and fusion convolutions (runs of 3·Cin = 144…480 bytes) a few percent of theirs.
    @inline(__always)
    static func copyRun(_ dst: UnsafeMutablePointer<Int8>, _ src: UnsafePointer<Int8>, _ count: Int) {
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        if count > 16 {
            // 16-byte moves, the last one ending exactly at `count` (overlapping the previous).
            var i = 0
            while i &+ 16 < count {
                d.storeBytes(of: (s + i).loadUnaligned(as: SIMD16<Int8>.self), toByteOffset: i, as: SIMD16<Int8>.self)
                i &+= 16
            }
            d.storeBytes(of: (s + (count &- 16)).loadUnaligned(as: SIMD16<Int8>.self), toByteOffset: count &- 16,
                         as: SIMD16<Int8>.self)
        } else if count >= 8 {
            let head = s.loadUnaligned(as: UInt64.self), tail = (s + (count &- 8)).loadUnaligned(as: UInt64.self)
            d.storeBytes(of: head, as: UInt64.self)
            d.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
        } else {
            dst.update(from: src, count: count)
        }
    }

    /// Computes output rows `rows` (disjoint ranges may run concurrently with separate scratch).
    /// - Parameters:
    ///   - input: pixel (y, x) at `input + (y·inputWidth + x)·inputPixelStride`, channel c at `+ c`
    ///     (`inputPixelStride` defaults to `inChannels`; larger for a channel slice of a wider buffer).
    ///   - output: pixel (y, x) at `output + (y·outputWidth + x)·outputPixelStride` (defaults to
    ///     `outChannels`; pass the concat buffer's width and an offset base to write channels
    ///     [c0, c0 + Cout) of a wider buffer).
    ///   - scratch: at least `scratchSize(tilePixels:)` bytes (ignored when pointwise).
    public func run(
        input: UnsafePointer<Int8>, inputHeight: Int, inputWidth: Int, inputPixelStride: Int? = nil,
        output: UnsafeMutablePointer<Int8>, outputPixelStride: Int? = nil,
        outputZeroPoint: Int32, clampMin: Int32 = -128, clampMax: Int32 = 127,
        lookupTable: UnsafePointer<Int8>? = nil, lookupTableStride: Int = 0, rows: Range<Int>,
        scratch: UnsafeMutablePointer<Int8>?, tilePixels: Int
    ) {
        let (oh, ow) = outputSize(inputHeight: inputHeight, inputWidth: inputWidth)
        precondition(rows.lowerBound >= 0 && rows.upperBound <= oh)
        let ips = inputPixelStride ?? inChannels, ops = outputPixelStride ?? outChannels
        precondition(ips >= inChannels && ops >= outChannels)
        guard !rows.isEmpty else { return }
        if let winograd {
            guard let scratch else { preconditionFailure("Conv2DInt8 needs Winograd scratch") }
            winograd.run(input: input, inputHeight: inputHeight, inputWidth: inputWidth, inputPixelStride: ips,
                         inputZeroPoint: inputZeroPoint, output: output, outputPixelStride: ops,
                         outputZeroPoint: outputZeroPoint, clampMin: clampMin, clampMax: clampMax,
                         lookupTable: lookupTable, lookupTableStride: lookupTableStride, rows: rows,
                         scratch: UnsafeMutableRawPointer(scratch))
            return
        }
        guard let weights else { preconditionFailure("Conv2DInt8 has neither GEMM nor Winograd weights") }
        let p0 = rows.lowerBound * ow, p1 = rows.upperBound * ow
        if isPointwise {
            Int8GEMM.run(a: input + p0 * ips, aRows: .strided(ips), m: p1 - p0, k: k, b: weights,
                         output: output + p0 * ops, outRows: .strided(ops), outputZeroPoint: outputZeroPoint,
                         clampMin: clampMin, clampMax: clampMax, lookupTable: lookupTable,
                         lookupTableStride: lookupTableStride)
            return
        }
        guard let scratch else { preconditionFailure("Conv2DInt8 needs im2col scratch") }
        precondition(tilePixels >= 1)
        var t0 = p0
        while t0 < p1 {
            let t1 = min(p1, t0 + tilePixels)
            im2col(input: input, inputHeight: inputHeight, inputWidth: inputWidth, inputPixelStride: ips,
                   outputWidth: ow, pixels: t0..<t1, into: scratch)
            Int8GEMM.run(a: UnsafePointer(scratch), aRows: .strided(im2colRowLength), m: t1 - t0, k: im2colRowLength, b: weights,
                         output: output + t0 * ops, outRows: .strided(ops), outputZeroPoint: outputZeroPoint,
                         clampMin: clampMin, clampMax: clampMax, lookupTable: lookupTable,
                         lookupTableStride: lookupTableStride)
            t0 = t1
        }
    }

    /// im2col of output pixels `pixels` (row-major over the output) into rows of
    /// `im2colRowLength` bytes at `dst`: row p holds the n·n taps of pixel p, each Cin channels, the
    /// input zero point where a tap falls outside the image, then padding to the row length (any
    /// value: its weights are zero). Tap (ky, kx) of output pixel (y, x) reads input
    /// (y·s − pad + ky·d, x·s − pad + kx·d). Pixels whose whole window is inside the image (all but
    /// a border of pad) take the fast path, with no per-tap bounds checks and pointers that advance
    /// by stride·Cin per pixel: undilated, n runs of n·Cin contiguous bytes; dilated, n·n runs of
    /// Cin bytes d pixels apart. The dilation-1 loops are those of an undilated im2col, chosen once
    /// per run of pixels.
    @inline(__always)
    func im2col(input: UnsafePointer<Int8>, inputHeight: Int, inputWidth: Int, inputPixelStride ips: Int,
                outputWidth ow: Int, pixels: Range<Int>, into dst: UnsafeMutablePointer<Int8>) {
        let n = kernelSize, dil = dilation, pad = dilation &* (kernelSize / 2), cin = inChannels, k = self.k
        let rowLength = im2colRowLength
        let st = stride
        let span = dil &* (n &- 1) &+ 1  // the window's extent in input pixels
        let run = n &* cin, rowStride = inputWidth &* ips
        let zp = Int8(truncatingIfNeeded: inputZeroPoint)
        // Output columns whose window is inside the image horizontally: ix0 = x·s − pad ≥ 0 and
        // ix0 + span ≤ W.
        let xInLo = (pad + st - 1) / st
        let xInHi = inputWidth >= span - pad ? (inputWidth - span + pad) / st + 1 : 0
        // Undilated runs of at most 16 bytes move as one 16-byte load and store (the stem's runs
        // are 9 bytes: two overlapping 8-byte moves each otherwise). The load must stay inside the
        // input row: (x·s − pad)·Cin + 16 ≤ W·Cin for x < xWideHi. The store may run up to 16
        // bytes past the row: into the next rows, written after it, or the scratch's slack.
        let wideRuns = dil == 1 && run <= 16
        let wideNumerator = (inputWidth + pad) &* cin &- 16
        let xWideHi = wideRuns && wideNumerator >= 0 ? wideNumerator / (st &* cin) + 1 : 0
        var p = pixels.lowerBound
        while p < pixels.upperBound {
            let y = p / ow, x0 = p % ow
            let x1 = min(ow, x0 + (pixels.upperBound - p))  // this output row's pixels in range
            let iy0 = y &* st &- pad
            // The fast path needs the window's rows inside the image and contiguous taps.
            let fastRows = iy0 >= 0 && iy0 &+ span <= inputHeight && ips == cin
            var x = x0
            while x < x1 {
                var row = dst + (p &+ (x &- x0) &- pixels.lowerBound) &* rowLength
                if fastRows && x >= xInLo && x < xInHi {
                    // Interior run of pixels on this output row.
                    let xEnd = min(x1, xInHi)
                    var src = input + iy0 &* rowStride + (x &* st &- pad) &* cin
                    if wideRuns && x < xWideHi {
                        let xWideEnd = min(xEnd, xWideHi)
                        for _ in x..<xWideEnd {
                            var s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(row)
                            for _ in 0..<n {
                                d.storeBytes(of: s.loadUnaligned(as: SIMD16<Int8>.self), as: SIMD16<Int8>.self)
                                s += rowStride
                                d += run
                            }
                            src += st &* cin
                            row += rowLength
                        }
                        x = xWideEnd
                        continue
                    }
                    if dil == 1 {
                        for _ in x..<xEnd {
                            var s = UnsafePointer(src), d = row
                            for _ in 0..<n {
                                Self.copyRun(d, s, run)
                                s += rowStride
                                d += run
                            }
                            if rowLength > k { d.update(repeating: zp, count: rowLength &- k) }
                            src += st &* cin
                            row += rowLength
                        }
                    } else {
                        let tapStep = dil &* cin, rowStep = dil &* rowStride
                        for _ in x..<xEnd {
                            var s = UnsafePointer(src), d = row
                            for _ in 0..<n {
                                var tap = s
                                for _ in 0..<n {
                                    Self.copyRun(d, tap, cin)
                                    tap += tapStep
                                    d += cin
                                }
                                s += rowStep
                            }
                            if rowLength > k { d.update(repeating: zp, count: rowLength &- k) }
                            src += st &* cin
                            row += rowLength
                        }
                    }
                    x = xEnd
                    continue
                }
                let ix0 = x &* st &- pad
                if rowLength > k { (row + k).update(repeating: zp, count: rowLength &- k) }
                for ky in 0..<n {
                    let iy = iy0 &+ ky &* dil
                    let rowDst = row + ky &* run
                    if iy < 0 || iy >= inputHeight {
                        rowDst.update(repeating: zp, count: run)
                        continue
                    }
                    let rowSrc = input + iy &* rowStride
                    if dil == 1 && ix0 >= 0 && ix0 &+ n <= inputWidth && ips == cin {
                        // An undilated kernel row inside the image horizontally (the top and
                        // bottom output rows): one run, as in the fast path.
                        Self.copyRun(rowDst, rowSrc + ix0 &* cin, run)
                        continue
                    }
                    for kx in 0..<n {
                        let ix = ix0 &+ kx &* dil
                        if ix < 0 || ix >= inputWidth {
                            (rowDst + kx &* cin).update(repeating: zp, count: cin)
                        } else {
                            Self.copyRun(rowDst + kx &* cin, rowSrc + ix &* ips, cin)
                        }
                    }
                }
                x &+= 1
            }
            p &+= x1 &- x0
        }
    }
}
