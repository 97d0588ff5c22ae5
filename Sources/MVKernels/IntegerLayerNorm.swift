// Integer-only LayerNorm over the channel vector of each token.
import MVKernelsC

/// LayerNorm of int8 tokens to int8 with no floating point at run time, in 32-bit lanes.
///
/// With `a` the int8 input codes of one token (C channels), the input zero point cancels and the
/// input scale only enters through eps: `(x − μ)/√(σ² + ε) = D / √(V + C²·ε/s_x²)` with
/// `D = C·a − Σa` and `V = C·Σa² − (Σa)²` (exact integers). Per token, exactly (`.mvq` version 4):
/// 1. `Σa`, `Σa²` (int32), `V` (int64);
/// 2. `W = V·4^j + E` with `E = round(C²·ε/s_x²·4^j)` and `j` (≤ 13) chosen at preparation so
///    `W < 2^62`;
/// 3. `y ≈ 2^46/√m`, the reciprocal square root of W's mantissa `m = W·2^(32−2e)` ∈ [2^30, 2^32)
///    (`e = ⌈bitLength(W)/2⌉`, the shift truncating when right): a seed from m's top 8 bits
///    (`reciprocalSquareRootSeeds`), then two Newton steps in unsigned 64-bit fixed point,
///    `z = ((y·y) >> 31)·m`, `y ← (y·((3·2^61 − z) >> 31)) >> 31` (relative error ≤ 2^−27);
///    `F = y·2^(j+q−e−14)` ≈ `2^(j+q+16)/√W` (F = 0 when W = 0);
/// 4. `K = round(C·F)`, `L = round(Σa·F) − 2^15` (half up), both modulo 2^32 (int32): per channel
///    `n = (a·K − L) >> 16` in wrapping int32 ≈ `⌊(D·F + 2^15)/2^16⌋`, the normalised value in
///    Q`q` — exact because `|D·F| < 2^31 − 2^17` (`|D| ≤ √V·√(C−1)`, and `q = normShift`, from C
///    alone, keeps `2^q·√(C−1) ≤ 32760`, so `|n| < 2^15`, a 16-bit lane);
/// 5. `y_c = (n·G_c + B_c) >> h_c` in int32, `G_c ≈ γ_c/s_y · 2^(h_c − q)` with `|G_c| ≤ 32767`
///    (one pairwise 16-bit multiply), `B_c = round(β_c/s_y · 2^h_c) + 2^(h_c−1)`, `|B_c| ≤ 2^29`
///    as made (up to 2^30 keeps `|n·G_c + B_c| < 2^31`);
///    `out = clamp(y + z_y, −128, 127)`.
///
/// No division or square root per token, no 64-bit lane per channel (the specification before
/// version 4 took an exact integer square root and a division per token and normalised in Q16 with
/// 64-bit products: ≤ 0.52 LSB, against the bound below).
///
/// Error bound (asserted by the tests over C ∈ {1, 3, 64, 80, 96, 240, 1000}, scales, near-constant
/// rows), with `g_c = γ_c/s_y` and `N = 2^q·√(C−1) + 1` (the largest |n|): `|out − (γ·x̂ + β)/s_y
/// − z_y| ≤ 0.5 + 0.51·|g_c|·2^−q + N·2^−(h_c+1) + 2^−(h_c+1)` output LSB where not saturated, `x̂`
/// being the float LayerNorm of the dequantised input: n's rounding (with K's, L's and the
/// reciprocal's) times g, G_c's rounding times |n|, B_c's rounding, the final rounding. For the
/// LayerNorms of the MobileViTs here (|g| ≤ 60, C = 64–240, q = 11–12) the excess over 0.5 is
/// ≤ 0.04 LSB.
public enum IntegerLayerNorm {
    /// Seeds of the reciprocal square root: `8·⌊√(2^63/(2i + 129))⌋` ≈ `2^34/√(i + 64.5)` for the
    /// mantissas with top 8 bits `i + 64` (relative error ≤ 0.4%; all below 2^31).
    public static let reciprocalSquareRootSeeds: [UInt32] = (0..<192).map {
        UInt32(integerSquareRoot((UInt64(1) << 63) / UInt64(2 * $0 + 129)) << 3)
    }

