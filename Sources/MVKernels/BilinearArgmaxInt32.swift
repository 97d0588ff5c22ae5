// The label map of a dense-prediction head in integers: int32 logits (one scale for every class)
// upsampled bilinearly with align_corners=False and reduced to the argmax over classes, without
// materialising the upsampled logits.

/// Upsamples an NHWC int32 map [h, w, classes] with `BilinearResizeInt8`'s Q15 axis weights and
/// writes, per output pixel, the class of the largest interpolated value (the lowest class index
/// among equal maxima, as `torch.argmax`).
///
/// Exactness: the vertical pass forms `(2^15 − w_y)·a + w_y·b` in Int64 (|·| < 2^46), the
/// horizontal pass `(2^15 − w_x)·u + w_x·v` (|·| < 2^61): no rounding and no overflow, so the
/// argmax is that of the exact bilinear interpolation with Q15 weights (PyTorch's weights rounded
/// to 2^-15), and every platform and thread count gives the same labels. (Hence the wrapping
/// operators: they never wrap, and leave the overflow checks out of the inner loops.)
public enum BilinearArgmaxInt32 {
    public struct Plan: Sendable {
        public let height: Int, width: Int, classes: Int
        public let outputHeight: Int, outputWidth: Int
        let rows: BilinearResizeInt8.Axis, columns: BilinearResizeInt8.Axis

        public init(height: Int, width: Int, classes: Int, outputHeight: Int, outputWidth: Int) throws {
            guard classes >= 1 else { throw NonlinearParameterError("argmax needs at least one class") }
            self.height = height
            self.width = width
            self.classes = classes
            self.outputHeight = outputHeight
            self.outputWidth = outputWidth
            rows = try .make(inputSize: height, outputSize: outputHeight)
            columns = try .make(inputSize: width, outputSize: outputWidth)
        }

        /// Int64 scratch per worker: one vertically interpolated row, and its columns' argmax.
        public var scratchCount: Int { width * classes + width }
    }

    /// Labels of output rows `outputRows` into `labels` ([outputHeight, outputWidth], row-major).
    /// `scratch` holds `plan.scratchCount` Int64 values for this worker.
    public static func run(values: UnsafePointer<Int32>, plan p: Plan, labels: UnsafeMutablePointer<Int32>,
                           outputRows: Range<Int>, scratch: UnsafeMutablePointer<Int64>) {
        precondition(outputRows.lowerBound >= 0 && outputRows.upperBound <= p.outputHeight)
        let one = Int64(1) << Int64(BilinearResizeInt8.weightBits)
        let c = p.classes, rowLength = p.width * c
        for y in outputRows {
            let w1 = Int64(p.rows.weight1[y]), w0 = one - w1
            let a = values + Int(p.rows.index0[y]) * rowLength, b = values + Int(p.rows.index1[y]) * rowLength
            for i in 0..<rowLength { scratch[i] = w0 &* Int64(a[i]) &+ w1 &* Int64(b[i]) }
            // Each source column's argmax (lowest class among equal maxima). Where an output
            // pixel's two source columns u and v agree on class k, k is its label whatever the
            // weight: every class j < k is strictly below k at both ends, so strictly below in
            // between, and every j > k at most equal, which the tie rule gives to k. So only pixels
            // between columns of different classes (region borders) need the per-class sums.
            let columnLabel = scratch + rowLength
            for j in 0..<p.width {
                let u = scratch + j * c
                var best = u[0], label = 0
                for k in 1..<max(1, c) where u[k] > best { best = u[k]; label = k }
                columnLabel[j] = Int64(label)
            }
            let out = labels + y * p.outputWidth
            for x in 0..<p.outputWidth {
                let j0 = Int(p.columns.index0[x]), j1 = Int(p.columns.index1[x])
                if columnLabel[j0] == columnLabel[j1] {
                    out[x] = Int32(columnLabel[j0])
                    continue
                }
                let v1 = Int64(p.columns.weight1[x]), v0 = one - v1
                let u = scratch + j0 * c, v = scratch + j1 * c
                var best = v0 &* u[0] &+ v1 &* v[0], label = 0
                for k in 1..<max(1, c) {
                    let value = v0 &* u[k] &+ v1 &* v[k]
                    if value > best { best = value; label = k }
                }
                out[x] = Int32(label)
            }
        }
    }
}
