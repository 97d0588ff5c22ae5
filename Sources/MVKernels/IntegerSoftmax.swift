// Integer-only softmax over rows of int32 attention scores (the Q·Kᵀ accumulators).
import MVKernelsC

/// Softmax of int32 score rows to int8 probabilities with no floating point at run time.
///
/// Input: `s` (int32) with real score `inputScale · s` (the 1/√d of attention folded into
/// `inputScale`). Output: `q = clamp(round(p / outputScale) + outputZeroPoint, −128, 127)`; the
/// compiler uses `outputScale = 1/255`, `outputZeroPoint = −128` (p ∈ [0, 1] → codes −128…127);
/// any scale in 2⁻¹¹…1 works, values above the top level saturate.
///
/// The hot loops run in 16-bit lanes (32 per AVX-512 vector, 16 per AVX2, 8 per NEON register):
/// the score difference saturated to 16 bits, one unsigned high multiply into log₂ units,
/// exponentials in Q15 from a degree-3 polynomial, one rounded high multiply per output. Per row,
/// exactly (the specification every SIMD path matches bit for bit):
/// 1. `m = max s`; `d = m − s` (unsigned 32-bit).
/// 2. `d' = min(⌊d · 2^a / 2^r⌋ + 1, 65535)` with `r = expPreShift`, `a = expLeftShift`, at most
///    one of them non-zero: the difference in units of `2^(r−a)` scores, plus one, saturated to 16
///    bits.
/// 3. `u = (d' · M) >> 16` with `M = expMultiplier ∈ [32769, 65535]`: the difference in Q11 log₂
///    units (e^(S·(s − m)) = 2^(−u/2048)). The + 1 offsets the two truncations (the row
///    maximum still gets u = 0, as M < 2^16); `M > 2^15` makes the saturated `d' = 65535` give
///    `u ≥ 2^15`, hence e = 0 below.
/// 4. `k = u >> 11`, `x = u & 2047`; `P = exp2Fraction(x) ≈ 2^16 · 2^(−x/2048)` (degree-3
///    polynomial in unsigned 16-bit fixed point, relative error ≤ 1.04e-4, strictly decreasing);
///    `e = ((P >> k) + 1) >> 1` (= round(P / 2^(k+1)), 0 for k ≥ 16; the row maximum gives 32766).
///    e is monotone in the score, so a larger score never gets a smaller probability.
/// 5. `Σ = Σ e`; one reciprocal per row (`reciprocal`): `R ∈ [2^14, 2^15)` and `t1 ∈ 0…15` with
///    `R · 2^(−16−t1) ≈ (1/outputScale) / Σ` (relative error ≤ 2^−14).
/// 6. `t = (e · R + 2^14) >> 15` (a rounded high multiply: `pmulhrsw`, `vqrdmulh`),
///    `q = ((t >> t1) + 1) >> 1`, output `min(q, 127 − outputZeroPoint) + outputZeroPoint`.
///
/// Steps 2 and 3 (version 5 of the model file) replaced a rounded pre-shift and a 32-bit multiply
/// with rounding: two truncations now, each under one Q11 unit, offset by the + 1, and M rounded
/// to 16 bits, so `u` lies within `S′·d ± (1 + 2^−14·S′·d)` for the exact `S′·d` (S′ = S · log₂e ·
/// 2048): e is within about ln 2 / 2048 ≈ 3.4e-4 of exact (relative) where it matters, near the
/// row maximum (whose u is 0 exactly). `testExpErrorBound` asserts this for e.
///
/// Error bound (asserted by the tests over rows of 1…1024, scales 1e-5…10 and output scales
/// 1/128…1/1024): for every element `|outputScale · (q − zp) − p| ≤ 0.5 · outputScale + 1e-3 · p +
/// 3e-5`, where `p` is the float softmax of the dequantised scores, except above the top level
/// (`p > (127.5 − zp) · outputScale`), where the code is 127. The sources: the truncations of
/// steps 2 and 3 (≤ 6.8e-4 relative in e), the polynomial (≤ 1.04e-4), rounding e to Q15 (≤ 0.5/32766
/// of the row maximum's e, which is what the absolute term covers) and the reciprocal (≤ 6e-5).
public enum IntegerSoftmax {
    /// Prepared parameters (the only place with floating point).
    public struct Parameters: Sendable, Equatable {
        /// Right shift (truncating) of the difference (0…31); 0 where `expLeftShift` is not.
        public var expPreShift: Int32
        /// Left shift of the difference (0…15); 0 where `expPreShift` is not.
        public var expLeftShift: Int32
        /// Q11 log₂ units per `2^(expPreShift − expLeftShift)` score units, times 2^16 (32769…65535).
        public var expMultiplier: UInt32
        /// `1/outputScale = outputMultiplier · 2^(−outputShift)`, `outputMultiplier ∈ [2^30, 2^31)`.
        public var outputMultiplier: UInt32
        public var outputShift: Int32
        public var outputZeroPoint: Int32
        /// For reference (not used at run time).
        public var inputScale: Double
        public var outputScale: Double

