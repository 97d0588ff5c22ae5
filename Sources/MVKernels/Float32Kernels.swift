import MVKernelsC

/// Float32 kernels for the reference executor. They need not be bit-exact across ISAs (the int8
/// path is); the AVX2+FMA build is used where the CPU has it.
public enum Float32Kernels {
    /// True when the CPU runs the AVX2+FMA build of the float kernels.
    public static let useAVX2: Bool = {
        let f = mv_cpu_features()
        return f & UInt32(MV_CPU_AVX2) != 0 && f & UInt32(MV_CPU_FMA) != 0
    }()

    public static let panelWidth = Int(MV_SGEMM_NR)

    /// Packs B ([N][K] row-major, PyTorch Linear layout) into panels of [K][16] for `gemm`.
    public static func packB(_ b: UnsafePointer<Float>, n: Int, k: Int, rowStride: Int? = nil) -> [Float] {
        let ld = rowStride ?? k
        let panels = (n + panelWidth - 1) / panelWidth
        var out = [Float](repeating: 0, count: panels * k * panelWidth)
        for col in 0..<n {
            let p = col / panelWidth, j = col % panelWidth
            for kk in 0..<k { out[(p * k + kk) * panelWidth + j] = b[col * ld + kk] }
        }
        return out
    }

    /// Packs B given column-major ((n, k) at b[k·colStride + n]), e.g. V in P·V attention.
    public static func packBTransposed(_ b: UnsafePointer<Float>, n: Int, k: Int, kStride: Int,
                                       into out: UnsafeMutablePointer<Float>) {
        let panels = (n + panelWidth - 1) / panelWidth
        for p in 0..<panels {
            let cols = min(panelWidth, n - p * panelWidth)
            for kk in 0..<k {
                let dst = out + (p * k + kk) * panelWidth
                let src = b + kk * kStride + p * panelWidth
                for j in 0..<cols { dst[j] = src[j] }
                for j in cols..<panelWidth { dst[j] = 0 }
            }
        }
    }

    /// Packs B from [N][K] rows with a row stride into caller storage (attention K at run time).
    public static func packB(_ b: UnsafePointer<Float>, n: Int, k: Int, rowStride: Int,
                             into out: UnsafeMutablePointer<Float>) {
        let panels = (n + panelWidth - 1) / panelWidth
        for p in 0..<panels {
            for kk in 0..<k {
                let dst = out + (p * k + kk) * panelWidth
                for j in 0..<panelWidth {
                    let col = p * panelWidth + j
                    dst[j] = col < n ? b[col * rowStride + kk] : 0
                }
            }
        }
    }

    public static func packedCount(n: Int, k: Int) -> Int {
        (n + panelWidth - 1) / panelWidth * k * panelWidth
    }

    /// Bias padded to a whole number of panels, as `gemm` reads it.
    public static func padBias(_ bias: [Float], n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: (n + panelWidth - 1) / panelWidth * panelWidth)
        for i in 0..<min(n, bias.count) { out[i] = bias[i] }
        return out
    }

    /// C = act(A·Bᵀ + bias) over m rows (GELU is not fused: apply `activation` afterwards).
    @inline(__always)
    public static func gemm(a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, packedB: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                            activation: ActivationKind = .none) {
        precondition(activation != .gelu, "GELU is not fused")
        mv_sgemm(useAVX2 ? 1 : 0, a, lda, m, k, packedB, bias, n, c, ldc, activation.rawValue)
    }

    /// Depthwise 3x3 (NHWC) of output rows `rows`; weights `[3][3][C]`. `dilation` d spaces the taps
    /// at −d, 0, +d with padding d, so the output is `(H − 1) / stride + 1` high for every d.
    public static func depthwise3x3(input: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                                    weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, stride: Int,
                                    dilation: Int = 1, output: UnsafeMutablePointer<Float>, outWidth: Int,
                                    rows: Range<Int>, activation: ActivationKind = .none) {
        precondition(activation != .gelu, "GELU is not fused")
        precondition(dilation >= 1 && dilation <= Int(Int32.max), "depthwise dilation must be at least 1")
        mv_depthwise3x3_f32(useAVX2 ? 1 : 0, input, height, width, channels, weights, bias, Int32(stride),
                            Int32(dilation), output, outWidth, rows.lowerBound, rows.upperBound, activation.rawValue)
    }

    public enum ActivationKind: Int32 {
        case none = 0, silu = 1, relu = 2, relu6 = 3, gelu = 4
    }

    public static func activation(_ x: UnsafeMutablePointer<Float>, count: Int, kind: ActivationKind) {
        guard kind != .none else { return }
        mv_activation_f32(useAVX2 ? 1 : 0, x, count, kind.rawValue)
    }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, length: Int, rowStride: Int, scale: Float) {
        mv_softmax_f32(useAVX2 ? 1 : 0, x, rows, length, rowStride, scale)
    }
}