    /// `q`: the fractional bits of the normalised value for `channels`, the largest (≤ 14) with
    /// `2^q·√(C − 1) ≤ 32760`, so that `|n| < 2^15 − 6` whatever the token (`|x̂| ≤ √(C − 1)`).
    public static func normShift(channels c: Int) -> Int32 {
        var q: Int32 = 14
        while q > 0 && (UInt64(1) << UInt64(2 * q)) * UInt64(max(c - 1, 0)) > 32760 * 32760 { q -= 1 }
        return q
    }

    public struct Parameters: Sendable, Equatable {
        public var channels: Int
        /// `2·j`: the left shift of V before adding the eps term.
        public var varianceShift: Int32
        /// `E = round(C²·eps/inputScale²·4^j)`.
        public var epsilonTerm: UInt64
        /// Per-channel γ multipliers (|G| ≤ 32767) and right shifts (1…30), and β terms (with the
        /// rounding half folded in, |B| ≤ 2^30).
        public var gammaMultipliers: [Int32]
        public var shifts: [Int32]
        public var biases: [Int32]
        public var outputZeroPoint: Int32

        /// `q`, the fractional bits of the normalised value (from `channels`).
        public var normShift: Int32 { IntegerLayerNorm.normShift(channels: channels) }

        /// - Parameters: scales > 0, zero points in −128…127, `gamma.count == beta.count` in 1…16384,
        ///   `eps ≥ 0`, every `|γ_c| / outputScale < 2^20` and finite `β`.
        public static func make(inputScale: Double, inputZeroPoint: Int32, outputScale: Double,
                                outputZeroPoint: Int32, gamma: [Double], beta: [Double],
                                eps: Double) throws -> Parameters {
            _ = try NonlinearCheck.scale(inputScale, "LayerNorm input scale")
            _ = try NonlinearCheck.scale(outputScale, "LayerNorm output scale")
            _ = try NonlinearCheck.zeroPoint(inputZeroPoint, "LayerNorm input zero point")
            _ = try NonlinearCheck.zeroPoint(outputZeroPoint, "LayerNorm output zero point")
            let c = gamma.count
            guard c >= 1, c <= 16384 else { throw NonlinearParameterError("LayerNorm channel count must be 1…16384, got \(c)") }
            guard beta.count == c else { throw NonlinearParameterError("LayerNorm gamma has \(c) entries, beta \(beta.count)") }
            guard eps.isFinite, eps >= 0 else { throw NonlinearParameterError("LayerNorm eps must be finite and ≥ 0, got \(eps)") }
            // V ≤ C²·127.5² < C²·2^14. Largest j ≤ 13 with (Vmax + e')·4^j < 2^61.
            let cd = Double(c)
            let epsUnits = cd * cd * eps / (inputScale * inputScale)  // E at j = 0
            guard epsUnits.isFinite else { throw NonlinearParameterError("LayerNorm eps / inputScale² overflows") }
            let vmax = cd * cd * 16384
            var j = 13
            while j > 0 && (vmax + epsUnits) * NonlinearCheck.pow2(2 * j) >= NonlinearCheck.pow2(61) { j -= 1 }
            guard (vmax + epsUnits) * NonlinearCheck.pow2(2 * j) < NonlinearCheck.pow2(61) else {
                throw NonlinearParameterError("LayerNorm eps \(eps) is too large for input scale \(inputScale)")
            }
            let e = (epsUnits * NonlinearCheck.pow2(2 * j)).rounded(.toNearestOrAwayFromZero)
            let q = Int(IntegerLayerNorm.normShift(channels: c))
            var gm = [Int32](), sh = [Int32](), bias = [Int32]()
            gm.reserveCapacity(c); sh.reserveCapacity(c); bias.reserveCapacity(c)
            let nmax = cd.squareRoot() + 1  // |x̂| ≤ √(C−1)
            for i in 0..<c {
                let g = gamma[i] / outputScale
                var b = beta[i] / outputScale
                guard g.isFinite, Swift.abs(g) < NonlinearCheck.pow2(20) else {
                    throw NonlinearParameterError("LayerNorm |gamma[\(i)]| / outputScale must be < 2^20, got \(g)")
                }
                guard b.isFinite else { throw NonlinearParameterError("LayerNorm beta[\(i)] is not finite") }
                // Beyond this the output saturates whatever x̂ is; clamping keeps B in range.
                let blim = Swift.abs(g) * nmax + 512
                b = min(max(b, -blim), blim)
                // The largest shift whose multiplier fits 16 signed bits and whose bias stays within
                // 2^29 (|b| < 2^28 here, so h = 1 always fits the bias).
                func multiplier(_ h: Int) -> Double { (Swift.abs(g) * NonlinearCheck.pow2(h - q)).rounded(.toNearestOrAwayFromZero) }
                var h = 30
                while h > 1 && (multiplier(h) > 32767 || Swift.abs(b) * NonlinearCheck.pow2(h) + NonlinearCheck.pow2(h) > NonlinearCheck.pow2(29)) {
                    h -= 1
                }
                let m = multiplier(h)
                guard m <= 32767 else {
                    throw NonlinearParameterError("LayerNorm |gamma[\(i)]| / outputScale too large for 16-bit multipliers, got \(g)")
                }
                gm.append(Int32(g < 0 ? -m : m))
                sh.append(Int32(h))
                bias.append(Int32((b * NonlinearCheck.pow2(h)).rounded(.toNearestOrAwayFromZero)) + (1 << Int32(h - 1)))
            }
            return Parameters(channels: c, varianceShift: Int32(2 * j), epsilonTerm: UInt64(e),
                              gammaMultipliers: gm, shifts: sh, biases: bias, outputZeroPoint: outputZeroPoint)
        }

