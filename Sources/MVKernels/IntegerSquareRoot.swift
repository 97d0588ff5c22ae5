// Exact integer square roots (the integer LayerNorm's reciprocal-square-root seeds are made with
// it). Both results are mathematically defined, so every correct implementation agrees bit for bit.

/// ⌊√x⌋ for any 64-bit `x`, by Newton's iteration from an over-estimate (monotonically
/// decreasing, so it stops at the floor exactly).
@inlinable
public func integerSquareRoot(_ x: UInt64) -> UInt64 {
    if x < 2 { return x }
    // Start at 2^⌈bits/2⌉ ≥ √x.
    let bits = 64 &- x.leadingZeroBitCount
    var y: UInt64 = 1 << UInt64((bits &+ 1) / 2)
    while true {
        let next = (y &+ x / y) >> 1
        if next >= y { return y }
        y = next
    }
}

/// √x rounded to the nearest integer (ties cannot occur: (r + ½)² is never an integer).
@inlinable
public func integerSquareRootRounded(_ x: UInt64) -> UInt64 {
    let r = integerSquareRoot(x)
    // (r + ½)² = r² + r + ¼, so round up exactly when x − r² > r.
    return x &- r &* r > r ? r &+ 1 : r
}
