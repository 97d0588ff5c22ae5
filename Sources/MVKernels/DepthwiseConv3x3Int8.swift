// Depthwise 3x3 int8 convolution (NHWC, dilation d ≥ 1 with padding d, stride 1 or 2) with
// per-channel weights, fused requantisation, clamp and optional lookup table. Padding taps read the
// input zero point, so folding zp_in into the bias is exact:
// acc = bias[c] − zp_in·Σ_t w[t][c] + Σ_t w[t][c]·x_t. Dilation is a run-time argument, like the
// stride: the packed weights do not depend on it.
import MVKernelsC

public final class DepthwiseConv3x3Int8: @unchecked Sendable {
    public let channels: Int
    public let inputZeroPoint: Int32
    /// The ISA whose layout the weights are packed in (may differ from the one asked for: NEON
    /// falls back to the reference if a weight is −128).
    public let isa: KernelISA
    /// `mv_dw_args.lut_block` for per-channel tables, or nil (`KernelFamily.channelTableBlocks`).
    let tableBlocks: ChannelTableBlocks?

    let paddedChannels: Int
    /// ISA layout (see mv_int8.h); reference: int8 [9][channels].
    let packed: UnsafeMutableRawPointer
    /// Folded bias, multipliers, shifts (paddedChannels each, in the ISA's order).
    let bias: UnsafeMutablePointer<Int32>
    let multiplier: UnsafeMutablePointer<Int32>
    let shift: UnsafeMutablePointer<Int32>
    /// paddedChannels bytes of the input zero point (padding taps point here).
    let padRow: UnsafeMutablePointer<Int8>

    /// - Parameters:
    ///   - weights: `[C][1][3][3]` int8 (PyTorch layout), symmetric per channel.
    ///   - bias: C int32 values at input_scale·weight_scale[c], or nil.
    ///   - requantization: per-channel (C entries) or one shared pair.
    public convenience init(weights: UnsafePointer<Int8>, bias inBias: UnsafePointer<Int32>?, channels: Int, inputZeroPoint: Int32,
                            requantization: RequantizationParameters, isa requested: KernelISA = .best) {
        precondition(channels >= 1)
        // The family's table says which loop runs (and which runs when a weight is −128).
        let table = DepthwiseKernels.for(requested)
        let hasMinus128 = table.isaWithMinus128Weights != table.isa && (0..<channels * 9).contains { weights[$0] == -128 }
        self.init(weights: weights, bias: inBias, channels: channels, inputZeroPoint: inputZeroPoint,
                  requantization: requantization, loop: hasMinus128 ? table.isaWithMinus128Weights : table.isa)
    }

    /// Packs for the loop of `isa` itself, whatever the family's table selects: for tests of a
    /// loop the table does not (yet) choose, such as AVX-512's (see `KernelFamily.resolve`). The
    /// loop must accept the weights (NEON's: none is −128).
    init(weights: UnsafePointer<Int8>, bias inBias: UnsafePointer<Int32>?, channels: Int, inputZeroPoint: Int32,
         requantization: RequantizationParameters, loop isa: KernelISA) {
        precondition(channels >= 1)
        precondition(inputZeroPoint >= -128 && inputZeroPoint <= 127)
        precondition(requantization.isShared || requantization.multipliers.count == channels)
        precondition(isa != .neondot, "no depthwise loop of its own for neondot")
        self.isa = isa
        tableBlocks = KernelFamily.depthwise.channelTableBlocks(isa)
        self.channels = channels
        self.inputZeroPoint = inputZeroPoint
        // AVX-512 works in groups of 32 channels, the others in groups of 16.
        let cp = isa == .avx512vnni ? (channels + 31) / 32 * 32 : (channels + 15) / 16 * 16
        paddedChannels = cp
        let weightBytes: Int
        switch isa {
        case .avx2: weightBytes = cp / 16 * 160 * 2
        case .avx512vnni: weightBytes = cp / 32 * 384
        case .neon: weightBytes = cp * 9
        default: weightBytes = channels * 9
        }
        packed = UnsafeMutableRawPointer.allocate(byteCount: max(weightBytes, 1), alignment: 64)
        packed.initializeMemory(as: UInt8.self, repeating: 0, count: max(weightBytes, 1))
        bias = .allocate(capacity: cp)
        multiplier = .allocate(capacity: cp)
        shift = .allocate(capacity: cp)
        bias.initialize(repeating: 0, count: cp)
        multiplier.initialize(repeating: 0, count: cp)
        shift.initialize(repeating: 0, count: cp)
        padRow = .allocate(capacity: cp)
        padRow.initialize(repeating: Int8(inputZeroPoint), count: cp)

        for c in 0..<channels {
            var sum: Int32 = 0
            for t in 0..<9 { sum &+= Int32(weights[c * 9 + t]) }
            let folded = (inBias?[c] ?? 0) &- inputZeroPoint &* sum
            let (m, s) = requantization.pair(c)
            // Position of channel c in the bias/multiplier/shift arrays.
            let slot: Int
            if isa == .avx2 {
                let g = c / 16, i = c % 16
                // Half 0: channels 0-3, 8-11; half 1: channels 4-7, 12-15.
                let half = (i / 4) % 2, lane = (i / 8) * 4 + i % 4
                slot = g * 16 + half * 8 + lane
                for t in 0..<9 {
                    let j = t / 2, tap = t % 2
                    let e = ((g * 5 + j) * 2 + half) * 16 + lane * 2 + tap
                    packed.storeBytes(of: Int16(weights[c * 9 + t]), toByteOffset: 2 * e, as: Int16.self)
                }
            } else if isa == .avx512vnni {
                // Accumulator k, lane L, channel j of each group of 32 (see mv_int8.h); the
                // kernel adds 128 to every activation (unsigned for `vpdpbusd`), so the bias
                // subtracts 128·Σ_t w[t][c].
                let g = c / 32, i = c % 32
                let lane = i / 16, k = (i % 16) / 4, j = i % 4
                slot = g * 32 + k * 8 + lane * 4 + j
                for t in 0..<9 {
                    let offset = g * 384 + ((t / 4) * 4 + k) * 32 + (lane * 4 + j) * 4 + t % 4
                    packed.storeBytes(of: weights[c * 9 + t], toByteOffset: offset, as: Int8.self)
                }
            } else if isa == .neon {
                slot = c
                let g = c / 16, i = c % 16
                for t in 0..<9 {
                    packed.storeBytes(of: weights[c * 9 + t], toByteOffset: (g * 9 + t) * 16 + i, as: Int8.self)
                }
            } else {
                slot = c
                for t in 0..<9 {
                    packed.storeBytes(of: weights[c * 9 + t], toByteOffset: t * channels + c, as: Int8.self)
                }
            }
            bias[slot] = isa == .avx512vnni ? folded &- 128 &* sum : folded
            multiplier[slot] = m
            shift[slot] = s
        }
    }

