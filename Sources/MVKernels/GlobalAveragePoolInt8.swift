// Global average pooling of an NHWC int8 image to one int8 value per channel.

/// `out[c] = clamp(round(s_x·(mean_hw q[h, w, c] − z_x)/s_y) + z_y)` as
/// `requantize((Σ q − z_x·H·W) << L, M, h) + z_y` with int32 sums, `L` the largest pre-shift that
/// keeps `255·H·W·2^L < 2^31`, and one fixed-point multiplier `M·2^(−31−h) ≈ s_x/(s_y·H·W·2^L)`
/// (1/(H·W) folded in).
///
/// Error bound (asserted): ≤ 0.5 + 2^-(L+1) output LSB where not clamped (≤ 0.5 + 2^-8 for any
/// H·W ≤ 2^14).
public enum GlobalAveragePoolInt8 {
    public struct Parameters: Sendable, Equatable {
        public var pixelCount: Int
        public var inputZeroPoint: Int32
        public var preShift: Int32
        public var multiplier: Int32, shift: Int32
        public var outputZeroPoint: Int32

        /// `pixelCount = H·W` in 1…2^23.
        public static func make(inputScale: Double, inputZeroPoint: Int32, outputScale: Double,
                                outputZeroPoint: Int32, pixelCount: Int) throws -> Parameters {
            let sx = try NonlinearCheck.scale(inputScale, "pool input scale")
            let sy = try NonlinearCheck.scale(outputScale, "pool output scale")
            let zx = try NonlinearCheck.zeroPoint(inputZeroPoint, "pool input zero point")
            let zy = try NonlinearCheck.zeroPoint(outputZeroPoint, "pool output zero point")
            guard pixelCount >= 1, pixelCount <= 1 << 23 else {
                throw NonlinearParameterError("pool pixel count must be 1…2^23, got \(pixelCount)")
            }
            let maxAbs = UInt64(255 * pixelCount)
            let l = 31 - nlBitLength(maxAbs)  // maxAbs·2^l < 2^31
            let real = sx / (sy * Double(pixelCount) * NonlinearCheck.pow2(l))
            guard real.isFinite, real < NonlinearCheck.pow2(31) else {
                throw NonlinearParameterError("pool scale ratio \(sx)/\(sy) out of range")
            }
            let q = quantizeMultiplier(real)
            guard q.multiplier > 0 else { throw NonlinearParameterError("pool scale ratio \(sx)/\(sy) too small") }
            return Parameters(pixelCount: pixelCount, inputZeroPoint: zx, preShift: Int32(l),
                              multiplier: q.multiplier, shift: q.shift, outputZeroPoint: zy)
        }

        /// These parameters after range checks (for parameters restored from a model file; a
        /// violated precondition traps rather than computing garbage): `(Σq − z_x·H·W) << preShift`
        /// must fit int32. `make` always produces valid parameters.
        public func validated() throws -> Parameters {
            try nonlinearRequire(pixelCount >= 1 && pixelCount <= 1 << 23, "pool pixel count must be 1…2^23")
            try nonlinearRequire(inputZeroPoint >= -128 && inputZeroPoint <= 127 && outputZeroPoint >= -128 && outputZeroPoint <= 127,
                         "pool zero point out of int8 range")
            try nonlinearRequire(preShift >= 0 && preShift < 31 && (255 * pixelCount) << Int(preShift) < 1 << 31,
                         "pool pre-shift overflows int32")
            try nonlinearRequire(multiplier >= 0 && shift >= -31 && shift <= 62, "pool multiplier/shift out of range")
            return self
        }
    }

    /// Int32 scratch elements for `channels` channels.
    public static func scratchCount(channels: Int) -> Int { max(channels, 1) }

    /// Pools channels `channels` (a range of channel indices; the executor may split it) of one image
    /// whose pixel `i` (row-major over H·W = `parameters.pixelCount`) starts at
    /// `input + (i / width)·rowStride + (i % width)·pixelStride`, writing `output[c]` for each `c`.
    /// `scratch` holds `channels.count` Int32 values.
    public static func run(input: UnsafePointer<Int8>, width: Int, rowStride: Int, pixelStride: Int,
                           output: UnsafeMutablePointer<Int8>, channels: Range<Int>,
                           parameters p: Parameters, scratch: UnsafeMutablePointer<Int32>) {
        precondition(width >= 1 && p.pixelCount % width == 0, "pixel count must be a multiple of the width")
        let n = channels.count
        if n <= 0 { return }
        let height = p.pixelCount / width
        scratch.initialize(repeating: 0, count: n)
        for y in 0..<height {
            for x in 0..<width {
                let src = input + y * rowStride + x * pixelStride + channels.lowerBound
                for c in 0..<n { scratch[c] &+= Int32(src[c]) }
            }
        }
        let bias = p.inputZeroPoint &* Int32(p.pixelCount)
        for c in 0..<n {
            let acc = (scratch[c] &- bias) << p.preShift
            output[channels.lowerBound + c] = requantizeToInt8(acc, multiplier: p.multiplier, shift: p.shift,
                                                               zeroPoint: p.outputZeroPoint)
        }
    }
}
