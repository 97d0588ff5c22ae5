import MVKernels
import MVModel

/// A convolution with BatchNorm folded and weights packed for the float kernels.
struct PreparedConv {
    let layer: ConvLayer
    /// Packed GEMM panels (pointwise, dense) or [k][k][C] taps (depthwise).
    let weights: [Float]
    let bias: [Float]
    let activation: Float32Kernels.ActivationKind

    init(_ layer: ConvLayer, checkpoint: Checkpoint) {
        let folded = FoldedConv(layer, from: checkpoint)
        self.layer = layer
        activation = PreparedConv.kernelActivation(layer.activation)
        let cin = layer.inChannels, cout = layer.outChannels, k = layer.kernel
        switch layer.form {
        case .depthwise:
            precondition(k == 3, "depthwise convolutions are 3×3 in MobileViT")
            var taps = [Float](repeating: 0, count: 9 * cout)
            for c in 0..<cout { for t in 0..<9 { taps[t * cout + c] = folded.weight[c * 9 + t] } }
            weights = taps
            bias = folded.bias
        case .pointwise:
            weights = folded.weight.withUnsafeBufferPointer { Float32Kernels.packB($0.baseAddress!, n: cout, k: cin) }
            bias = Float32Kernels.padBias(folded.bias, n: cout)
        case .dense, .grouped:
            precondition(layer.groups == 1, "grouped convolutions are not supported")
            // im2col order is (ky, kx, c): reorder [o][c][ky][kx] to rows of that order.
            let kk = k * k * cin
            var rows = [Float](repeating: 0, count: cout * kk)
            for o in 0..<cout {
                for c in 0..<cin {
                    for t in 0..<(k * k) { rows[o * kk + t * cin + c] = folded.weight[(o * cin + c) * k * k + t] }
                }
            }
            weights = rows.withUnsafeBufferPointer { Float32Kernels.packB($0.baseAddress!, n: cout, k: kk) }
            bias = Float32Kernels.padBias(folded.bias, n: cout)
        }
    }

    static func kernelActivation(_ a: Activation) -> Float32Kernels.ActivationKind {
        switch a {
        case .none: return .none
        case .silu: return .silu
        case .relu: return .relu
        case .relu6: return .relu6
        case .gelu: return .gelu
        }
    }
}

struct PreparedLinear {
    let layer: LinearLayer
    let packed: [Float]
    let bias: [Float]

    init(_ layer: LinearLayer, checkpoint: Checkpoint) {
        self.layer = layer
        packed = checkpoint.tensor("\(layer.name).weight").values.withUnsafeBufferPointer {
            Float32Kernels.packB($0.baseAddress!, n: layer.outFeatures, k: layer.inFeatures)
        }
        let b = layer.bias ? checkpoint.tensor("\(layer.name).bias").values : []
        bias = Float32Kernels.padBias(b, n: layer.outFeatures)
    }
}

struct PreparedLayerNorm {
    let gamma: [Float]
    let beta: [Float]
    let eps: Float

    init(_ layer: LayerNormLayer, checkpoint: Checkpoint) {
        gamma = checkpoint.tensor("\(layer.name).weight").values
        beta = checkpoint.tensor("\(layer.name).bias").values
        eps = Float(layer.eps)
    }
}

/// An operator's weights prepared for the float kernels (none for operators without weights).
enum PreparedOperator {
    case conv(PreparedConv)
    case linear(PreparedLinear)
    case layerNorm(PreparedLayerNorm)
    case none

    init(_ op: Operator, checkpoint: Checkpoint) {
        switch op.kind {
        case let .conv(l), let .pixelClassifier(l): self = .conv(PreparedConv(l, checkpoint: checkpoint))
        case let .linear(l, _), let .classifier(l): self = .linear(PreparedLinear(l, checkpoint: checkpoint))
        case let .layerNorm(l): self = .layerNorm(PreparedLayerNorm(l, checkpoint: checkpoint))
        default: self = .none
        }
    }
}
