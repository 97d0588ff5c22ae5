/// One row of a per-layer description: output shape and multiply-accumulates at an input size.
public struct LayerSummary: Sendable {
    public var name: String
    public var kind: String
    /// NHWC [H, W, C] for feature maps, [P, N, C] for transformer tokens, [C] for vectors.
    public var outputShape: [Int]
    public var macs: Int
    public var parameters: Int
}

extension Network {
    /// Output shapes and multiply-accumulates of every operator for an H×W input (layout
    /// operators, which compute nothing, are left out; a resize is listed). Attention's two matrix products (QKᵀ and
    /// P·V) count as MACs too.
    /// - Throws: `InputError` when the input is too small for the network.
    public func summary(height: Int, width: Int) throws -> [LayerSummary] {
        let shapes = try shapes(height: height, width: width)
        return operators.filter(\.isReported).map { op in
            let y = shapes[op.output]!, x = shapes[op.inputs[0]]!
            var shape = [y.height, y.width, y.channels]
            if let ps = tokenPatchSize[op.output] { shape = [ps * ps, y.pixels / (ps * ps), y.channels] }
            if y.pixels == 1 && x.pixels > 1 || op.output == output && !isDense { shape = [y.channels] }
            func row(_ kind: String, macs: Int = 0, parameters: Int = 0) -> LayerSummary {
                LayerSummary(name: op.output, kind: kind, outputShape: shape, macs: macs, parameters: parameters)
            }
            switch op.kind {
            case let .conv(c):
                let perOutput = (c.inChannels / c.groups) * c.kernel * c.kernel
                let kind = (c.isDepthwise ? "depthwise" : "conv") + " \(c.kernel)×\(c.kernel)/\(c.stride)"
                    + (c.dilation > 1 ? " dilation \(c.dilation)" : "") + (c.activation == .none ? "" : " + \(c.activation.rawValue)")
                return row(kind, macs: y.pixels * c.outChannels * perOutput, parameters: c.outChannels * perOutput + c.outChannels)
            case let .linear(l, activation):
                return row("linear" + (activation == .none ? "" : " + \(activation.rawValue)"),
                           macs: x.pixels * l.inFeatures * l.outFeatures,
                           parameters: l.inFeatures * l.outFeatures + (l.bias ? l.outFeatures : 0))
            case let .classifier(l):
                return row("linear", macs: l.inFeatures * l.outFeatures,
                           parameters: l.inFeatures * l.outFeatures + (l.bias ? l.outFeatures : 0))
            case .add:
                return row("add")
            case let .layerNorm(l):
                return row("layernorm", parameters: 2 * l.channels)
            case let .attention(t):
                let ps = tokenPatchSize[op.output]!, p = ps * ps, n = y.pixels / p
                return row("attention (\(t.heads) heads, \(p)×\(n) tokens)", macs: 2 * p * n * n * y.channels)
            case let .pixelClassifier(c):
                return row("conv 1×1 classifier", macs: y.pixels * c.outChannels * c.inChannels,
                           parameters: c.outChannels * c.inChannels + c.outChannels)
            case .globalAveragePool:
                return row("global average pool")
            case .resize:
                return row("bilinear resize")
            case .unfold, .fold, .concat:
                return row("layout")
            }
        }
    }
}
