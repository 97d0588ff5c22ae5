import MVFormats

/// One operator of the int8 model with the tensors it reads and writes (names from
/// `TensorNames`), in execution order. The int8 compiler, the int8 executor and calibration all
/// walk this one list, so they agree on which tensor feeds which layer.
public enum Int8Operator {
    /// A convolution; `output` is the tensor whose quantisation it requantises to (a MobileViT
    /// block's downsampling layer writes straight into the block's concat buffer).
    case conv(ConvLayer, input: String, output: String)
    case linear(LinearLayer, input: String, output: String, activation: Activation)
    /// output = a + b, named `name`.
    case add(name: String, a: String, b: String)
    case layerNorm(LayerNormLayer, input: String, output: String)
    /// Softmax(QKᵀ/√d)·V of one transformer layer: reads its query, key and value outputs, writes
    /// `TensorNames.context`.
    case attention(TransformerLayer)
    /// Global average pool of `input` into `TensorNames.pooler`.
    case pool(input: String)
    /// The classifier on the pooled vector; int32 logits.
    case classifier(LinearLayer, input: String)

    /// The tensor a GEMM-run layer (1×1 convolution, linear layer, classifier) reads, else nil.
    public var gemmInput: String? {
        switch self {
        case let .conv(l, input, _): return l.kernel == 1 && l.groups == 1 ? input : nil
        case let .linear(_, input, _, _), let .classifier(_, input): return input
        default: return nil
        }
    }
}

extension MobileViTGraph {
    /// The int8 model's operators in execution order.
    /// - Throws: `InputError` for graphs the int8 path does not support.
    public func int8Operators() throws -> [Int8Operator] {
        var ops: [Int8Operator] = []
        /// Returns the block's output tensor; `output` overrides the reduce conv's.
        func invertedResidual(_ b: InvertedResidual, input: String, output: String?) -> String {
            ops.append(.conv(b.expand, input: input, output: b.expand.name))
            ops.append(.conv(b.depthwise, input: b.expand.name, output: b.depthwise.name))
            let reduceOut = output ?? b.reduce.name
            ops.append(.conv(b.reduce, input: b.depthwise.name, output: reduceOut))
            guard b.useResidual else { return reduceOut }
            ops.append(.add(name: b.name, a: input, b: reduceOut))
            return b.name
        }
        ops.append(.conv(stem, input: TensorNames.input, output: stem.name))
        var x = stem.name
        for stage in stages {
            switch stage {
            case let .mobileNet(_, blocks):
                for b in blocks { x = invertedResidual(b, input: x, output: nil) }
            case let .mobileViT(m):
                guard let d = m.downsampling, !d.useResidual else {
                    throw InputError("MobileViT blocks without a stride-2 downsampling layer are not supported by the int8 path")
                }
                let concat = TensorNames.concat(m)
                _ = invertedResidual(d, input: x, output: concat)
                ops.append(.conv(m.convKxK, input: concat, output: m.convKxK.name))
                ops.append(.conv(m.conv1x1, input: m.convKxK.name, output: m.conv1x1.name))
                var t0 = m.conv1x1.name
                for t in m.transformer {
                    ops.append(.layerNorm(t.layerNormBefore, input: t0, output: TensorNames.ln1(t)))
                    for l in [t.query, t.key, t.value] {
                        ops.append(.linear(l, input: TensorNames.ln1(t), output: l.name, activation: .none))
                    }
                    ops.append(.attention(t))
                    ops.append(.linear(t.attentionOutput, input: TensorNames.context(t), output: t.attentionOutput.name,
                                       activation: .none))
                    ops.append(.add(name: TensorNames.residual1(t), a: t0, b: t.attentionOutput.name))
                    ops.append(.layerNorm(t.layerNormAfter, input: TensorNames.residual1(t), output: TensorNames.ln2(t)))
                    ops.append(.linear(t.intermediate, input: TensorNames.ln2(t), output: t.intermediate.name,
                                       activation: t.activation))
                    ops.append(.linear(t.output, input: t.intermediate.name, output: t.output.name, activation: .none))
                    ops.append(.add(name: t.name, a: TensorNames.residual1(t), b: t.output.name))
                    t0 = t.name
                }
                ops.append(.layerNorm(m.layerNorm, input: t0, output: m.layerNorm.name))
                ops.append(.conv(m.projection, input: m.layerNorm.name, output: concat))
                ops.append(.conv(m.fusion, input: concat, output: m.fusion.name))
                x = m.fusion.name
            }
        }
        ops.append(.conv(expansion, input: x, output: expansion.name))
        ops.append(.pool(input: expansion.name))
        ops.append(.classifier(classifier, input: TensorNames.pooler))
        return ops
    }
}