    /// Convenience: weights `[C][1][3][3]` and bias as arrays.
    public convenience init(weights: [Int8], bias: [Int32]?, channels: Int, inputZeroPoint: Int32,
                            requantization: RequantizationParameters, isa: KernelISA = .best) {
        precondition(weights.count == channels * 9, "depthwise weights must hold C x 9 values")
        precondition(bias == nil || bias!.count == channels)
        let b = bias ?? [Int32](repeating: 0, count: channels)
        let wp = UnsafeMutablePointer<Int8>.allocate(capacity: weights.count)
        let bp = UnsafeMutablePointer<Int32>.allocate(capacity: channels)
        defer { wp.deallocate(); bp.deallocate() }
        wp.initialize(from: weights, count: weights.count)
        bp.initialize(from: b, count: channels)
        self.init(weights: UnsafePointer(wp), bias: UnsafePointer(bp), channels: channels, inputZeroPoint: inputZeroPoint,
                  requantization: requantization, isa: isa)
    }

    deinit {
        packed.deallocate()
        bias.deallocate()
        multiplier.deallocate()
        shift.deallocate()
        padRow.deallocate()
    }

    /// Output height and width: `(H − 1) / stride + 1`, for every dilation (the padding equals it).
    public static func outputSize(inputHeight: Int, inputWidth: Int, stride: Int) -> (height: Int, width: Int) {
        ((inputHeight - 1) / stride + 1, (inputWidth - 1) / stride + 1)
    }

