extension MobileViTGraph {
    /// MobileViT as one operator list (see `Network`): the stem, the inverted residual and
    /// MobileViT blocks, then the head — the expansion, pooling and the classifier, or DeepLabV3's
    /// ASPP (its five branches written straight into one concat buffer) and pixel classifier.
    ///
    /// A MobileViT block reads its input (the downsampling layer's output) and writes the
    /// projection into one concat buffer [H, W, 2C]; both are concat inputs, so their producers
    /// write into the buffer's halves and the concat is free. The transformer runs between an unfold
    /// and a fold.
    public var network: Network {
        var ops: [Operator] = []
        var aliases: [String: [String]] = [:]
        func conv(_ l: ConvLayer, _ input: String) -> String {
            ops.append(Operator(.conv(l), inputs: [input], output: l.name))
            return l.name
        }
        func linear(_ l: LinearLayer, _ input: String, _ activation: Activation = .none) -> String {
            ops.append(Operator(.linear(l, activation: activation), inputs: [input], output: l.name))
            return l.name
        }
        func add(_ a: String, _ b: String, _ output: String) -> String {
            ops.append(Operator(.add, inputs: [a, b], output: output))
            return output
        }
        func invertedResidual(_ b: InvertedResidual, _ input: String) -> String {
            let reduced = conv(b.reduce, conv(b.depthwise, conv(b.expand, input)))
            guard b.useResidual else {
                aliases[reduced, default: []].append(b.name)
                return reduced
            }
            return add(input, reduced, b.name)
        }
        func transformerLayer(_ t: TransformerLayer, _ x: String) -> String {
            ops.append(Operator(.layerNorm(t.layerNormBefore), inputs: [x], output: TensorNames.ln1(t)))
            let q = linear(t.query, TensorNames.ln1(t)), k = linear(t.key, TensorNames.ln1(t))
            let v = linear(t.value, TensorNames.ln1(t))
            ops.append(Operator(.attention(t), inputs: [q, k, v], output: TensorNames.context(t)))
            let attended = linear(t.attentionOutput, TensorNames.context(t))
            let residual = add(x, attended, TensorNames.residual1(t))
            ops.append(Operator(.layerNorm(t.layerNormAfter), inputs: [residual], output: TensorNames.ln2(t)))
            let hidden = linear(t.intermediate, TensorNames.ln2(t), t.activation)
            return add(residual, linear(t.output, hidden), t.name)
        }
        func mobileViTBlock(_ m: MobileViTBlock, _ input: String) -> String {
            var x = input
            if let d = m.downsampling { x = invertedResidual(d, x) }
            let features = conv(m.conv1x1, conv(m.convKxK, x))
            let unfolded = TensorNames.unfolded(m)
            ops.append(Operator(.unfold(patchSize: m.patchSize), inputs: [features], output: unfolded))
            var tokens = unfolded
            for t in m.transformer { tokens = transformerLayer(t, tokens) }
            if tokens != unfolded { aliases[tokens, default: []].append(TensorNames.transformer(m)) }
            ops.append(Operator(.layerNorm(m.layerNorm), inputs: [tokens], output: m.layerNorm.name))
            ops.append(Operator(.fold(patchSize: m.patchSize, sizeOf: features), inputs: [m.layerNorm.name],
                                output: TensorNames.folded(m)))
            let projected = conv(m.projection, TensorNames.folded(m))
            ops.append(Operator(.concat, inputs: [x, projected], output: TensorNames.concat(m)))
            return conv(m.fusion, TensorNames.concat(m))
        }

        var x = conv(stem, TensorNames.input)
        for stage in stages {
            switch stage {
            case let .mobileNet(_, blocks):
                for b in blocks { x = invertedResidual(b, x) }
            case let .mobileViT(m):
                x = mobileViTBlock(m, x)
            }
            aliases[x, default: []].append(stage.name)
        }
        switch head {
        case let .classification(expansion, classifier):
            x = conv(expansion, x)
            ops.append(Operator(.globalAveragePool, inputs: [x], output: TensorNames.pooler))
            ops.append(Operator(.classifier(classifier), inputs: [TensorNames.pooler], output: classifier.name))
        case let .segmentation(h):
            let features = x
            var branches = h.branches.map { conv($0, features) }
            ops.append(Operator(.globalAveragePool, inputs: [features], output: TensorNames.asppPooled))
            let pooled = conv(h.poolingConv, TensorNames.asppPooled)
            ops.append(Operator(.resize(sizeOf: features), inputs: [pooled], output: SegmentationHead.poolingBranch))
            branches.append(SegmentationHead.poolingBranch)
            ops.append(Operator(.concat, inputs: branches, output: TensorNames.asppConcat))
            let projected = conv(h.projection, TensorNames.asppConcat)
            ops.append(Operator(.pixelClassifier(h.classifier), inputs: [projected], output: h.classifier.name))
        }
        return Network(operators: ops, aliases: aliases, inputChannels: config.numChannels)
    }
}
