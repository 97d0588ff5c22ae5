// Int8 → int8 rescale (or plain copy) between quantisations, with strided input and output: how a
// concatenation writes each input into its channel slice of the output.
import MVKernelsC

/// `out = clamp(round(s_x·(q − z_x)/s_y) + z_y, clampMin, clampMax)` as
/// `requantize((q − z_x) << 20, M, h) + z_y` with `M·2^(−31−h) ≈ s_x / (2^20·s_y)` (the 20-bit pre-shift
/// makes the double rounding inside `requantize` negligible). When the quantisations are equal (and
/// the clamp is the full range) it is an exact copy.
///
/// Error bound (asserted): ≤ 0.5 + 2^-10 output LSB where not clamped.
public enum RequantizeInt8 {
    public static let leftShift: Int32 = 20

    public struct Parameters: Sendable, Equatable {
        public var inputZeroPoint: Int32
        public var multiplier: Int32, shift: Int32
        public var outputZeroPoint: Int32, clampMin: Int32, clampMax: Int32
        /// True when the output codes equal the input codes (same scale and zero point, no clamp).
        public var isIdentity: Bool

        public static func make(inputScale: Double, inputZeroPoint: Int32, outputScale: Double,
                                outputZeroPoint: Int32, clampMin: Int32 = -128, clampMax: Int32 = 127) throws -> Parameters {
            let sx = try NonlinearCheck.scale(inputScale, "requantize input scale")
            let sy = try NonlinearCheck.scale(outputScale, "requantize output scale")
            let zx = try NonlinearCheck.zeroPoint(inputZeroPoint, "requantize input zero point")
            let zy = try NonlinearCheck.zeroPoint(outputZeroPoint, "requantize output zero point")
            guard clampMin >= -128, clampMax <= 127, clampMin <= clampMax else {
                throw NonlinearParameterError("requantize clamp range \(clampMin)…\(clampMax) is not within −128…127")
            }
            let real = sx / (sy * Double(1 << leftShift))
            guard real.isFinite, real > 0, real < NonlinearCheck.pow2(31) else {
                throw NonlinearParameterError("requantize scale ratio \(sx)/\(sy) out of range")
            }
            let q = quantizeMultiplier(real)
            guard q.multiplier > 0 else { throw NonlinearParameterError("requantize scale ratio \(sx)/\(sy) too small") }
            let identity = sx == sy && zx == zy && clampMin == -128 && clampMax == 127
            return Parameters(inputZeroPoint: zx, multiplier: q.multiplier, shift: q.shift,
                              outputZeroPoint: zy, clampMin: clampMin, clampMax: clampMax, isIdentity: identity)
        }

        /// Parameters from their stored integer fields (a model file), validated (a violated
        /// precondition traps rather than computing garbage). The identity is recognised exactly:
        /// `(multiplier, shift) = (2^30, 19)` is 2^-20, which undoes the 20-bit pre-shift exactly.
        public static func restored(inputZeroPoint: Int32, multiplier: Int32, shift: Int32, outputZeroPoint: Int32,
                                    clampMin: Int32 = -128, clampMax: Int32 = 127) -> Parameters {
            precondition(inputZeroPoint >= -128 && inputZeroPoint <= 127 && outputZeroPoint >= -128 && outputZeroPoint <= 127,
                         "requantize zero point out of int8 range")
            precondition(multiplier >= 0, "requantize multiplier must be ≥ 0")
            precondition(shift >= -31 && shift <= 62, "requantize shift must be in −31…62")
            precondition(clampMin >= -128 && clampMax <= 127 && clampMin <= clampMax, "requantize clamp range invalid")
            let identity = multiplier == 1 << 30 && shift == 19 && inputZeroPoint == outputZeroPoint
                && clampMin == -128 && clampMax == 127
            return Parameters(inputZeroPoint: inputZeroPoint, multiplier: multiplier, shift: shift,
                              outputZeroPoint: outputZeroPoint, clampMin: clampMin, clampMax: clampMax, isIdentity: identity)
        }

        var c: mv_requantize_params {
            mv_requantize_params(input_zero_point: inputZeroPoint, multiplier: multiplier, shift: shift,
                                 output_zero_point: outputZeroPoint, clamp_min: clampMin, clamp_max: clampMax)
        }
    }

    /// One element, the specification.
    @inlinable @inline(__always)
    public static func convert(_ q: Int8, _ p: Parameters) -> Int8 {
        requantizeToInt8((Int32(q) &- p.inputZeroPoint) << leftShift, multiplier: p.multiplier, shift: p.shift,
                         zeroPoint: p.outputZeroPoint, clampMin: p.clampMin, clampMax: p.clampMax)
    }

    /// `output[r·outputRowStride + i] = convert(input[r·inputRowStride + i])` for `r` in `rows`,
    /// `i` in 0..<columns. In place is allowed with equal strides.
    public static func run(input: UnsafePointer<Int8>, inputRowStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputRowStride: Int,
                           columns: Int, rows: Range<Int>, parameters p: Parameters, isa: KernelISA = .best) {
        if rows.isEmpty || columns <= 0 { return }
        if p.isIdentity {
            for r in rows {
                let src = input + r * inputRowStride, dst = output + r * outputRowStride
                if src != UnsafePointer(dst) { dst.update(from: src, count: columns) }
            }
            return
        }
        #if arch(x86_64)
        if isa == .avx2 || isa == .avx512vnni {
            var c = p.c
            mv_requantize_rows_avx2(input + rows.lowerBound * inputRowStride, inputRowStride,
                                    output + rows.lowerBound * outputRowStride, outputRowStride,
                                    Int32(columns), Int32(rows.count), &c)
            return
        }
        #elseif arch(arm64)
        if isa == .neon || isa == .neondot {
            var c = p.c
            mv_requantize_rows_neon(input + rows.lowerBound * inputRowStride, inputRowStride,
                                    output + rows.lowerBound * outputRowStride, outputRowStride,
                                    Int32(columns), Int32(rows.count), &c)
            return
        }
        #endif
        for r in rows {
            let src = input + r * inputRowStride, dst = output + r * outputRowStride
            for i in 0..<columns { dst[i] = convert(src[i], p) }
        }
    }
}
