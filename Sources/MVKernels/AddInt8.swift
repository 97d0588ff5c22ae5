// Element-wise addition of two int8 tensors with different quantisations (residual connections).
import MVKernelsC

/// `out = clamp(round((s_a·(a − z_a) + s_b·(b − z_b)) / s_y) + z_y, clampMin, clampMax)` with two
/// 15-bit multipliers and one shift, exactly (the specification every SIMD path matches bit for bit):
///
///     out = clamp((((a − z_a)·m_a + (b − z_b)·m_b + 2^(s−1)) >> s) + z_y, clampMin, clampMax)
///
/// `>>` an arithmetic (flooring) shift, `m_a ≈ 2^s·s_a/s_y` and `m_b ≈ 2^s·s_b/s_y` in 1…32767, `s` in
/// 1…22 the largest that keeps both multipliers in 16-bit signed lanes. Every intermediate stays
/// below 2^30 in int32, so the SIMD paths multiply 16-bit pairs into 32-bit sums in one instruction
/// (`vpmaddwd`; NEON `vmlal_s16`) instead of TFLite's three 64-bit-rounded requantisations (the
/// specification before `.mvq` version 3).
///
/// Error bound (asserted by the tests): against the exact real sum, wherever the output is not
/// clamped, `|error| ≤ 0.5 + 2^−6·max(s_a, s_b)/s_y + 1e-4` output LSB — the multipliers' rounding,
/// `≤ 2^−(s+1)` each, times `|a − z_a| + |b − z_b| ≤ 510`; with `max(m_a, m_b) ≥ 2^14` that is
/// `≤ 255/2^14` of the larger ratio (≈ 0.016 LSB for the ratios near 1 of residual connections).
public enum AddInt8 {
    /// Largest multiplier (16-bit signed lanes).
    public static let maxMultiplier: Int32 = 32767
    /// Largest shift: keeps the rounding term, `z_y·2^s` and the products below 2^30.
    public static let maxShift: Int32 = 22

    public struct Parameters: Sendable, Equatable {
        public var inputZeroPointA: Int32, inputZeroPointB: Int32
        public var multiplierA: Int32, multiplierB: Int32
        public var shift: Int32
        public var outputZeroPoint: Int32, clampMin: Int32, clampMax: Int32

        /// Scales > 0, zero points in −128…127, `−128 ≤ clampMin ≤ clampMax ≤ 127` (in output codes;
        /// e.g. a fused ReLU is `clampMin = outputZeroPoint`).
        public static func make(inputScaleA: Double, inputZeroPointA: Int32,
                                inputScaleB: Double, inputZeroPointB: Int32,
                                outputScale: Double, outputZeroPoint: Int32,
                                clampMin: Int32 = -128, clampMax: Int32 = 127) throws -> Parameters {
            let sa = try NonlinearCheck.scale(inputScaleA, "add input A scale")
            let sb = try NonlinearCheck.scale(inputScaleB, "add input B scale")
            let sy = try NonlinearCheck.scale(outputScale, "add output scale")
            let za = try NonlinearCheck.zeroPoint(inputZeroPointA, "add input A zero point")
            let zb = try NonlinearCheck.zeroPoint(inputZeroPointB, "add input B zero point")
            let zy = try NonlinearCheck.zeroPoint(outputZeroPoint, "add output zero point")
            guard clampMin >= -128, clampMax <= 127, clampMin <= clampMax else {
                throw NonlinearParameterError("add clamp range \(clampMin)…\(clampMax) is not within −128…127")
            }
            let ra = sa / sy, rb = sb / sy
            guard ra.isFinite, rb.isFinite else {
                throw NonlinearParameterError("add scale ratio out of range (input scales \(sa), \(sb) over output scale \(sy))")
            }
            // The largest shift whose multipliers fit 16-bit signed lanes: the larger one's 15-bit
            // fixed point, at most maxShift.
            let shift = min(Int32(NonlinearCheck.fixedPoint(max(ra, rb), bits: 15).shift), maxShift)
            guard shift >= 1 else {
                throw NonlinearParameterError("add scale ratio out of range (input scales \(sa), \(sb) over output scale \(sy))")
            }
            func m(_ r: Double) -> Double { (r * NonlinearCheck.pow2(Int(shift))).rounded(.toNearestOrAwayFromZero) }
            let ma = m(ra), mb = m(rb)
            guard ma >= 1, mb >= 1 else {
                throw NonlinearParameterError("add input scales too different to represent (\(sa), \(sb))")
            }
            return Parameters(inputZeroPointA: za, inputZeroPointB: zb, multiplierA: Int32(ma), multiplierB: Int32(mb),
                              shift: shift, outputZeroPoint: zy, clampMin: clampMin, clampMax: clampMax)
        }