        /// These parameters after checking that no value can overflow the fixed-point pipeline (for
        /// parameters restored from a model file; a violated precondition traps rather than
        /// computing garbage). `make` always produces valid parameters.
        public func validated() throws -> Parameters {
            let c = channels
            try nonlinearRequire(c >= 1 && c <= 16384, "LayerNorm channel count must be 1…16384")
            try nonlinearRequire(gammaMultipliers.count == c && shifts.count == c && biases.count == c,
                         "LayerNorm parameter arrays must have one entry per channel")
            try nonlinearRequire(varianceShift >= 0 && varianceShift <= 26 && varianceShift % 2 == 0,
                         "LayerNorm variance shift must be even and in 0…26")
            try nonlinearRequire(outputZeroPoint >= -128 && outputZeroPoint <= 127, "LayerNorm output zero point out of int8 range")
            let vmax = UInt64(c * c) << 14  // ≥ C·Σa² − (Σa)²
            try nonlinearRequire(vmax < (1 << 61) >> UInt64(varianceShift) && epsilonTerm < 1 << 61,
                         "LayerNorm variance term would overflow 62 bits")
            // |n| ≤ 32762 whatever W is, so |n·G| < 2^30 − 2^14 and with |B| ≤ 2^30 the sum fits int32.
            for i in 0..<c {
                try nonlinearRequire(Swift.abs(gammaMultipliers[i]) <= 32767, "LayerNorm multiplier out of −32767…32767")
                try nonlinearRequire(shifts[i] >= 1 && shifts[i] <= 30, "LayerNorm shift out of 1…30")
                try nonlinearRequire(Swift.abs(biases[i]) <= 1 << 30, "LayerNorm bias out of range")
            }
            return self
        }
    }

    /// Step 3's reciprocal square root of `w` (1…2^62): `y ≈ 2^46/√m` (in [2^30 − 64, 2^31]) of the
    /// mantissa `m = w·2^(32−2e)`, and `e`; so `1/√w ≈ y·2^(−30−e)`.
    @inlinable @inline(__always)
    public static func reciprocalSquareRoot(_ w: UInt64) -> (y: UInt64, e: Int) {
        let e = (65 &- w.leadingZeroBitCount) >> 1  // ⌈bitLength/2⌉
        let m = 2 &* e <= 32 ? w << UInt64(32 &- 2 &* e) : w >> UInt64(2 &* e &- 32)  // [2^30, 2^32)
        var y = UInt64(reciprocalSquareRootSeeds[Int(m >> 24) &- 64])
        for _ in 0..<2 {
            let z = ((y &* y) >> 31) &* m
            y = (y &* (((3 << 61) &- z) >> 31)) >> 31
        }
        return (y, e)
    }