        /// - Parameters:
        ///   - inputScale: real value of one unit of the int32 scores (about 8e-14 … 11: one unit under 2^15 Q11 log₂ units).
        ///   - outputScale: probability quantisation step, 2⁻¹¹ … 1 (default 1/256, TFLite's; the compiler uses 1/255).
        ///   - outputZeroPoint: int8 zero point of the output (default −128).
        public static func make(inputScale: Double, outputScale: Double = 1.0 / 256,
                                outputZeroPoint: Int32 = -128) throws -> Parameters {
            _ = try NonlinearCheck.scale(inputScale, "softmax input scale")
            _ = try NonlinearCheck.scale(outputScale, "softmax output scale")
            _ = try NonlinearCheck.zeroPoint(outputZeroPoint, "softmax output zero point")
            guard outputScale <= 1, outputScale >= NonlinearCheck.pow2(-11) else {
                throw NonlinearParameterError("softmax output scale must be in 2^-11…1, got \(outputScale)")
            }
            // Q11 log₂ units per score unit, as M · 2^(a − r − 16) with M in [2^15, 2^16).
            let c = inputScale * 1.44269504088896338700 * 2048
            guard c < 32768 else {
                throw NonlinearParameterError("softmax input scale \(inputScale) is too large (one score unit ≥ 2^15 Q11 log2 units)")
            }
            guard c >= NonlinearCheck.pow2(-40) else {
                throw NonlinearParameterError("softmax input scale \(inputScale) is too small to represent")
            }
            let (rounded, e) = NonlinearCheck.fixedPoint(c, bits: 16)  // e = 16 + r − a
            // 32768 would map the saturated difference to u = 32767 (e = 1, not 0); one unit more
            // is a relative change of 2^−15.
            let mult = max(rounded, 32769)
            guard e >= 1 else {
                throw NonlinearParameterError("softmax input scale \(inputScale) is too large (one score unit ≥ 2^15 Q11 log2 units)")
            }
            guard e <= 16 + 31 else {
                throw NonlinearParameterError("softmax input scale \(inputScale) is too small to represent")
            }
            let preShift = max(e - 16, 0), leftShift = max(16 - e, 0)
            let (lq, lshift) = NonlinearCheck.fixedPoint(1 / outputScale, bits: 31)
            return try Parameters(expPreShift: Int32(preShift), expLeftShift: Int32(leftShift), expMultiplier: UInt32(mult),
                                  outputMultiplier: UInt32(lq), outputShift: Int32(lshift),
                                  outputZeroPoint: outputZeroPoint, inputScale: inputScale, outputScale: outputScale).validated()
        }

        /// These parameters after checking that no value can overflow the fixed-point pipeline (for
        /// parameters restored from a model file; a violated precondition traps rather than
        /// computing garbage). `make` always produces valid parameters.
        public func validated() throws -> Parameters {
            try nonlinearRequire(expPreShift >= 0 && expPreShift <= 31, "softmax exp pre-shift must be in 0...31")
            try nonlinearRequire(expLeftShift >= 0 && expLeftShift <= 15, "softmax exp left shift must be in 0...15")
            try nonlinearRequire(expPreShift == 0 || expLeftShift == 0, "softmax exp pre-shift and left shift cannot both be non-zero")
            try nonlinearRequire(expMultiplier > 32768 && expMultiplier <= 65535, "softmax exp multiplier must be in 32769...65535")
            try nonlinearRequire(outputMultiplier >= 1 << 30 && outputMultiplier < 1 << 31, "softmax output multiplier must be in 2^30..<2^31")
            try nonlinearRequire(outputShift >= 19 && outputShift <= 30, "softmax output shift must be in 19...30 (output scale 2^-11…1)")
            try nonlinearRequire(outputZeroPoint >= -128 && outputZeroPoint <= 127, "softmax output zero point out of int8 range")
            return self
        }

        var c: mv_softmax_params {
            mv_softmax_params(exp_pre_shift: expPreShift, exp_left_shift: expLeftShift, exp_multiplier: expMultiplier,
                              output_multiplier: outputMultiplier,
                              output_shift: outputShift, output_zero_point: outputZeroPoint)
        }
    }

    /// Longest row the kernels take (the SIMD paths sum e in 32-bit lanes).
    public static let maxRowLength = 1 << 19

    /// Int32 scratch elements one call needs (per thread): room for four rows' e values (16-bit,
    /// each row rounded up to 32), which the AVX-512 rows compute side by side.
    public static func scratchCount(rowLength: Int) -> Int { 2 * ((rowLength + 31) & ~31) }