        /// These parameters after range checks (for parameters restored from a model file; a
        /// violated precondition traps rather than computing garbage). `make` always produces
        /// valid parameters.
        public func validated() throws -> Parameters {
            for z in [inputZeroPointA, inputZeroPointB, outputZeroPoint] {
                try nonlinearRequire(z >= -128 && z <= 127, "add zero point out of int8 range")
            }
            try nonlinearRequire(multiplierA >= 0 && multiplierA <= AddInt8.maxMultiplier
                                 && multiplierB >= 0 && multiplierB <= AddInt8.maxMultiplier, "add multipliers must be in 0…32767")
            try nonlinearRequire(shift >= 1 && shift <= AddInt8.maxShift, "add shift must be in 1…22")
            try nonlinearRequire(clampMin >= -128 && clampMax <= 127 && clampMin <= clampMax, "add clamp range invalid")
            return self
        }

        var c: mv_add_params {
            mv_add_params(zero_point_a: inputZeroPointA, multiplier_a: multiplierA,
                          zero_point_b: inputZeroPointB, multiplier_b: multiplierB, shift: shift,
                          output_zero_point: outputZeroPoint, clamp_min: clampMin, clamp_max: clampMax)
        }
    }

    /// One element, the specification.
    @inlinable @inline(__always)
    public static func add(_ a: Int8, _ b: Int8, _ p: Parameters) -> Int8 {
        let sum = (Int32(a) &- p.inputZeroPointA) &* p.multiplierA &+ (Int32(b) &- p.inputZeroPointB) &* p.multiplierB
        let q = ((sum &+ (1 &<< (p.shift &- 1))) >> p.shift) &+ p.outputZeroPoint
        return Int8(min(max(q, p.clampMin), p.clampMax))
    }
    /// `output[r, i] = a[r, i] + b[r, i]` for `r` in `rows`, `i` in 0..<columns, each operand with
    /// its own row stride (elements; columns contiguous: NHWC channel slices). The output may alias
    /// an input with the same stride.
    public static func run(a: UnsafePointer<Int8>, aRowStride: Int, b: UnsafePointer<Int8>, bRowStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputRowStride: Int,
                           columns: Int, rows: Range<Int>, parameters p: Parameters, isa: KernelISA = .best) {
        if rows.isEmpty || columns <= 0 { return }
        // Rows one after another in all three tensors: one long row, so the SIMD loops do not
        // restart (and mask a tail) at every row of a few dozen channels (residual adds).
        let count = rows.count * columns
        if aRowStride == columns, bRowStride == columns, outputRowStride == columns, rows.count > 1, count <= Int(Int32.max) {
            let start = rows.lowerBound * columns
            run(a: a + start, aRowStride: count, b: b + start, bRowStride: count, output: output + start,
                outputRowStride: count, columns: count, rows: 0..<1, parameters: p, isa: isa)
            return
        }
        let kernels = RowKernels<AddRows>.for(isa)
        if let addRows = kernels.rows {
            precondition(kernels.isa.isSupported, "add rows for \(kernels.isa.rawValue), which this CPU cannot run")
            var c = p.c
            addRows(a + rows.lowerBound * aRowStride, aRowStride, b + rows.lowerBound * bRowStride, bRowStride,
                    output + rows.lowerBound * outputRowStride, outputRowStride, Int32(columns), Int32(rows.count), &c)
            return
        }
        for r in rows {
            let pa = a + r * aRowStride, pb = b + r * bRowStride, po = output + r * outputRowStride
            for i in 0..<columns { po[i] = add(pa[i], pb[i], p) }
        }
    }
}
