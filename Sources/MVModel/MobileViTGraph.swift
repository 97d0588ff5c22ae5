/// A convolution followed by optional BatchNorm and activation (transformers' `MobileViTConvLayer`).
public struct ConvLayer: Sendable, Equatable {
    /// Parameter prefix in the checkpoint, e.g. "mobilevit.conv_stem".
    public var name: String
    public var inChannels: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    /// 1 for dense convolutions, `inChannels` for depthwise.
    public var groups: Int
    public var batchNorm: Bool
    public var activation: Activation
    /// Spacing of the kernel taps (atrous convolution); padding grows with it, so a stride-1
    /// convolution keeps the map's size.
    public var dilation: Int = 1
    /// Whether the convolution has a bias of its own (`<name>.convolution.bias`; DeepLabV3's
    /// classifier). BatchNorm's shift is separate.
    public var bias: Bool = false

    public init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, groups: Int, batchNorm: Bool,
                activation: Activation, dilation: Int = 1, bias: Bool = false) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.groups = groups
        self.batchNorm = batchNorm
        self.activation = activation
        self.dilation = dilation
        self.bias = bias
    }

    /// How a convolution is computed; the one place that decides it.
    public enum Form: Sendable, Equatable {
        /// 1×1, stride 1, dense: a GEMM over pixels.
        case pointwise
        /// One filter per channel.
        case depthwise
        /// Dense n×n (or strided 1×1): im2col and a GEMM.
        case dense
        /// Groups other than 1 or one per channel: no kernel runs these.
        case grouped
    }

    public var form: Form {
        if isDepthwise { return .depthwise }
        if groups != 1 { return .grouped }
        return kernel == 1 && stride == 1 && dilation == 1 ? .pointwise : .dense
    }

    public var isDepthwise: Bool { groups > 1 && groups == inChannels && inChannels == outChannels }
    public var isPointwise: Bool { form == .pointwise }
    public var padding: Int { dilation * (kernel - 1) / 2 }
    /// The extent of the kernel's taps: k for an ordinary convolution, d·(k − 1) + 1 when dilated.
    public var receptiveField: Int { dilation * (kernel - 1) + 1 }
    public var weightShape: [Int] { [outChannels, inChannels / groups, kernel, kernel] }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - receptiveField) / stride + 1, (w + 2 * padding - receptiveField) / stride + 1)
    }
}

/// A fully connected layer in PyTorch layout: weight [out, in].
public struct LinearLayer: Sendable, Equatable {
    public var name: String
    public var inFeatures: Int
    public var outFeatures: Int
    public var bias: Bool
}

public struct LayerNormLayer: Sendable, Equatable {
    public var name: String
    public var channels: Int
    public var eps: Double
}

/// MobileNetV2 inverted residual: 1×1 expand, 3×3 depthwise, 1×1 reduce, residual when shapes allow.
public struct InvertedResidual: Sendable, Equatable {
    public var name: String
    public var expand: ConvLayer
    public var depthwise: ConvLayer
    public var reduce: ConvLayer
    public var useResidual: Bool
}

/// One pre-LayerNorm transformer layer: attention with residual, then SiLU MLP with residual.
public struct TransformerLayer: Sendable, Equatable {
    public var name: String
    public var layerNormBefore: LayerNormLayer
    public var query: LinearLayer
    public var key: LinearLayer
    public var value: LinearLayer
    public var attentionOutput: LinearLayer
    public var layerNormAfter: LayerNormLayer
    public var intermediate: LinearLayer
    public var output: LinearLayer
    public var heads: Int
    public var activation: Activation

    public var hiddenSize: Int { query.inFeatures }
    public var headSize: Int { hiddenSize / heads }
}

/// The MobileViT block: local n×n and 1×1 convs, unfold into patches, transformer layers,
/// LayerNorm, fold, 1×1 projection, concat with the block input, n×n fusion conv.
public struct MobileViTBlock: Sendable, Equatable {
    public var name: String
    public var downsampling: InvertedResidual?
    public var convKxK: ConvLayer
    public var conv1x1: ConvLayer
    public var transformer: [TransformerLayer]
    public var layerNorm: LayerNormLayer
    public var projection: ConvLayer
    public var fusion: ConvLayer
    public var patchSize: Int

    public var channels: Int { convKxK.outChannels }
    public var hiddenSize: Int { conv1x1.outChannels }
}

