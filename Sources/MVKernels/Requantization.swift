// Fixed-point requantisation shared by every int8 kernel (GEMM, convolutions, and the integer
// non-linear kernels). The semantics are exact and identical on every ISA:
//
//   x = shift < 0 ? saturate32(acc << -shift) : acc
//   y = Int32((Int64(x) * Int64(multiplier) + 2^30) >> 31)      // round half up (NEON vqrdmulh)
//   z = shift > 0 ? (y >> shift) + ((y >> (shift - 1)) & 1)     // round half up (NEON vrshl)
//                 : y
//   out = clamp(z + outputZeroPoint, clampMin, clampMax)        // computed without overflow
//   out = lut?[Int(out) + 128] ?? out
//
// `quantizeMultiplier` is the only place with floating point: it runs when parameters are built,
// never in an int8 path.

/// Splits a positive real scale into a Q31 multiplier and a shift so that
/// `real ≈ multiplier · 2^(−31 − shift)`.
///
/// `real = m · 2^(−shift)` with `m ∈ [0.5, 1)`; `multiplier = round(m · 2^31)` (when that rounds to
/// 2^31 it is halved and `shift` decremented). `shift > 0` is a right shift, `shift < 0` a left
/// shift (for `real ≥ 1`). The shift is clamped to `[−31, 62]`; `real == 0` (or below the clamp's
/// range, or not finite and non-positive) gives `(0, 0)`.
public func quantizeMultiplier(_ real: Double) -> (multiplier: Int32, shift: Int32) {
    guard real > 0, real.isFinite else { return (0, 0) }
    // real = significand · 2^exponent with significand in [1, 2): m = significand / 2.
    var m = real.significand / 2
    var shift = -(Int(real.exponent) + 1)
    var q = (m * 2147483648.0).rounded(.toNearestOrAwayFromZero)
    if q >= 2147483648.0 {
        q /= 2
        shift -= 1
    }
    if shift < -31 {
        // Too large to represent: saturate to the largest representable scale.
        return (Int32.max, -31)
    }
    if shift > 62 {
        // Too small: scale the multiplier down (it may become 0) so the shift fits.
        m = q / Double(1 << min(shift - 62, 62))
        q = m.rounded(.toNearestOrAwayFromZero)
        shift = 62
        if q <= 0 { return (0, 0) }
    }
    return (Int32(q), Int32(shift))
}

/// The real scale a `(multiplier, shift)` pair represents: `multiplier · 2^(−31 − shift)`.
/// For tests and diagnostics (floating point; not for int8 paths).
public func dequantizeMultiplier(multiplier: Int32, shift: Int32) -> Double {
    var v = Double(multiplier)
    var e = -31 - Int(shift)
    while e > 0 { v *= 2; e -= 1 }
    while e < 0 { v /= 2; e += 1 }
    return v
}

/// Fixed-point rescale of an int32 accumulator (see the file header): saturating left shift for
/// negative `shift`, rounding doubling high multiply, rounding right shift for positive `shift`.
/// `multiplier` must be ≥ 0 and `shift` in `[−31, 62]`. Returns `z` (before the output zero point).
@inlinable @inline(__always)
public func requantize(_ acc: Int32, multiplier: Int32, shift: Int32) -> Int32 {
    var x = acc
    if shift < 0 {
        let wide = Int64(acc) << Int64(-shift)
        x = Int32(truncatingIfNeeded: min(max(wide, Int64(Int32.min)), Int64(Int32.max)))
    }
    let y = Int32(truncatingIfNeeded: (Int64(x) &* Int64(multiplier) &+ (1 << 30)) >> 31)
    if shift > 0 {
        // Swift's `>>` on Int32 is a "smart shift": shifts ≥ 32 give the sign, like Int64 would.
        return (y >> shift) &+ ((y >> (shift &- 1)) & 1)
    }
    return y
}

/// `clamp(z + zeroPoint, clampMin, clampMax)` computed exactly (no Int32 overflow).
@inlinable @inline(__always)
public func addZeroPointAndClamp(_ z: Int32, zeroPoint: Int32, clampMin: Int32, clampMax: Int32) -> Int32 {
    let lo = clampMin &- zeroPoint
    let hi = clampMax &- zeroPoint
    return min(max(z, lo), hi) &+ zeroPoint
}

/// Full output stage for one value: requantise, add the output zero point, clamp, to Int8.
@inlinable @inline(__always)
public func requantizeToInt8(
    _ acc: Int32, multiplier: Int32, shift: Int32,
    zeroPoint: Int32, clampMin: Int32 = -128, clampMax: Int32 = 127
) -> Int8 {
    let z = requantize(acc, multiplier: multiplier, shift: shift)
    return Int8(truncatingIfNeeded: addZeroPointAndClamp(z, zeroPoint: zeroPoint, clampMin: clampMin, clampMax: clampMax))
}

/// Per-output-channel (or one shared) requantisation multipliers and shifts.
public struct RequantizationParameters: Sendable {
    /// One entry per channel, or a single entry shared by all channels.
    public var multipliers: [Int32]
    public var shifts: [Int32]

    public init(multipliers: [Int32], shifts: [Int32]) {
        precondition(multipliers.count == shifts.count && !multipliers.isEmpty)
        for i in 0..<multipliers.count {
            precondition(multipliers[i] >= 0, "requantisation multiplier must be non-negative")
            precondition(shifts[i] >= -31 && shifts[i] <= 62, "requantisation shift out of [-31, 62]")
        }
        self.multipliers = multipliers
        self.shifts = shifts
    }

    /// One multiplier/shift pair shared by every channel.
    public init(multiplier: Int32, shift: Int32) {
        self.init(multipliers: [multiplier], shifts: [shift])
    }

    /// From real scales (`input_scale · weight_scale[c] / output_scale`), one per channel.
    public init(realScales: [Double]) {
        var m = [Int32](), s = [Int32]()
        m.reserveCapacity(realScales.count)
        s.reserveCapacity(realScales.count)
        for r in realScales {
            let q = quantizeMultiplier(r)
            m.append(q.multiplier)
            s.append(q.shift)
        }
        self.init(multipliers: m, shifts: s)
    }

    /// True when one pair serves every channel.
    public var isShared: Bool { multipliers.count == 1 }

    /// The pair for channel `c` (the shared pair when `isShared`).
    @inlinable
    public func pair(_ c: Int) -> (multiplier: Int32, shift: Int32) {
        let i = multipliers.count == 1 ? 0 : c
        return (multipliers[i], shifts[i])
    }
}
