// Element-wise addition of two int8 tensors with different quantisations (residual connections).
import MVKernelsC

/// `out = clamp(round((s_a·(a − z_a) + s_b·(b − z_b)) / s_y) + z_y, clampMin, clampMax)`, TFLite
/// style in fixed point:
/// `a' = requantize((a − z_a) << 20, M_a, h_a)`, `b' = requantize((b − z_b) << 20, M_b, h_b)` with
/// `M_a·2^(−31−h_a) ≈ s_a / (2·max(s_a, s_b))` (≤ ½, so the sum fits int32), then
/// `out = clamp(requantize(a' + b', M_y, h_y) + z_y)` with `M_y·2^(−31−h_y) ≈ 2·max(s_a, s_b) / (2^20·s_y)`
/// (`requantize` of Requantization.swift: rounding half up, identical on every ISA).
///
/// Error bound (asserted by the tests): ≤ 0.5 + 0.01 output LSB against the exact real sum wherever
/// the output is not clamped, for scale ratios s_in/s_y up to 2^6.
public enum AddInt8 {
    public static let leftShift: Int32 = 20

    public struct Parameters: Sendable, Equatable {
        public var inputZeroPointA: Int32, inputZeroPointB: Int32
        public var multiplierA: Int32, shiftA: Int32
        public var multiplierB: Int32, shiftB: Int32
        public var outputMultiplier: Int32, outputShift: Int32
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
            let twiceMax = 2 * max(sa, sb)
            let qa = quantizeMultiplier(sa / twiceMax)
            let qb = quantizeMultiplier(sb / twiceMax)
            let realOut = twiceMax / (Double(1 << leftShift) * sy)
            guard realOut.isFinite, realOut > 0, realOut < NonlinearCheck.pow2(31) else {
                throw NonlinearParameterError("add scale ratio out of range (output scale \(sy))")
            }
            let qy = quantizeMultiplier(realOut)
            guard qa.multiplier > 0, qb.multiplier > 0, qy.multiplier > 0 else {
                throw NonlinearParameterError("add input scales too different to represent (\(sa), \(sb))")
            }
            return Parameters(inputZeroPointA: za, inputZeroPointB: zb,
                              multiplierA: qa.multiplier, shiftA: qa.shift,
                              multiplierB: qb.multiplier, shiftB: qb.shift,
                              outputMultiplier: qy.multiplier, outputShift: qy.shift,
                              outputZeroPoint: zy, clampMin: clampMin, clampMax: clampMax)
        }

        /// These parameters after range checks (for parameters restored from a model file; a
        /// violated precondition traps rather than computing garbage). `make` always produces
        /// valid parameters.
        public func validated() throws -> Parameters {
            for z in [inputZeroPointA, inputZeroPointB, outputZeroPoint] {
                try nonlinearRequire(z >= -128 && z <= 127, "add zero point out of int8 range")
            }
            try nonlinearRequire(multiplierA >= 0 && multiplierB >= 0 && outputMultiplier >= 0, "add multipliers must be ≥ 0")
            // Inputs: real multipliers < 1 (shift ≥ 0) keep |a'| + |b'| < 2^29.
            try nonlinearRequire(shiftA >= 0 && shiftA <= 62 && shiftB >= 0 && shiftB <= 62, "add input shifts must be in 0…62")
            try nonlinearRequire(outputShift >= -31 && outputShift <= 62, "add output shift must be in −31…62")
            try nonlinearRequire(clampMin >= -128 && clampMax <= 127 && clampMin <= clampMax, "add clamp range invalid")
            return self
        }

        var c: mv_add_params {
            mv_add_params(zero_point_a: inputZeroPointA, multiplier_a: multiplierA, shift_a: shiftA,
                          zero_point_b: inputZeroPointB, multiplier_b: multiplierB, shift_b: shiftB,
                          output_multiplier: outputMultiplier, output_shift: outputShift,
                          output_zero_point: outputZeroPoint, clamp_min: clampMin, clamp_max: clampMax)
        }
    }

    /// One element, the specification.
    @inlinable @inline(__always)
    public static func add(_ a: Int8, _ b: Int8, _ p: Parameters) -> Int8 {
        let xa = (Int32(a) &- p.inputZeroPointA) << leftShift
        let xb = (Int32(b) &- p.inputZeroPointB) << leftShift
        let s = requantize(xa, multiplier: p.multiplierA, shift: p.shiftA)
            &+ requantize(xb, multiplier: p.multiplierB, shift: p.shiftB)
        return requantizeToInt8(s, multiplier: p.outputMultiplier, shift: p.outputShift,
                                zeroPoint: p.outputZeroPoint, clampMin: p.clampMin, clampMax: p.clampMax)
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
