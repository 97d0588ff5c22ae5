import MVKernels
import MVModel

/// A convolution with BatchNorm folded and weights packed for the float kernels.
struct PreparedConv {
    enum Kind { case pointwise, depthwise, dense }
    let layer: ConvLayer
    let kind: Kind
    /// Packed GEMM panels (pointwise, dense) or [k][k][C] taps (depthwise).
    let weights: [Float]
    let bias: [Float]
    let activation: Float32Kernels.ActivationKind

    init(_ layer: ConvLayer, checkpoint: Checkpoint) {
        let folded = FoldedConv(layer, from: checkpoint)
        self.layer = layer
        activation = PreparedConv.kernelActivation(layer.activation)
        let cin = layer.inChannels, cout = layer.outChannels, k = layer.kernel
        if layer.isDepthwise {
            precondition(k == 3, "depthwise convolutions are 3×3 in MobileViT")
            kind = .depthwise
            var taps = [Float](repeating: 0, count: 9 * cout)
            for c in 0..<cout { for t in 0..<9 { taps[t * cout + c] = folded.weight[c * 9 + t] } }
            weights = taps
            bias = folded.bias
        } else if k == 1 {
            kind = .pointwise
            weights = folded.weight.withUnsafeBufferPointer { Float32Kernels.packB($0.baseAddress!, n: cout, k: cin) }
            bias = Float32Kernels.padBias(folded.bias, n: cout)
        } else {
            // im2col order is (ky, kx, c): reorder [o][c][ky][kx] to rows of that order.
            kind = .dense
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

struct PreparedTransformerLayer {
    let layer: TransformerLayer
    let ln1: PreparedLayerNorm
    let q: PreparedLinear
    let k: PreparedLinear
    let v: PreparedLinear
    let attentionOutput: PreparedLinear
    let ln2: PreparedLayerNorm
    let fc1: PreparedLinear
    let fc2: PreparedLinear

    init(_ t: TransformerLayer, checkpoint c: Checkpoint) {
        layer = t
        ln1 = PreparedLayerNorm(t.layerNormBefore, checkpoint: c)
        q = PreparedLinear(t.query, checkpoint: c)
        k = PreparedLinear(t.key, checkpoint: c)
        v = PreparedLinear(t.value, checkpoint: c)
        attentionOutput = PreparedLinear(t.attentionOutput, checkpoint: c)
        ln2 = PreparedLayerNorm(t.layerNormAfter, checkpoint: c)
        fc1 = PreparedLinear(t.intermediate, checkpoint: c)
        fc2 = PreparedLinear(t.output, checkpoint: c)
    }
}

struct PreparedInvertedResidual {
    let block: InvertedResidual
    let expand: PreparedConv
    let depthwise: PreparedConv
    let reduce: PreparedConv

    init(_ b: InvertedResidual, checkpoint c: Checkpoint) {
        block = b
        expand = PreparedConv(b.expand, checkpoint: c)
        depthwise = PreparedConv(b.depthwise, checkpoint: c)
        reduce = PreparedConv(b.reduce, checkpoint: c)
    }
}

struct PreparedMobileViTBlock {
    let block: MobileViTBlock
    let downsampling: PreparedInvertedResidual?
    let convKxK: PreparedConv
    let conv1x1: PreparedConv
    let transformer: [PreparedTransformerLayer]
    let layerNorm: PreparedLayerNorm
    let projection: PreparedConv
    let fusion: PreparedConv

    init(_ b: MobileViTBlock, checkpoint c: Checkpoint) {
        block = b
        downsampling = b.downsampling.map { PreparedInvertedResidual($0, checkpoint: c) }
        convKxK = PreparedConv(b.convKxK, checkpoint: c)
        conv1x1 = PreparedConv(b.conv1x1, checkpoint: c)
        transformer = b.transformer.map { PreparedTransformerLayer($0, checkpoint: c) }
        layerNorm = PreparedLayerNorm(b.layerNorm, checkpoint: c)
        projection = PreparedConv(b.projection, checkpoint: c)
        fusion = PreparedConv(b.fusion, checkpoint: c)
    }
}

enum PreparedStage {
    case mobileNet(name: String, blocks: [PreparedInvertedResidual])
    case mobileViT(PreparedMobileViTBlock)
}
