// The operands of the AVX2 integer Winograd F(2x2, 3x3) convolution (winograd_avx2.c, the
// exactness argument in mv_int8.h): transformed weights and the epilogue's per-channel parameters.
// They replace the im2col GEMM's packed weights for the convolutions that take this path.
import MVKernelsC

/// Winograd weights U = G′gG′ᵀ (G′ = 2G, integers) of a 3×3 stride-1 convolution, with the folded
/// bias, multipliers and shifts its epilogue needs.
final class WinogradConv3x3Weights: @unchecked Sendable {
    let inChannels: Int
    let outChannels: Int
    /// Cin rounded up to even (the K of each position's GEMM) and Cout rounded up to 16.
    let paddedIn: Int
    let paddedOut: Int
    /// U for position q = 4i + j at `q·Np·Kp + (co/16)·16·Kp + (ci/2)·32 + (co%16)·2 + ci%2` (the
    /// AVX2 GEMM's B layout, int16; padding zero).
    let transformed: UnsafeMutablePointer<Int16>
    /// bias[c] − z_in·Σ_k w[c][k], then multipliers, then shifts: 3 × Np, zero padded (as a
    /// PackedInt8Matrix folds them for the GEMM).
    let epilogue: UnsafeMutablePointer<Int32>

    /// Whether a convolution takes this path: 3×3, stride 1, dilation 1, AVX2, and
    /// 16…MV_WINO_MAX_CIN input channels (below 16 the transforms cost more than they save; above
    /// the maximum 4·Σ w·x could leave int32). F(2×2, 3×3) transforms 4×4 tiles of adjacent input
    /// pixels, so a dilated convolution (taps d apart) cannot take it.
    static func applies(kernelSize: Int, stride: Int, dilation: Int, inChannels: Int, isa: KernelISA) -> Bool {
        ConvKernels.for(isa).hasWinograd3x3 && kernelSize == 3 && stride == 1 && dilation == 1 && inChannels >= 16
            && inChannels <= Int(MV_WINO_MAX_CIN)
    }

    /// - Parameter w: `[Cout][Cin][3][3]` int8 weights (PyTorch layout).
    init(weights w: UnsafePointer<Int8>, bias: UnsafePointer<Int32>?, inChannels cin: Int, outChannels cout: Int,
         inputZeroPoint: Int32, requantization: RequantizationParameters) {
        precondition(requantization.isShared || requantization.multipliers.count == cout, "requantization needs 1 or Cout entries")
        inChannels = cin
        outChannels = cout
        let np = (cout + 15) / 16 * 16, kp = (cin + 1) / 2 * 2
        paddedIn = kp
        paddedOut = np
        transformed = .allocate(capacity: 16 * np * kp)
        transformed.initialize(repeating: 0, count: 16 * np * kp)
        epilogue = .allocate(capacity: 3 * np)
        epilogue.initialize(repeating: 0, count: 3 * np)
        for co in 0..<cout {
            var sum: Int32 = 0
            for ci in 0..<cin {
                let g = w + (co * cin + ci) * 9
                for t in 0..<9 { sum &+= Int32(g[t]) }
                // t = G′g (4×3), then U = tG′ᵀ (4×4): row i of U is [2t0, t0+t1+t2, t0−t1+t2, 2t2] for
                // row i of t.
                func t(_ i: Int, _ c: Int) -> Int32 {
                    let g0 = Int32(g[c]), g1 = Int32(g[3 + c]), g2 = Int32(g[6 + c])  // column c of g
                    switch i {
                    case 0: return 2 * g0
                    case 1: return g0 + g1 + g2
                    case 2: return g0 - g1 + g2
                    default: return 2 * g2
                    }
                }
                for i in 0..<4 {
                    let t0 = t(i, 0), t1 = t(i, 1), t2 = t(i, 2)
                    let row = (2 * t0, t0 + t1 + t2, t0 - t1 + t2, 2 * t2)
                    let base = (4 * i) * np * kp + (co / 16) * 16 * kp + (ci / 2) * 32 + (co % 16) * 2 + ci % 2
                    transformed[base] = Int16(row.0)
                    transformed[base + np * kp] = Int16(row.1)
                    transformed[base + 2 * np * kp] = Int16(row.2)
                    transformed[base + 3 * np * kp] = Int16(row.3)
                }
            }
            let p = requantization.pair(co)
            epilogue[co] = (bias?[co] ?? 0) &- inputZeroPoint &* sum
            epilogue[np + co] = p.multiplier
            epilogue[2 * np + co] = p.shift
        }
    }

    deinit {
        transformed.deallocate()
        epilogue.deallocate()
    }

    /// Scratch bytes of one `run` (a multiple of 64).
    var scratchBytes: Int { mv_winograd3x3_scratch_bytes(inChannels, outChannels) }

    /// Output rows `rows` of the convolution (see `Conv2DInt8.run`); `scratch` holds `scratchBytes`.
    func run(input: UnsafePointer<Int8>, inputHeight: Int, inputWidth: Int, inputPixelStride: Int, inputZeroPoint: Int32,
             output: UnsafeMutablePointer<Int8>, outputPixelStride: Int, outputZeroPoint: Int32, clampMin: Int32,
             clampMax: Int32, lookupTable: UnsafePointer<Int8>?, lookupTableStride: Int, rows: Range<Int>,
             scratch: UnsafeMutableRawPointer) {
        var args = mv_wino_args()
        args.input = input
        args.in_h = inputHeight
        args.in_w = inputWidth
        args.in_pixel_stride = inputPixelStride
        args.cin = inChannels
        args.input_zero_point = inputZeroPoint
        args.out = output
        args.out_pixel_stride = outputPixelStride
        args.cout = outChannels
        args.y0 = rows.lowerBound
        args.y1 = rows.upperBound
        args.packed = UnsafePointer(transformed)
        args.kp = paddedIn
        args.bias = UnsafePointer(epilogue)
        args.multiplier = UnsafePointer(epilogue + paddedOut)
        args.shift = UnsafePointer(epilogue + 2 * paddedOut)
        args.output_zero_point = outputZeroPoint
        args.clamp_min = clampMin
        args.clamp_max = clampMax
        args.lut = lookupTable
        args.lut_stride = lookupTableStride
        args.scratch = scratch
        mv_winograd3x3_avx2(&args)
    }
}
