// Shared pieces of the integer non-linear kernels (softmax, LayerNorm, activation tables, add,
// pooling, resize):
//
// - `NonlinearParameterError`, thrown by every `…Parameters.make` for bad scales, zero points or
//   shapes, so a bad parameter never yields garbage silently;
// - `DeterministicMath`: exp, erf and tanh built only from IEEE +, −, ×, ÷ (no libm), used by the
//   parameter-preparation functions, so the tables and multipliers they produce are bit-identical
//   on every platform whatever its libm (Swift never contracts a·b + c into an FMA by itself);
// - small validated conversions from real scales to fixed point.
//
// Floating point appears here only for parameter preparation, never on an int8 path.

/// Why a non-linear kernel's parameters were rejected.
public struct NonlinearParameterError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "invalid kernel parameter: \(message)" }
}

@usableFromInline
enum NonlinearCheck {
    /// A positive finite scale, or throws naming `what`.
    static func scale(_ s: Double, _ what: String) throws -> Double {
        guard s.isFinite, s > 0 else { throw NonlinearParameterError("\(what) must be finite and positive, got \(s)") }
        return s
    }

    /// An int8 zero point (−128…127), or throws naming `what`.
    static func zeroPoint(_ z: Int32, _ what: String) throws -> Int32 {
        guard z >= -128, z <= 127 else { throw NonlinearParameterError("\(what) must be in −128…127, got \(z)") }
        return z
    }

    /// `2^e` exactly (for |e| ≤ 1000).
    static func pow2(_ e: Int) -> Double {
        if e >= -1022 { return Double(sign: .plus, exponent: e, significand: 1) }
        return Double(sign: .plus, exponent: e + 1000, significand: 1) * Double(sign: .plus, exponent: -1000, significand: 1)
    }

    /// `real ≈ m · 2^(−shift)` with `m ∈ [2^(bits−1), 2^bits)` rounded to nearest, for a positive
    /// finite `real`. The shift is what it has to be (may be negative); callers bound it.
    static func fixedPoint(_ real: Double, bits: Int) -> (m: Int64, shift: Int) {
        precondition(real > 0 && real.isFinite && bits >= 2 && bits <= 62)
        let e = Int(real.exponent)  // real ∈ [2^e, 2^(e+1))
        var shift = bits - 1 - e
        var m = (real * pow2(shift)).rounded(.toNearestOrAwayFromZero)
        if m >= pow2(bits) {
            m /= 2
            shift -= 1
        }
        return (Int64(m), shift)
    }
}

/// exp, erf, tanh, sigmoid from IEEE basic operations only, so parameter preparation gives the same
/// bits on every platform. Accuracy: a few ulp (far below any int8 rounding decision except exact
/// ties, which the tests treat as such).
public enum DeterministicMath {
    // ln 2 split so that k·ln2Hi is exact for |k| < 2^20 (Cody–Waite range reduction).
    private static let ln2Hi: Double = 6.93147180369123816490e-01
    private static let ln2Lo: Double = 1.90821492927058770002e-10
    private static let log2e: Double = 1.44269504088896338700e+00

    /// e^x.
    public static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x > 709.782712893384 { return .infinity }
        if x < -745.2 { return 0 }
        let k = (x * log2e).rounded(.toNearestOrEven)
        let r = (x - k * ln2Hi) - k * ln2Lo  // |r| ≤ 0.3466
        // Taylor series to r^16/16! (< 1e-19 relative for |r| ≤ 0.35), Horner from the top.
        var p = 1.0
        var n = 16.0
        while n >= 1 {
            p = 1 + p * r / n
            n -= 1
        }
        var ki = Int(k)
        var result = p
        // Scale by 2^k in steps that stay normal where the result is.
        while ki > 1000 { result *= NonlinearCheck.pow2(1000); ki -= 1000 }
        while ki < -1000 { result *= NonlinearCheck.pow2(-1000); ki += 1000 }
        return result * NonlinearCheck.pow2(ki)
    }

    /// The logistic function 1 / (1 + e^(−x)).
    public static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + exp(-x)) }
        let e = exp(x)
        return e / (1 + e)
    }

    /// tanh(x).
    public static func tanh(_ x: Double) -> Double {
        let a = Swift.abs(x)
        if a > 20 { return x > 0 ? 1 : -1 }
        if a < 1e-3 {
            let x2 = x * x
            return x * (1 - x2 / 3 * (1 - 0.4 * x2))
        }
        let e = exp(-2 * a)
        let t = (1 - e) / (1 + e)
        return x < 0 ? -t : t
    }

    /// erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)) (all terms positive: no
    /// cancellation); ±1 beyond |x| = 6 (where 1 − erf < 2.2e-17).
    public static func erf(_ x: Double) -> Double {
        if x.isNaN { return x }
        let a = Swift.abs(x)
        if a >= 6 { return x > 0 ? 1 : -1 }
        let twoX2 = 2 * a * a
        var term = a
        var sum = a
        var n = 1.0
        while term > sum * 1e-18 {
            term = term * twoX2 / (2 * n + 1)
            sum += term
            n += 1
        }
        let twoOverSqrtPi = 1.12837916709551257390
        let v = min(1.0, twoOverSqrtPi * exp(-a * a) * sum)
        return x < 0 ? -v : v
    }
}

/// The number of significant bits of `x` (0 for 0).
@inline(__always)
@usableFromInline
func nlBitLength(_ x: UInt64) -> Int { 64 &- x.leadingZeroBitCount }

/// Throws `NonlinearParameterError(message)` unless `condition` holds: parameters restored from a
/// model file are checked with this, so a crafted file gives an error instead of a trap.
@inlinable
public func nonlinearRequire(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw NonlinearParameterError(message()) }
}