/// DeepLabV3's head (transformers' `MobileViTDeepLabV3`): atrous spatial pyramid pooling on the
/// backbone's last feature map — a 1×1 branch, three dilated 3×3 branches and an image-pooling
/// branch (global average, 1×1, upsampled back to the map), concatenated and projected by a 1×1 —
/// then a 1×1 classifier with bias. Dropout is the identity at inference.
public struct SegmentationHead: Sendable, Equatable {
    /// `segmentation_head.aspp.convs.0` … `.3`: the 1×1 and the three dilated 3×3 branches.
    public var branches: [ConvLayer]
    /// `segmentation_head.aspp.convs.4.conv_1x1`: the image-pooling branch's convolution.
    public var poolingConv: ConvLayer
    public var projection: ConvLayer
    /// `segmentation_head.classifier`: 1×1 with bias, no BatchNorm, no activation.
    public var classifier: ConvLayer

    /// The pooling branch's name (its upsampled output, as transformers names the module).
    public static let poolingBranch = "segmentation_head.aspp.convs.4"
}

/// What follows the backbone.
public enum Head: Sendable, Equatable {
    /// `conv_1x1_exp`, global average pooling, the linear classifier.
    case classification(expansion: ConvLayer, classifier: LinearLayer)
    case segmentation(SegmentationHead)
}

public enum Stage: Sendable, Equatable {
    case mobileNet(name: String, blocks: [InvertedResidual])
    case mobileViT(MobileViTBlock)

    public var name: String {
        switch self {
        case let .mobileNet(name, _): return name
        case let .mobileViT(block): return block.name
        }
    }
}

/// A MobileViT v1 model as built from a config, layer by layer, with the checkpoint parameter
/// names of transformers' `MobileViTForImageClassification` or `MobileViTForSemanticSegmentation`.
public struct MobileViTGraph: Sendable, Equatable {
    public var config: MobileViTConfig
    public var stem: ConvLayer
    /// encoder.layer.0 … encoder.layer.4 (reported as layer1 … layer5).
    public var stages: [Stage]
    public var head: Head

