// Integer-only LayerNorm over the channel vector of each token.
import MVKernelsC

/// LayerNorm of int8 tokens to int8 with no floating point at run time.
///
/// With `a` the int8 input codes of one token (C channels), the input zero point cancels and the
/// input scale only enters through eps: `(x − μ)/√(σ² + ε) = D / √(V + C²·ε/s_x²)` with
/// `D = C·a − Σa` and `V = C·Σa² − (Σa)²` (exact integers). Per token, exactly:
/// 1. `Σa`, `Σa²` (int32), `V` (int64);
/// 2. `W = V·4^j + E` with `E = round(C²·ε/s_x²·4^j)` and `j` (≤ 13) chosen at preparation so
///    `W < 2^62`; `r = max(1, round(√W))` (exact integer square root) ≈ 2^j·C·σ;
/// 3. one integer division: `F = round(2^P / r)`, `P = bitLength(r) + 29` (F ∈ [2^29, 2^30]);
/// 4. per channel: `n = (D·F + 2^(t−1)) >> t`, `t = P − j − 16` — the normalised value in Q16;
///    `y = (n·G_c + B_c) >> h_c` with `G_c ≈ γ_c/s_y · 2^(h_c − 16)` (|G_c| < 2^31) and
///    `B_c = round(β_c/s_y · 2^h_c) + 2^(h_c−1)` (round half up);
///    `q = clamp(y + z_y, −128, 127)`.
///
/// Error bound (asserted by the tests over C ∈ {1, 3, 64, 80, 96, 240, 1000}, scales, near-constant
/// rows): `|q − (γ·x̂ + β)/s_y − z_y| ≤ 0.5 + 0.02` output LSB where not saturated, `x̂` being the
/// float LayerNorm of the dequantised input (the 0.02 covers the rounded square root, ≤ 2^-(j+1)
/// relative for non-constant tokens, and the Q16 normalised value).
public enum IntegerLayerNorm {
    public struct Parameters: Sendable, Equatable {
        public var channels: Int
        /// `2·j`: the left shift of V before adding the eps term.
        public var varianceShift: Int32
        /// `E = round(C²·eps/inputScale²·4^j)`.
        public var epsilonTerm: UInt64
        /// Per-channel γ multipliers and right shifts, and β terms (with the rounding half folded in).
        public var gammaMultipliers: [Int32]
        public var shifts: [Int32]
        public var biases: [Int64]
        public var outputZeroPoint: Int32

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
            var gm = [Int32](), sh = [Int32](), bias = [Int64]()
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
                var h = 48
                var m: Int64 = 0
                if g != 0 {
                    let fp = NonlinearCheck.fixedPoint(Swift.abs(g), bits: 31)  // |g|·2^fp.shift ∈ [2^30, 2^31)
                    h = min(fp.shift + 16, 48)
                    m = Int64((Swift.abs(g) * NonlinearCheck.pow2(h - 16)).rounded(.toNearestOrAwayFromZero))
                    if m >= 1 << 31 { m >>= 1; h -= 1 }
                    if g < 0 { m = -m }
                }
                gm.append(Int32(m))
                sh.append(Int32(h))
                bias.append(Int64((b * NonlinearCheck.pow2(h)).rounded(.toNearestOrAwayFromZero)) + (1 << Int64(h - 1)))
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
            let nmax = Int64(integerSquareRoot(UInt64(c)) + 2) << 16  // bound on |n| (Q16)
            for i in 0..<c {
                let h = shifts[i], b = biases[i]
                try nonlinearRequire(h >= 1 && h <= 62, "LayerNorm shift out of 1…62")
                try nonlinearRequire(b > -(1 << 60) && b < 1 << 60, "LayerNorm bias out of range")
                let ymax = (nmax * Swift.abs(Int64(gammaMultipliers[i])) + Swift.abs(b)) >> Int64(h)
                try nonlinearRequire(ymax < 1 << 30, "LayerNorm channel \(i) output would overflow int32")
            }
            return self
        }
    }

    /// Per-token statistics → (normalising multiplier F, its right shift t).
    @inlinable @inline(__always)
    static func tokenFactor(sum: Int32, sumSquares: Int32, _ p: Parameters) -> (f: Int64, t: Int64) {
        let v = Int64(p.channels) &* Int64(sumSquares) &- Int64(sum) &* Int64(sum)  // ≥ 0
        let w = (UInt64(v) << UInt64(p.varianceShift)) &+ p.epsilonTerm
        let r = max(integerSquareRootRounded(w), 1)
        let pw = Int64(64 &- r.leadingZeroBitCount) &+ 29
        let f = ((Int64(1) << pw) &+ Int64(r >> 1)) / Int64(r)
        return (f, pw &- Int64(p.varianceShift >> 1) &- 16)
    }

    /// LayerNorm of `tokens` (token indices) of a `[tokens][channels]` int8 buffer with token stride
    /// `inputTokenStride` (elements; channels contiguous) into `output` with `outputTokenStride`.
    /// Disjoint token ranges may run concurrently.
    public static func run(input: UnsafePointer<Int8>, inputTokenStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputTokenStride: Int,
                           tokens: Range<Int>, parameters p: Parameters, isa: KernelISA = .best) {
        if tokens.isEmpty { return }
        let kernels = RowKernels<LayerNormRows>.for(isa)
        if let layerNormRows = kernels.rows {
            precondition(kernels.isa.isSupported, "LayerNorm rows for \(kernels.isa.rawValue), which this CPU cannot run")
            p.gammaMultipliers.withUnsafeBufferPointer { gm in
                p.shifts.withUnsafeBufferPointer { sh in
                    p.biases.withUnsafeBufferPointer { b in
                        var c = mv_layernorm_params(channels: Int32(p.channels), variance_shift: p.varianceShift,
                                                    epsilon_term: p.epsilonTerm, output_zero_point: p.outputZeroPoint,
                                                    gamma_multipliers: gm.baseAddress, shifts: sh.baseAddress,
                                                    biases: b.baseAddress)
                        layerNormRows(input + tokens.lowerBound * inputTokenStride, inputTokenStride,
                                      output + tokens.lowerBound * outputTokenStride, outputTokenStride,
                                      Int32(tokens.count), &c)
                    }
                }
            }
            return
        }
        p.gammaMultipliers.withUnsafeBufferPointer { gm in
            p.shifts.withUnsafeBufferPointer { sh in
                p.biases.withUnsafeBufferPointer { b in
                    for t in tokens {
                        referenceToken(input + t * inputTokenStride, output + t * outputTokenStride, p,
                                       gm.baseAddress!, sh.baseAddress!, b.baseAddress!)
                    }
                }
            }
        }
    }

    /// The portable specification of one token.
    @inlinable
    static func referenceToken(_ x: UnsafePointer<Int8>, _ out: UnsafeMutablePointer<Int8>, _ p: Parameters,
                               _ gm: UnsafePointer<Int32>, _ sh: UnsafePointer<Int32>, _ bias: UnsafePointer<Int64>) {
        let c = p.channels
        var sum: Int32 = 0, sq: Int32 = 0
        for i in 0..<c {
            let a = Int32(x[i])
            sum &+= a
            sq &+= a &* a
        }
        let (f, t) = tokenFactor(sum: sum, sumSquares: sq, p)
        let round: Int64 = 1 &<< (t &- 1)
        let c32 = Int32(c)
        let lo = -128 &- p.outputZeroPoint, hi = 127 &- p.outputZeroPoint
        for i in 0..<c {
            let d = c32 &* Int32(x[i]) &- sum
            let n = (Int64(d) &* f &+ round) >> t  // Q16, |n| < 2^23
            let y = (n &* Int64(gm[i]) &+ bias[i]) >> Int64(sh[i])
            let z = min(max(Int32(truncatingIfNeeded: y), lo), hi)
            out[i] = Int8(truncatingIfNeeded: z &+ p.outputZeroPoint)
        }
    }
}