    /// Computes output rows `rows` (a sub-range of `0..<outputHeight`; disjoint ranges may run
    /// concurrently).
    /// - Parameters:
    ///   - input: NHWC int8; pixel (y, x) at `input + (y·inputWidth + x)·inputPixelStride`, channel
    ///     c at `+ c` (`inputPixelStride` defaults to `channels`; larger for a channel slice).
    ///   - dilation: spacing of the taps (offsets −d, 0, +d); the padding is d, so at stride 1 the
    ///     output is the input's size (DeepLabV3's dilated backbone blocks).
    ///   - output: pixel (y, x) at `output + (y·outputWidth + x)·outputPixelStride`.
    ///   - lookupTable: nil or 256 entries indexed by `out + 128`; with `lookupTableStride` 256, one
    ///     table per channel (channel c's at `lookupTable + c * 256`).
    ///   - blockTableLookups: with per-channel tables, apply them to blocks of 64 pixels where the
    ///     kernel table has a block routine for this loop (`KernelFamily.channelTableBlocks`: AVX2
    ///     and AVX-512 on a CPU with VBMI; the same bytes).
    ///     False keeps the byte-by-byte lookups (for tests of both).
    public func run(
        input: UnsafePointer<Int8>, inputHeight: Int, inputWidth: Int, inputPixelStride: Int? = nil, stride: Int,
        dilation: Int = 1, output: UnsafeMutablePointer<Int8>, outputPixelStride: Int? = nil,
        outputZeroPoint: Int32, clampMin: Int32 = -128, clampMax: Int32 = 127,
        lookupTable: UnsafePointer<Int8>? = nil, lookupTableStride: Int = 0, rows: Range<Int>,
        blockTableLookups: Bool = true
    ) {
        precondition(stride == 1 || stride == 2, "depthwise stride must be 1 or 2")
        precondition(dilation >= 1 && dilation <= Int(Int32.max), "depthwise dilation must be at least 1")
        precondition(lookupTableStride == 0 || lookupTableStride == 256, "table stride must be 0 or 256")
        precondition(isa.isSupported, "depthwise weights packed for \(isa.rawValue), which this CPU cannot run")
        precondition(outputZeroPoint >= -128 && outputZeroPoint <= 127)
        precondition(clampMin >= -128 && clampMax <= 127 && clampMin <= clampMax)
        let (oh, ow) = Self.outputSize(inputHeight: inputHeight, inputWidth: inputWidth, stride: stride)
        precondition(rows.lowerBound >= 0 && rows.upperBound <= oh)
        let ips = inputPixelStride ?? channels, ops = outputPixelStride ?? channels
        precondition(ips >= channels && ops >= channels)
        guard !rows.isEmpty else { return }
        if isa == .reference {
            runReference(input: input, inputHeight: inputHeight, inputWidth: inputWidth, ips: ips, stride: stride,
                         dilation: dilation, output: output, ow: ow, ops: ops, zeroPoint: outputZeroPoint,
                         clampMin: clampMin, clampMax: clampMax, lut: lookupTable, lutStride: lookupTableStride,
                         rows: rows)
            return
        }
        var a = mv_dw_args()
        a.input = input
        a.in_h = inputHeight
        a.in_w = inputWidth
        a.in_pixel_stride = ips
        a.in_row_stride = inputWidth * ips
        a.stride = Int32(stride)
        a.dilation = Int32(dilation)
        a.pad = UnsafePointer(padRow)
        a.channels = channels
        a.out = output
        a.out_w = ow
        a.y0 = rows.lowerBound
        a.y1 = rows.upperBound
        a.out_pixel_stride = ops
        a.out_row_stride = ow * ops
        a.packed = UnsafeRawPointer(packed)
        a.bias = UnsafePointer(bias)
        a.multiplier = UnsafePointer(multiplier)
        a.shift = UnsafePointer(shift)
        a.output_zero_point = outputZeroPoint
        a.clamp_min = clampMin
        a.clamp_max = clampMax
        a.lut = lookupTable
        a.lut_stride = lookupTableStride
        if lookupTableStride == 256 && blockTableLookups { a.lut_block = tableBlocks }
        withUnsafePointer(to: &a) { p in
            switch isa {
            case .avx2: mv_dw3x3_avx2(p)
            case .avx512vnni: mv_dw3x3_avx512(p)
            default: mv_dw3x3_neon(p)
            }
        }
    }

    private func runReference(
        input: UnsafePointer<Int8>, inputHeight: Int, inputWidth: Int, ips: Int, stride: Int,
        dilation: Int, output: UnsafeMutablePointer<Int8>, ow: Int, ops: Int, zeroPoint: Int32, clampMin: Int32,
        clampMax: Int32, lut: UnsafePointer<Int8>?, lutStride: Int, rows: Range<Int>
    ) {
        let w = UnsafePointer<Int8>(packed.assumingMemoryBound(to: Int8.self))
        let pad = UnsafePointer(padRow)
        for y in rows {
            for x in 0..<ow {
                let o = output + (y * ow + x) * ops
                var taps: (UnsafePointer<Int8>, UnsafePointer<Int8>, UnsafePointer<Int8>,
                           UnsafePointer<Int8>, UnsafePointer<Int8>, UnsafePointer<Int8>,
                           UnsafePointer<Int8>, UnsafePointer<Int8>, UnsafePointer<Int8>) = (pad, pad, pad, pad, pad, pad, pad, pad, pad)
                withUnsafeMutableBytes(of: &taps) { raw in
                    let t = raw.bindMemory(to: UnsafePointer<Int8>.self)
                    for dy in 0..<3 {
                        let iy = y * stride + (dy - 1) * dilation
                        for dx in 0..<3 {
                            let ix = x * stride + (dx - 1) * dilation
                            if iy >= 0 && iy < inputHeight && ix >= 0 && ix < inputWidth {
                                t[dy * 3 + dx] = input + (iy * inputWidth + ix) * ips
                            }
                        }
                    }
                    for c in 0..<channels {
                        var acc = bias[c]
                        for k in 0..<9 { acc &+= Int32(w[k * channels + c]) &* Int32(t[k][c]) }
                        let z = requantize(acc, multiplier: multiplier[c], shift: shift[c])
                        var v = Int8(truncatingIfNeeded: addZeroPointAndClamp(z, zeroPoint: zeroPoint, clampMin: clampMin, clampMax: clampMax))
                        if let lut { v = lut[c &* lutStride &+ Int(v) &+ 128] }
                        o[c] = v
                    }
                }
            }
        }
    }
}