    /// 2^16 · 2^(−x/2048) for x in 0…2047: a degree-3 polynomial (minimax in relative error,
    /// coefficients searched over the integers) in nested Horner form on y = x·32 ∈ [0, 2^16) with
    /// unsigned 16×16→high-16 products, so that 16-bit SIMD lanes evaluate it exactly. Relative
    /// error ≤ 1.04e-4, result in 32776…65531, strictly decreasing, and 2·P(2047) ≥ P(0), so e is
    /// monotone in the score across integer parts too.
    @inlinable @inline(__always)
    public static func exp2Fraction(_ x: UInt32) -> UInt32 {
        let y = x << 5
        var a: UInt32 = 15112 &- ((2579 &* y) >> 16)
        a = 45300 &- ((a &* y) >> 16)
        return 65531 &- ((a &* y) >> 16)
    }

    /// e for a score difference `d = m − s` (unsigned), in Q15 (the row maximum gives 32766).
    @inlinable @inline(__always)
    static func expQ15(_ diff: UInt32, _ p: Parameters) -> UInt32 {
        let shifted = (UInt64(diff) << UInt64(p.expLeftShift)) >> UInt64(p.expPreShift)
        let d = UInt32(min(shifted &+ 1, 65535))
        let u = (d &* p.expMultiplier) >> 16
        let k = u >> 11
        let scaled = k >= 16 ? 0 : exp2Fraction(u & 2047) >> k
        return (scaled &+ 1) >> 1
    }

    /// The per-row output multiplier `R ∈ [2^14, 2^15)` and shift `t1 ∈ 0…15` from the sum of the
    /// row's e values: `R · 2^(−16−t1) ≈ (1/outputScale) / Σ`.
    @inlinable @inline(__always)
    static func reciprocal(_ sum: UInt64, _ p: Parameters) -> (r: UInt32, t1: UInt32) {
        let b = 64 &- sum.leadingZeroBitCount  // sum ≥ 32766, so b ≥ 15
        let sn = b >= 32 ? sum >> UInt64(b &- 32) : sum << UInt64(32 &- b)  // [2^31, 2^32)
        let r0 = ((UInt64(p.outputMultiplier) << 32) &+ (sn >> 1)) / sn  // (2^30, 2^32)
        var j = (64 &- r0.leadingZeroBitCount) &- 15
        var r = (r0 &+ (1 &<< UInt64(j &- 1))) >> UInt64(j)
        if r == 1 << 15 { r = 1 << 14; j &+= 1 }
        let s = Int(p.outputShift) &+ b &- j &- 15  // ≥ 1 for outputShift ≥ 19
        return (UInt32(r), UInt32(min(s &- 1, 15)))
    }

    /// Softmax of `rows` (row indices) of a `[rows][rowLength]` int32 matrix with row stride
    /// `scoreRowStride`, into int8 rows with stride `outputRowStride` (elements). `scratch` holds
    /// `scratchCount(rowLength:)` Int32 values; calls on disjoint row ranges with separate scratch
    /// may run concurrently. `rowLength` in 1…`maxRowLength`.
    public static func run(scores: UnsafePointer<Int32>, scoreRowStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputRowStride: Int,
                           rowLength: Int, rows: Range<Int>, parameters p: Parameters,
                           scratch: UnsafeMutablePointer<Int32>, isa: KernelISA = .best) {
        precondition(rowLength >= 1 && rowLength <= maxRowLength, "softmax row length must be in 1…2^19")
        if rows.isEmpty { return }
        let kernels = RowKernels<SoftmaxRows>.for(isa)
        if let softmaxRows = kernels.rows {
            precondition(kernels.isa.isSupported, "softmax rows for \(kernels.isa.rawValue), which this CPU cannot run")
            var c = p.c
            softmaxRows(scores + rows.lowerBound * scoreRowStride, scoreRowStride,
                        output + rows.lowerBound * outputRowStride, outputRowStride,
                        Int32(rowLength), Int32(rows.count), &c, scratch)
            return
        }
        let e = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: UInt16.self)
        for row in rows {
            referenceRow(scores + row * scoreRowStride, output + row * outputRowStride, rowLength, p, e)
        }
    }

    /// The portable specification of one row.
    @inlinable
    static func referenceRow(_ s: UnsafePointer<Int32>, _ out: UnsafeMutablePointer<Int8>, _ n: Int,
                             _ p: Parameters, _ e: UnsafeMutablePointer<UInt16>) {
        var m = Int32.min
        for i in 0..<n { m = max(m, s[i]) }
        var sum: UInt64 = 0
        for i in 0..<n {
            let v = expQ15(UInt32(bitPattern: m &- s[i]), p)
            e[i] = UInt16(truncatingIfNeeded: v)
            sum &+= UInt64(v)
        }
        let (r, t1) = reciprocal(sum, p)
        let hi = UInt32(127 &- p.outputZeroPoint)
        for i in 0..<n {
            let t = (UInt32(e[i]) &* r &+ (1 << 14)) >> 15
            let q = ((t >> t1) &+ 1) >> 1
            out[i] = Int8(truncatingIfNeeded: Int32(min(q, hi)) &+ p.outputZeroPoint)
        }
    }
}
