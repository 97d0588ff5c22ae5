// Integer-only softmax over rows of int32 attention scores (the Q·Kᵀ accumulators).
import MVKernelsC

/// Softmax of int32 score rows to int8 probabilities with no floating point at run time.
///
/// Input: `s` (int32) with real score `inputScale · s` (the 1/√d of attention folded into
/// `inputScale`). Output: `q = clamp(round(p / outputScale) + outputZeroPoint, −128, 127)` with the
/// TFLite default `outputScale = 1/256`, `outputZeroPoint = −128` (p ∈ [0, 1) → 0…255 shifted). A
/// finer `outputScale` (down to 2⁻²⁴) may be chosen by the compiler for long rows whose
/// probabilities are all small (N = 256 uniform attention is exactly one 1/256 step); values above
/// the top level saturate.
///
/// Per row, exactly (the specification every SIMD path matches bit for bit):
/// 1. `m = max s`; `d = min(m − s, maxDifference)` (unsigned; beyond `maxDifference` e is 0 anyway).
/// 2. `u = (d · expMultiplier + 2^(expShift−1)) >> expShift` — `(m − s)·inputScale·log₂e` in Q14:
///    e^(s·S − m·S) = 2^(−u/16384) (rounding: ≤ 2.1e-5 relative).
/// 3. `k = min(u >> 14, 31)`, `x = u & 0x3FFF`; `P(x) ≈ 2^17 · 2^(−x/16384)` by a degree-4 polynomial
///    in unsigned 32-bit fixed point (`exp2Fraction`: relative error ≤ 1.4e-5, strictly decreasing);
///    `e = (P << 13) >> k` (≤ 2^30, Q30 with the row maximum ≈ 1). e is monotone in the score, so
///    a larger score never gets a smaller probability.
/// 4. `Σ = Σ e` in 64 bits; one reciprocal per row: `b = bitLength(Σ)`, `Σn = Σ` normalised to 32
///    significant bits, `R = round(L_q · 2^32 / Σn)`, `S = L_shift + b` where `L_q · 2^(−L_shift) =
///    1/outputScale` (if `S ≥ 63` every output rounds to 0: `R = 0, S = 1`).
/// 5. `q = clamp(((e · R + 2^(S−1)) >> S) + outputZeroPoint, −128, 127)`.
///
/// Error bound (asserted by the tests, measured over rows of 1…1024 and scales 1e-4…0.5): for every
/// element, `|outputScale · (q − zp) − p| ≤ 0.5 · outputScale + 1e-4`, where `p` is the float
/// softmax of the dequantised scores, except where `p` lies above the top representable level
/// (`p > (127.5 − zp) · outputScale`, e.g. a dominant logit with the 1/256 default), where the
/// error is `p − (127 − zp) · outputScale` (≤ 1 LSB for the default, reached at p = 1). Measured: 0.50015
/// output LSB (the integer arithmetic adds < 2e-4 LSB to the final rounding; e has ≤ 3.5e-5
/// relative error).
///
/// Output quantisation: the TFLite default 1/256, zp −128 is kept for compatibility, but it cannot
/// represent p = 1 (a single dominant logit saturates at 255/256, 1 LSB off). `outputScale = 1/255`
/// represents [0, 1] exactly with a uniform ½-LSB bound at the same cost, and long rows (N ≥ 256,
/// where uniform attention is ≤ 1 LSB) keep more information with a finer scale such as 1/1024
/// (saturating the rare large probabilities); the compiler chooses, the kernel takes any scale.
public enum IntegerSoftmax {
    /// Prepared parameters (the only place with floating point).
    public struct Parameters: Sendable, Equatable {
        /// Multiplier of the score difference into Q14 log₂ units (in [1, 2^31)), before `expShift`.
        public var expMultiplier: UInt32
        /// Right shift after the multiply (1…62).
        public var expShift: Int32
        /// Differences at or beyond this give e = 0; clamping to it keeps the product in 64 bits.
        public var maxDifference: UInt32
        /// `1/outputScale = outputMultiplier · 2^(−outputShift)`, `outputMultiplier ∈ [2^30, 2^31)`.
        public var outputMultiplier: UInt32
        public var outputShift: Int32
        public var outputZeroPoint: Int32
        /// For reference (not used at run time).
        public var inputScale: Double
        public var outputScale: Double

