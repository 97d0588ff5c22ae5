// Bilinear resize of NHWC int8 images with PyTorch `F.interpolate(mode="bilinear",
// align_corners=False)` semantics (no antialias), in integer arithmetic.

/// Along each axis (input size `n`, output size `m`), output index `o` samples the source coordinate
/// `src = max(0, (o + ½)·n/m − ½)` (PyTorch's `area_pixel_compute_source_index`), taken here as the
/// exact rational `((2o + 1)·n − m) / (2m)`: `i0 = ⌊src⌋`, `i1 = min(i0 + 1, n − 1)`, and the weight
/// of `i1` is `w1 = round(frac(src)·2^15)` computed in integers, `w0 = 2^15 − w1`. The output code is
/// `(Σ w_y·w_x·q + 2^29) >> 30` (round half up). Scale and zero point pass through unchanged (the
/// weights sum to exactly 2^30, so interpolating codes equals interpolating values).
///
/// Error bound (asserted): ≤ 0.5 + 255·2^-15 < 0.51 LSB against the float bilinear of the same
/// codes (PyTorch computes `src` in float32, which can differ from the exact rational by ~1e-7).
public enum BilinearResizeInt8 {
    public static let weightBits: Int32 = 15

    /// Source indices and weights for one axis.
    public struct Axis: Sendable, Equatable {
        public var index0: [Int32]
        public var index1: [Int32]
        /// Weight of `index1` in Q15; `index0` gets `2^15 − weight1`.
        public var weight1: [Int32]

        public static func make(inputSize n: Int, outputSize m: Int) throws -> Axis {
            guard n >= 1, m >= 1, n <= 1 << 20, m <= 1 << 20 else {
                throw NonlinearParameterError("resize sizes must be 1…2^20, got \(n) → \(m)")
            }
            var i0 = [Int32](), i1 = [Int32](), w1 = [Int32]()
            let den = Int64(2 * m)
            for o in 0..<m {
                let num = max(0, Int64(2 * o + 1) * Int64(n) - Int64(m))
                let q = num / den, rem = num % den
                let w = (rem << (Int64(weightBits) + 1) + den) / (2 * den)  // round(rem·2^15/den)
                i0.append(Int32(q))
                i1.append(Int32(min(q + 1, Int64(n - 1))))
                w1.append(Int32(w))
            }
            return Axis(index0: i0, index1: i1, weight1: w1)
        }
    }

    public struct Plan: Sendable, Equatable {
        public var inputHeight: Int, inputWidth: Int, outputHeight: Int, outputWidth: Int
        public var rows: Axis, columns: Axis

        public static func make(inputHeight: Int, inputWidth: Int, outputHeight: Int, outputWidth: Int) throws -> Plan {
            Plan(inputHeight: inputHeight, inputWidth: inputWidth, outputHeight: outputHeight, outputWidth: outputWidth,
                 rows: try Axis.make(inputSize: inputHeight, outputSize: outputHeight),
                 columns: try Axis.make(inputSize: inputWidth, outputSize: outputWidth))
        }
    }

    /// Resizes `channels` channels of one image. Input pixel (y, x) starts at
    /// `input + y·inputRowStride + x·inputPixelStride` (channels contiguous); output likewise.
    /// Only output rows `outputRows` are written (the executor splits rows across threads).
    public static func run(input: UnsafePointer<Int8>, inputRowStride: Int, inputPixelStride: Int,
                           output: UnsafeMutablePointer<Int8>, outputRowStride: Int, outputPixelStride: Int,
                           channels: Int, outputRows: Range<Int>, plan: Plan) {
        precondition(outputRows.lowerBound >= 0 && outputRows.upperBound <= plan.outputHeight)
        let one = Int64(1) << Int64(weightBits)
        let round = Int64(1) << (2 * Int64(weightBits) - 1)
        plan.rows.index0.withUnsafeBufferPointer { ry0 in
        plan.rows.index1.withUnsafeBufferPointer { ry1 in
        plan.rows.weight1.withUnsafeBufferPointer { rw in
        plan.columns.index0.withUnsafeBufferPointer { cx0 in
        plan.columns.index1.withUnsafeBufferPointer { cx1 in
        plan.columns.weight1.withUnsafeBufferPointer { cw in
            for oy in outputRows {
                let wy1 = Int64(rw[oy]), wy0 = one - wy1
                let row0 = input + Int(ry0[oy]) * inputRowStride
                let row1 = input + Int(ry1[oy]) * inputRowStride
                let dstRow = output + oy * outputRowStride
                for ox in 0..<plan.outputWidth {
                    let wx1 = Int32(cw[ox]), wx0 = Int32(one) &- wx1
                    let o0 = Int(cx0[ox]) * inputPixelStride, o1 = Int(cx1[ox]) * inputPixelStride
                    let p00 = row0 + o0, p01 = row0 + o1, p10 = row1 + o0, p11 = row1 + o1
                    let dst = dstRow + ox * outputPixelStride
                    for c in 0..<channels {
                        let h0 = wx0 &* Int32(p00[c]) &+ wx1 &* Int32(p01[c])  // |h| ≤ 2^22
                        let h1 = wx0 &* Int32(p10[c]) &+ wx1 &* Int32(p11[c])
                        let v = (wy0 &* Int64(h0) &+ wy1 &* Int64(h1) &+ round) >> (2 * Int64(weightBits))
                        dst[c] = Int8(truncatingIfNeeded: v)
                    }
                }
            }
        }}}}}}
    }
}