    public init(config c: MobileViTConfig) {
        config = c
        let act = c.hiddenAct
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1, groups: Int = 1,
                  bn: Bool = true, activation: Activation? = nil) -> ConvLayer {
            ConvLayer(name: name, inChannels: cin, outChannels: cout, kernel: k, stride: stride, groups: groups,
                      batchNorm: bn, activation: activation ?? act)
        }
        func invertedResidual(_ name: String, _ cin: Int, _ cout: Int, stride: Int, dilation: Int = 1) -> InvertedResidual {
            let hidden = makeDivisible(Int((Double(cin) * c.expandRatio).rounded(.toNearestOrEven)))
            var depthwise = conv("\(name).conv_3x3", hidden, hidden, 3, stride: stride, groups: hidden)
            depthwise.dilation = dilation
            return InvertedResidual(
                name: name,
                expand: conv("\(name).expand_1x1", cin, hidden, 1),
                depthwise: depthwise,
                reduce: conv("\(name).reduce_1x1", hidden, cout, 1, activation: Activation.none),
                useResidual: stride == 1 && cin == cout)
        }
        func linear(_ name: String, _ i: Int, _ o: Int, bias: Bool = true) -> LinearLayer {
            LinearLayer(name: name, inFeatures: i, outFeatures: o, bias: bias)
        }
        // transformers' MobileViTEncoder: with output stride 16 (8) layer 5 (and 4) keeps its
        // input's resolution; its downsampling block runs at stride 1 with the depthwise dilated
        // by half the stage's dilation, which doubles at each such stage.
        var dilation = 1
        func mobileViT(_ index: Int, _ cin: Int, _ cout: Int, hidden d: Int, layers: Int, dilate: Bool = false) -> Stage {
            if dilate { dilation *= 2 }
            let name = "mobilevit.encoder.layer.\(index)"
            let ffn = Int(Double(d) * c.mlpRatio)
            let transformer = (0..<layers).map { l -> TransformerLayer in
                let t = "\(name).transformer.layer.\(l)"
                return TransformerLayer(
                    name: t,
                    layerNormBefore: LayerNormLayer(name: "\(t).layernorm_before", channels: d, eps: c.layerNormEps),
                    query: linear("\(t).attention.attention.query", d, d, bias: c.qkvBias),
                    key: linear("\(t).attention.attention.key", d, d, bias: c.qkvBias),
                    value: linear("\(t).attention.attention.value", d, d, bias: c.qkvBias),
                    attentionOutput: linear("\(t).attention.output.dense", d, d),
                    layerNormAfter: LayerNormLayer(name: "\(t).layernorm_after", channels: d, eps: c.layerNormEps),
                    intermediate: linear("\(t).intermediate.dense", d, ffn),
                    output: linear("\(t).output.dense", ffn, d),
                    heads: c.numAttentionHeads, activation: act)
            }
            let k = c.convKernelSize
            return .mobileViT(MobileViTBlock(
                name: name,
                downsampling: invertedResidual("\(name).downsampling_layer", cin, cout, stride: dilation == 1 ? 2 : 1,
                                               dilation: max(1, dilation / 2)),
                convKxK: conv("\(name).conv_kxk", cout, cout, k),
                conv1x1: conv("\(name).conv_1x1", cout, d, 1, bn: false, activation: Activation.none),
                transformer: transformer,
                layerNorm: LayerNormLayer(name: "\(name).layernorm", channels: d, eps: c.layerNormEps),
                projection: conv("\(name).conv_projection", d, cout, 1),
                fusion: conv("\(name).fusion", 2 * cout, cout, k),
                patchSize: c.patchSize))
        }
        let n = c.neckHiddenSizes
        stem = conv("mobilevit.conv_stem", c.numChannels, n[0], 3, stride: 2)
        let layer1 = [invertedResidual("mobilevit.encoder.layer.0.layer.0", n[0], n[1], stride: 1)]
        let layer2 = (0..<3).map { i in
            invertedResidual("mobilevit.encoder.layer.1.layer.\(i)", i == 0 ? n[1] : n[2], n[2], stride: i == 0 ? 2 : 1)
        }
        stages = [
            .mobileNet(name: "mobilevit.encoder.layer.0", blocks: layer1),
            .mobileNet(name: "mobilevit.encoder.layer.1", blocks: layer2),
            mobileViT(2, n[2], n[3], hidden: c.hiddenSizes[0], layers: 2),
            mobileViT(3, n[3], n[4], hidden: c.hiddenSizes[1], layers: 4, dilate: c.outputStride == 8),
            mobileViT(4, n[4], n[5], hidden: c.hiddenSizes[2], layers: 3, dilate: c.outputStride <= 16),
        ]
        switch c.task {
        case .classification:
            head = .classification(expansion: conv("mobilevit.conv_1x1_exp", n[5], n[6], 1),
                                   classifier: linear("classifier", n[6], c.numLabels))
        case .segmentation:
            let a = c.asppOutChannels, aspp = "segmentation_head.aspp"
            var branches = [conv("\(aspp).convs.0", n[5], a, 1, activation: .relu)]
            for (i, rate) in c.atrousRates.enumerated() {
                var b = conv("\(aspp).convs.\(i + 1)", n[5], a, 3, activation: .relu)
                b.dilation = rate
                branches.append(b)
            }
            head = .segmentation(SegmentationHead(
                branches: branches,
                poolingConv: conv("\(SegmentationHead.poolingBranch).conv_1x1", n[5], a, 1, activation: .relu),
                projection: conv("\(aspp).project", (branches.count + 1) * a, a, 1, activation: .relu),
                classifier: ConvLayer(name: "segmentation_head.classifier", inChannels: a, outChannels: c.numLabels, kernel: 1,
                                      stride: 1, groups: 1, batchNorm: false, activation: .none, bias: true)))
        }
    }

    /// Every convolution in execution order (a dense head's pixel classifier included).
    public var convolutions: [ConvLayer] {
        network.operators.compactMap {
            switch $0.kind {
            case let .conv(l), let .pixelClassifier(l): return l
            default: return nil
            }
        }
    }

    /// Every linear layer (transformer projections and the classifier), in execution order.
    public var linears: [LinearLayer] {
        network.operators.compactMap {
            switch $0.kind {
            case let .linear(l, _), let .classifier(l): return l
            default: return nil
            }
        }
    }

    public var layerNorms: [LayerNormLayer] {
        network.operators.compactMap { if case let .layerNorm(l) = $0.kind { return l } else { return nil } }
    }

    /// The checkpoint tensors this graph needs, with their shapes.
    public var parameterShapes: [(String, [Int])] {
        var out: [(String, [Int])] = []
        for c in convolutions {
            out.append(("\(c.name).convolution.weight", c.weightShape))
            if c.bias { out.append(("\(c.name).convolution.bias", [c.outChannels])) }
            if c.batchNorm {
                for p in ["weight", "bias", "running_mean", "running_var"] { out.append(("\(c.name).normalization.\(p)", [c.outChannels])) }
            }
        }
        for l in linears {
            out.append(("\(l.name).weight", [l.outFeatures, l.inFeatures]))
            if l.bias { out.append(("\(l.name).bias", [l.outFeatures])) }
        }
        for n in layerNorms {
            out.append(("\(n.name).weight", [n.channels]))
            out.append(("\(n.name).bias", [n.channels]))
        }
        return out
    }

    /// Tensors a checkpoint may carry that inference does not use.
    public func isIgnorableTensor(_ name: String) -> Bool {
        name.hasSuffix(".num_batches_tracked")
    }
}