    /// Per-token statistics → `(K, L)`: `n = (a·K − L) >> 16` (steps 1–4).
    @inlinable @inline(__always)
    static func tokenFactor(sum: Int32, sumSquares: Int32, _ p: Parameters, normShift q: Int32) -> (k: Int32, l: Int32) {
        let v = Int64(p.channels) &* Int64(sumSquares) &- Int64(sum) &* Int64(sum)  // ≥ 0
        let w = (UInt64(v) << UInt64(p.varianceShift)) &+ p.epsilonTerm
        if w == 0 { return (0, -32768) }
        let (y, e) = reciprocalSquareRoot(w)
        // K = round(C·F), L = round(Σa·F) − 2^15 with F = y·2^sh unrounded (rounding F first would
        // cost |D|/2 units of n·2^16: 2 units of n at C = 1000).
        let sh = Int(p.varianceShift >> 1) &+ Int(q) &- e &- 14  // −38…12
        func scaled(_ v: Int64) -> Int64 { sh >= 0 ? v &<< Int64(sh) : (v &+ (1 << Int64(-sh &- 1))) >> Int64(-sh) }
        return (Int32(truncatingIfNeeded: scaled(Int64(p.channels) &* Int64(y))),
                Int32(truncatingIfNeeded: scaled(Int64(sum) &* Int64(y)) &- 32768))
    }

    /// LayerNorm of `tokens` (token indices) of a `[tokens][channels]` int8 buffer with token stride
    /// `inputTokenStride` (elements; channels contiguous) into `output` with `outputTokenStride`.
    /// Disjoint token ranges may run concurrently.
    public static func run(input: UnsafePointer<Int8>, inputTokenStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputTokenStride: Int,
                           tokens: Range<Int>, parameters p: Parameters, isa: KernelISA = .best) {
        if tokens.isEmpty { return }
        let q = p.normShift  // once per call, not per token
        let kernels = RowKernels<LayerNormRows>.for(isa)
        if let layerNormRows = kernels.rows {
            precondition(kernels.isa.isSupported, "LayerNorm rows for \(kernels.isa.rawValue), which this CPU cannot run")
            p.gammaMultipliers.withUnsafeBufferPointer { gm in
                p.shifts.withUnsafeBufferPointer { sh in
                    p.biases.withUnsafeBufferPointer { b in
                        reciprocalSquareRootSeeds.withUnsafeBufferPointer { seeds in
                            var c = mv_layernorm_params(channels: Int32(p.channels), variance_shift: p.varianceShift,
                                                        norm_shift: q, epsilon_term: p.epsilonTerm,
                                                        output_zero_point: p.outputZeroPoint,
                                                        gamma_multipliers: gm.baseAddress, shifts: sh.baseAddress,
                                                        biases: b.baseAddress, rsqrt_seeds: seeds.baseAddress)
                            layerNormRows(input + tokens.lowerBound * inputTokenStride, inputTokenStride,
                                          output + tokens.lowerBound * outputTokenStride, outputTokenStride,
                                          Int32(tokens.count), &c)
                        }
                    }
                }
            }
            return
        }
        p.gammaMultipliers.withUnsafeBufferPointer { gm in
            p.shifts.withUnsafeBufferPointer { sh in
                p.biases.withUnsafeBufferPointer { b in
                    for t in tokens {
                        referenceToken(input + t * inputTokenStride, output + t * outputTokenStride, p, q,
                                       gm.baseAddress!, sh.baseAddress!, b.baseAddress!)
                    }
                }
            }
        }
    }

    /// The portable specification of one token.
    @inlinable
    static func referenceToken(_ x: UnsafePointer<Int8>, _ out: UnsafeMutablePointer<Int8>, _ p: Parameters, _ q: Int32,
                               _ gm: UnsafePointer<Int32>, _ sh: UnsafePointer<Int32>, _ bias: UnsafePointer<Int32>) {
        let c = p.channels
        var sum: Int32 = 0, sq: Int32 = 0
        for i in 0..<c {
            let a = Int32(x[i])
            sum &+= a
            sq &+= a &* a
        }
        let (k, l) = tokenFactor(sum: sum, sumSquares: sq, p, normShift: q)
        let lo = -128 &- p.outputZeroPoint, hi = 127 &- p.outputZeroPoint
        for i in 0..<c {
            let n = (Int32(x[i]) &* k &- l) >> 16  // Q(normShift), |n| < 2^15
            let y = (n &* gm[i] &+ bias[i]) >> sh[i]
            out[i] = Int8(truncatingIfNeeded: min(max(y, lo), hi) &+ p.outputZeroPoint)
        }
    }
}