        /// - Parameters:
        ///   - inputScale: real value of one unit of the int32 scores (> 0, < 2^16/log₂e ≈ 45000).
        ///   - outputScale: probability quantisation step, 2⁻²⁴ … 1 (default 1/256).
        ///   - outputZeroPoint: int8 zero point of the output (default −128).
        public static func make(inputScale: Double, outputScale: Double = 1.0 / 256,
                                outputZeroPoint: Int32 = -128) throws -> Parameters {
            _ = try NonlinearCheck.scale(inputScale, "softmax input scale")
            _ = try NonlinearCheck.scale(outputScale, "softmax output scale")
            _ = try NonlinearCheck.zeroPoint(outputZeroPoint, "softmax output zero point")
            guard outputScale <= 1, outputScale >= NonlinearCheck.pow2(-24) else {
                throw NonlinearParameterError("softmax output scale must be in 2^-24…1, got \(outputScale)")
            }
            let log2e = 1.44269504088896338700
            let real = inputScale * log2e * 16384
            var (m, shift) = NonlinearCheck.fixedPoint(real, bits: 31)  // m ∈ [2^30, 2^31)
            if shift > 62 {
                // Tiny scale: keep the shift in range and let the multiplier shrink.
                m = Int64((real * NonlinearCheck.pow2(62)).rounded(.toNearestOrAwayFromZero))
                shift = 62
                if m == 0 {
                    throw NonlinearParameterError("softmax input scale \(inputScale) is too small to represent")
                }
            }
            guard shift >= 1 else {
                throw NonlinearParameterError("softmax input scale \(inputScale) is too large (≥ 2^16 / log2 e)")
            }
            let mult = UInt64(m)
            let sh = UInt64(shift)
            // Smallest d with u(d) ≥ 31·2^14 (e = 0 from there on); u is monotone in d.
            func u(_ d: UInt64) -> UInt64 { (d * mult + (1 << (sh - 1))) >> sh }
            var lo: UInt64 = 0, hi: UInt64 = UInt64(UInt32.max)
            if u(hi) < 31 << 14 {
                lo = hi
            } else {
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if u(mid) >= 31 << 14 { hi = mid } else { lo = mid + 1 }
                }
            }
            let (lq, lshift) = NonlinearCheck.fixedPoint(1 / outputScale, bits: 31)
            precondition(lshift >= 0 && lshift <= 30)
            return Parameters(expMultiplier: UInt32(mult), expShift: Int32(shift), maxDifference: UInt32(lo),
                              outputMultiplier: UInt32(lq), outputShift: Int32(lshift),
                              outputZeroPoint: outputZeroPoint, inputScale: inputScale, outputScale: outputScale)
        }

        /// These parameters after checking that no value can overflow the fixed-point pipeline (for
        /// parameters restored from a model file; a violated precondition traps rather than
        /// computing garbage). `make` always produces valid parameters.
        public func validated() throws -> Parameters {
            try nonlinearRequire(expMultiplier >= 1 && expMultiplier < 1 << 31, "softmax exp multiplier must be in 1..<2^31")
            try nonlinearRequire(expShift >= 1 && expShift <= 62, "softmax exp shift must be in 1...62")
            try nonlinearRequire(outputMultiplier >= 1 && outputMultiplier < 1 << 31, "softmax output multiplier must be in 1..<2^31")
            try nonlinearRequire(outputShift >= 0 && outputShift <= 62, "softmax output shift must be in 0...62")
            try nonlinearRequire(outputZeroPoint >= -128 && outputZeroPoint <= 127, "softmax output zero point out of int8 range")
            // Q14 log2 units stay below 2^31 for every clamped difference.
            let uMax = (UInt64(maxDifference) * UInt64(expMultiplier) + (1 << UInt64(expShift - 1))) >> UInt64(expShift)
            try nonlinearRequire(uMax < 1 << 31, "softmax max difference too large for the exp multiplier")
            return self
        }

