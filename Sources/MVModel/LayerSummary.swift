/// One row of a per-layer description: output shape and multiply-accumulates at an input size.
public struct LayerSummary: Sendable {
    public var name: String
    public var kind: String
    /// NHWC [H, W, C] for feature maps, [P, N, C] for transformer tokens, [C] for vectors.
    public var outputShape: [Int]
    public var macs: Int
    public var parameters: Int
}

extension MobileViTGraph {
    /// Output shapes and multiply-accumulates of every layer for an H×W input. Attention's two
    /// matrix products (QKᵀ and PV) are counted as MACs too.
    public func summary(height: Int, width: Int) -> [LayerSummary] {
        var rows: [LayerSummary] = []
        var h = height, w = width
        func conv(_ c: ConvLayer) {
            let (oh, ow) = c.outputSize(h, w)
            let perOutput = (c.inChannels / c.groups) * c.kernel * c.kernel
            let params = c.outChannels * perOutput + c.outChannels
            let kind = c.isDepthwise ? "depthwise \(c.kernel)×\(c.kernel)/\(c.stride)"
                : "conv \(c.kernel)×\(c.kernel)/\(c.stride)"
            rows.append(LayerSummary(name: c.name, kind: kind + (c.activation == .none ? "" : " + \(c.activation.rawValue)"),
                                     outputShape: [oh, ow, c.outChannels], macs: oh * ow * c.outChannels * perOutput,
                                     parameters: params))
            (h, w) = (oh, ow)
        }
        func block(_ b: InvertedResidual) {
            conv(b.expand); conv(b.depthwise); conv(b.reduce)
        }
        conv(stem)
        for stage in stages {
            switch stage {
            case let .mobileNet(_, blocks):
                blocks.forEach(block)
            case let .mobileViT(m):
                if let d = m.downsampling { block(d) }
                conv(m.convKxK)
                conv(m.conv1x1)
                let ps = m.patchSize
                let nh = (h + ps - 1) / ps * ps, nw = (w + ps - 1) / ps * ps
                let p = ps * ps, n = (nh / ps) * (nw / ps), d = m.hiddenSize
                for t in m.transformer {
                    let ffn = t.intermediate.outFeatures
                    let tokens = p * n
                    let linear = tokens * (4 * d * d + 2 * d * ffn)
                    let attention = 2 * p * n * n * d
                    let params = 4 * (d * d + d) + d * ffn + ffn + ffn * d + d + 4 * d
                    rows.append(LayerSummary(name: t.name, kind: "transformer (\(t.heads) heads, \(p)×\(n) tokens)",
                                             outputShape: [p, n, d], macs: linear + attention, parameters: params))
                }
                rows.append(LayerSummary(name: m.layerNorm.name, kind: "layernorm", outputShape: [p, n, d], macs: 0,
                                         parameters: 2 * d))
                conv(m.projection)
                conv(m.fusion)
            }
        }
        conv(expansion)
        rows.append(LayerSummary(name: "mobilevit.pooler", kind: "global average pool", outputShape: [expansion.outChannels],
                                 macs: 0, parameters: 0))
        rows.append(LayerSummary(name: classifier.name, kind: "linear", outputShape: [classifier.outFeatures],
                                 macs: classifier.inFeatures * classifier.outFeatures,
                                 parameters: classifier.inFeatures * classifier.outFeatures + classifier.outFeatures))
        return rows
    }
}