        var c: mv_softmax_params {
            mv_softmax_params(exp_multiplier: expMultiplier, exp_shift: expShift, max_difference: maxDifference,
                              output_multiplier: outputMultiplier, output_shift: outputShift,
                              output_zero_point: outputZeroPoint)
        }
    }

    /// Int32 scratch elements one call needs (per thread): the row length.
    public static func scratchCount(rowLength: Int) -> Int { max(rowLength, 1) }

    /// 2^17 · 2^(−x/16384) for x in 0…16383: a degree-4 minimax polynomial (relative error) in
    /// nested Horner form with every level in its own fixed-point format (Q25, Q22, Q20, Q18, Q17) so
    /// that every product stays below 2^32 in unsigned 32-bit arithmetic. Relative error ≤ 1.4e-5,
    /// result in 65539…131071, strictly decreasing (steps ≥ 2), and 2·P(16383) ≥ P(0), so e is
    /// monotone in the score across integer parts too.
    @inlinable @inline(__always)
    public static func exp2Fraction(_ x: UInt32) -> UInt32 {
        var a: UInt32 = 222_608 &- ((227_070 &* x) >> 17)
        a = 250_967 &- ((a &* x) >> 16)
        a = 181_673 &- ((a &* x) >> 16)
        return 131_071 &- ((a &* x) >> 15)
    }

    /// e for a score difference `d = m − s` (unsigned), in Q30 (the row maximum gives 2^30 − 2^13).
    @inlinable @inline(__always)
    static func expQ30(_ diff: UInt32, _ p: Parameters) -> UInt32 {
        let d = min(diff, p.maxDifference)
        let u = UInt32(truncatingIfNeeded: (UInt64(d) &* UInt64(p.expMultiplier) &+ (1 &<< UInt64(p.expShift &- 1))) >> UInt64(p.expShift))
        let k = min(u >> 14, 31)
        return (exp2Fraction(u & 0x3FFF) << 13) >> k
    }

    /// The per-row output multiplier and shift from the sum of the row's e values.
    @inlinable @inline(__always)
    static func reciprocal(_ sum: UInt64, _ p: Parameters) -> (r: UInt64, s: UInt64) {
        let b = 64 &- sum.leadingZeroBitCount  // sum ≥ 2^30 − 2^13, so b ≥ 30
        let sn = b >= 32 ? sum >> UInt64(b &- 32) : sum << UInt64(32 &- b)  // [2^31, 2^32)
        let r = ((UInt64(p.outputMultiplier) << 32) &+ (sn >> 1)) / sn
        let s = Int(p.outputShift) &+ b
        if s >= 63 { return (0, 1) }
        return (r, UInt64(s))
    }

    /// Softmax of `rows` (row indices) of a `[rows][rowLength]` int32 matrix with row stride
    /// `scoreRowStride`, into int8 rows with stride `outputRowStride` (elements). `scratch` holds
    /// `scratchCount(rowLength:)` Int32 values; calls on disjoint row ranges with separate scratch
    /// may run concurrently. `rowLength` ≥ 1.
    public static func run(scores: UnsafePointer<Int32>, scoreRowStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputRowStride: Int,
                           rowLength: Int, rows: Range<Int>, parameters p: Parameters,
                           scratch: UnsafeMutablePointer<Int32>, isa: KernelISA = .best) {
        precondition(rowLength >= 1 && rowLength <= Int(Int32.max), "softmax row length must be ≥ 1")
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
        for row in rows {
            referenceRow(scores + row * scoreRowStride, output + row * outputRowStride, rowLength, p, scratch)
        }
    }

    /// The portable specification of one row.
    @inlinable
    static func referenceRow(_ s: UnsafePointer<Int32>, _ out: UnsafeMutablePointer<Int8>, _ n: Int,
                             _ p: Parameters, _ e: UnsafeMutablePointer<Int32>) {
        var m = Int32.min
        for i in 0..<n { m = max(m, s[i]) }
        var sum: UInt64 = 0
        for i in 0..<n {
            let v = expQ30(UInt32(bitPattern: m &- s[i]), p)
            e[i] = Int32(bitPattern: v)
            sum &+= UInt64(v)
        }
        let (r, sh) = reciprocal(sum, p)
        let round: UInt64 = 1 &<< (sh &- 1)
        let lo = -128 &- p.outputZeroPoint, hi = 127 &- p.outputZeroPoint
        for i in 0..<n {
            let v = (UInt64(UInt32(bitPattern: e[i])) &* r &+ round) >> sh  // ≤ 2^24
            let z = min(max(Int32(truncatingIfNeeded: v), lo), hi)
            out[i] = Int8(truncatingIfNeeded: z &+ p.outputZeroPoint)
        }
    }
}
