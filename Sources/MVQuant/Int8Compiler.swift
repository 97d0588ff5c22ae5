import MVFormats
import MVKernels
import MVModel

/// Turns a float checkpoint plus calibrated activation ranges into the integer-only parameters of
/// the int8 executor (see the quantisation spec in README.md):
/// - weights per output channel, symmetric int8 in [−127, 127], BatchNorm folded first;
/// - biases int32 at input_scale · weight_scale[c];
/// - every rescale as a fixed-point multiplier and shift (`quantizeMultiplier`);
/// - SiLU/GELU as 256-entry tables from the pre-activation to the output quantisation;
/// - LayerNorm, softmax and residual additions as the integer kernels' parameters.
/// All floating point happens here, once; the executor only reads integers.
public struct Int8Compiler {
    public let checkpoint: Checkpoint
    public private(set) var activations: [String: QuantParams]
    public private(set) var model: QuantizedModelBuilder
    /// E[x xᵀ] of GEMM inputs by tensor name: with it, those layers' weights are rounded with
    /// error compensation (`ErrorCompensatingRounding`) instead of to nearest.
    let inputSecondMoments: [String: [Double]]
    var graph: MobileViTGraph { checkpoint.graph }

    /// - Parameters:
    ///   - ranges: calibrated [lo, hi] of every tensor named in `TensorNames` (as the float
    ///     executor reports them).
    ///   - channelRanges: per-channel [lo, hi]; the tensors around depthwise convolutions (the
    ///     expand and depthwise outputs of inverted residual blocks, and their pre-activations) are
    ///     quantised per channel when given.
    ///   - inputSecondMoments: E[x xᵀ] of the tensors in `gemmInputTensors` (optional).
    public init(checkpoint: Checkpoint, ranges: [String: (lo: Float, hi: Float)],
                channelRanges: [String: [(lo: Float, hi: Float)]] = [:],
                inputSecondMoments: [String: [Double]] = [:], calibration: JSON) throws {
        self.checkpoint = checkpoint
        self.inputSecondMoments = inputSecondMoments
        model = QuantizedModelBuilder(config: checkpoint.config, preprocessor: checkpoint.preprocessor)
        model.calibration = calibration
        var acts: [String: QuantParams] = [:]
        for (name, r) in ranges { acts[name] = QuantParams(lo: r.lo, hi: r.hi) }
        for name in Self.perChannelTensors(checkpoint.graph) {
            if let r = channelRanges[name] { acts[name] = QuantParams(channelRanges: r) }
        }
        // Pixels rescaled by 1/255 are exactly representable with scale 1/255, zero point −128.
        if let r = ranges[TensorNames.input], r.lo >= -1e-6, r.hi <= 1 + 1e-6 {
            acts[TensorNames.input] = QuantParams(scale: 1.0 / 255, zeroPoint: -128)
        }
        // A MobileViT block's concat buffer covers both of its producers.
        for case let .mobileViT(block) in checkpoint.graph.stages {
            guard let d = block.downsampling, !d.useResidual else {
                throw InputError("MobileViT blocks without a stride-2 downsampling layer are not supported by the int8 compiler")
            }
            guard let a = ranges[d.reduce.name], let b = ranges[block.projection.name] else {
                throw InputError("calibration is missing ranges for \(block.name)")
            }
            acts[TensorNames.concat(block)] = QuantParams(lo: min(a.lo, b.lo), hi: max(a.hi, b.hi))
        }
        for (name, p) in acts.sorted(by: { $0.key < $1.key }) where !p.isPlausible {
            throw InputError("the activation range of '\(name)' (scale \(p.scale)) is out of what a model file holds "
                             + "(scales \(QuantParams.plausibleScale)): is the float model broken?")
        }
        activations = acts
        try compileAll()
        model.activations = activations
    }

    /// Tensors quantised per channel:
    /// - the inputs of depthwise convolutions (the expand outputs), where channels' ranges differ by
    ///   orders of magnitude and the depthwise weights (BatchNorm folded) amplify the noise of a
    ///   coarsely quantised channel; the depthwise conv folds the per-channel scales into its
    ///   weights. Its output stays per tensor: folding per-channel scales into the next pointwise
    ///   conv's weights costs more weight precision than it saves (measured: −6 dB SQNR there).
    /// - every pre-activation read through a table (SiLU): the producing GEMM requantises per
    ///   channel anyway, so per-channel scales and tables cost nothing in the kernels.
    public static func perChannelTensors(_ graph: MobileViTGraph) -> [String] {
        var blocks: [InvertedResidual] = []
        var tables: [String] = []
        for stage in graph.stages {
            switch stage {
            case let .mobileNet(_, b): blocks += b
            case let .mobileViT(m):
                if let d = m.downsampling { blocks.append(d) }
                tables += m.transformer.filter { TensorNames.usesTable($0.activation) }.map(\.intermediate.name)
            }
        }
        tables += graph.convolutions.filter { TensorNames.usesTable($0.activation) }.map(\.name)
        return blocks.map(\.expand.name) + tables.map(TensorNames.preact)
    }

    /// The input tensors of the layers run as int8 GEMMs (1×1 convolutions, linear layers and the
    /// classifier), named as the float executor reports them.
    public static func gemmInputTensors(_ graph: MobileViTGraph) throws -> Set<String> {
        Set(try graph.int8Operators().compactMap(\.gemmInput))
    }

    func params(_ name: String) throws -> QuantParams {
        guard let p = activations[name] else { throw InputError("calibration has no range for '\(name)'") }
        return p
    }

    // MARK: Walk (the one the int8 executor takes too)

    mutating func compileAll() throws {
        for op in try graph.int8Operators() {
            switch op {
            case let .conv(l, input, output): try conv(l, input: input, output: output)
            case let .linear(l, input, output, activation): try linear(l, input: input, output: output, activation: activation)
            case let .add(name, a, b): try add(name: name, a: a, b: b, output: name)
            case let .layerNorm(l, input, output): try layerNorm(l, input: input, output: output)
            case let .attention(t): try attention(t)
            case let .pool(input): try pool(input: input)
            case .classifier: try classifier()
            }
        }
    }

    // MARK: Operators

    /// Per-output-channel symmetric int8 weights: scale = max|w|/127 (1 for an all-zero channel),
    /// but never below `minimumScales[c]`.
    static func quantizeWeights(_ w: [Float], channels: Int, minimumScales: [Double]? = nil) -> (q: [Int8], scales: [Double]) {
        let per = w.count / channels
        var q = [Int8](repeating: 0, count: w.count)
        var scales = [Double](repeating: 1, count: channels)
        for c in 0..<channels {
            var m: Float = 0
            for i in 0..<per { m = max(m, abs(w[c * per + i])) }
            var s = m > 0 ? Double(m) / 127 : 1
            if let minimumScales { s = max(s, minimumScales[c]) }
            scales[c] = s
            for i in 0..<per {
                q[c * per + i] = Int8(max(-127, min(127, (Double(w[c * per + i]) / s).rounded())))
            }
        }
        return (q, scales)
    }

    /// `quantizeWeights`, then, given the input's second moment E[x xᵀ], the codes re-rounded with
    /// error compensation (`ErrorCompensatingRounding`; the scales stay). The one rounding rule of
    /// the compiler and of its float simulation (`FakeQuantization.quantizedWeights`).
    static func roundWeights(_ w: [Float], channels: Int, minimumScales: [Double]? = nil,
                             inputSecondMoment h: [Double]?) -> (q: [Int8], scales: [Double]) {
        var (q, scales) = quantizeWeights(w, channels: channels, minimumScales: minimumScales)
        if let h, let rounded = ErrorCompensatingRounding.round(weights: w, outputs: channels, inputs: w.count / channels,
                                                                scales: scales, secondMoment: h) {
            q = rounded
        }
        return (q, scales)
    }

    /// Largest |bias| in accumulator units: leaves headroom so bias + Σ w·x never overflows int32.
    static let biasLimit = Double(1 << 24)

    static func quantizeBias(_ b: [Float], inputScale: Double, weightScales: [Double]) -> [Int32] {
        zip(b, weightScales).map { v, s in
            Int32(max(Double(Int32.min + 1), min(Double(Int32.max), (Double(v) / (inputScale * s)).rounded())))
        }
    }

    /// Stores weights, bias, per-channel requantisation, clamp and optional table(s). `input` may be
    /// per channel: its scales are folded into the float weights first (channel of weight element
    /// i given by `inputChannel`), so the integer input needs no per-channel handling.
    /// Which input channel a weight element of [O][I/g][k][k] (or [O][I]) reads.
    struct WeightLayout {
        let taps: Int
        let inputChannelsPerGroup: Int
        let depthwise: Bool

        func inputChannel(_ i: Int) -> Int { depthwise ? i / taps : (i / taps) % inputChannelsPerGroup }
    }

    mutating func storeOperator(name: String, weights wf: [Float], shape: [Int], bias bf: [Float],
                                layout: WeightLayout, input: QuantParams, activation: Activation,
                                output: QuantParams, preactName: String, inputSecondMoment: [Double]? = nil) throws {
        let cout = shape[0]
        var w = wf
        var inputScale = input.scale
        if let cs = input.channelScales {
            for i in 0..<w.count { w[i] = Float(Double(w[i]) * cs[layout.inputChannel(i)]) }
            inputScale = 1
        }
        // A channel whose weights are tiny next to its bias (a dead channel, or one whose input
        // scale is tiny) gets a coarser weight scale, so its bias fits the accumulator.
        let minimumScales = bf.map { Double(abs($0)) / (inputScale * Self.biasLimit) }
        // Error compensation needs the moment of what the kernel multiplies: not available for
        // per-channel inputs, whose scales are folded into the weights above.
        let (q, scales) = Self.roundWeights(w, channels: cout, minimumScales: minimumScales,
                                            inputSecondMoment: input.channelScales == nil ? inputSecondMoment : nil)
        let bias = Self.quantizeBias(bf, inputScale: inputScale, weightScales: scales)
        var requantTo = output
        var clampMin: Int32 = -128, clampMax: Int32 = 127
        let needsTable = TensorNames.usesTable(activation) || (activation != .none && output.isPerChannel)
        if needsTable {
            let pre = try params(preactName)
            requantTo = pre
            let function: ActivationTable.Function
            switch activation {
            case .silu: function = .silu
            case .gelu: function = .gelu
            case .relu, .relu6, .none: function = .identity
            }
            var entries: [Int8] = []
            let channels = pre.isPerChannel || output.isPerChannel ? cout : 1
            for c in 0..<channels {
                var table = try ActivationTable.make(function: function, inputScale: pre.channelScale(c),
                                                     inputZeroPoint: pre.zeroPoint, outputScale: output.channelScale(c),
                                                     outputZeroPoint: output.zeroPoint).entries
                if activation == .relu || activation == .relu6 {
                    // Identity table, then the clamp in output codes.
                    let top = activation == .relu6 ? Int32(min(127, Double(output.zeroPoint) + (6 / output.channelScale(c)).rounded())) : 127
                    table = table.map { Int8(min(max(Int32($0), output.zeroPoint), top)) }
                }
                entries += table
            }
            model.set(name + ".lut", int8: entries, shape: [channels, 256])
        } else {
            switch activation {
            case .relu: clampMin = output.zeroPoint
            case .relu6:
                clampMin = output.zeroPoint
                clampMax = Int32(min(127, Double(output.zeroPoint) + (6 / output.scale).rounded()))
            default: break
            }
        }
        let pairs = (0..<cout).map { quantizeMultiplier(inputScale * scales[$0] / requantTo.channelScale($0)) }
        model.set(name + ".weight", int8: q, shape: shape)
        model.set(name + ".bias", int32: bias)
        model.set(name + ".multiplier", int32: pairs.map(\.multiplier))
        model.set(name + ".shift", int32: pairs.map(\.shift))
        model.scalars[name + ".output_zero_point"] = Int64(requantTo.zeroPoint)
        model.scalars[name + ".clamp_min"] = Int64(clampMin)
        model.scalars[name + ".clamp_max"] = Int64(clampMax)
    }

    mutating func conv(_ l: ConvLayer, input: String, output: String) throws {
        let folded = FoldedConv(l, from: checkpoint)
        let layout = WeightLayout(taps: l.kernel * l.kernel, inputChannelsPerGroup: l.inChannels / l.groups,
                                  depthwise: l.isDepthwise)
        let inputParams = try params(input), outputParams = try params(output)
        try storeOperator(name: l.name, weights: folded.weight, shape: l.weightShape, bias: folded.bias, layout: layout,
                          input: inputParams, activation: l.activation, output: outputParams,
                          preactName: TensorNames.preact(l.name),
                          inputSecondMoment: l.kernel == 1 && l.groups == 1 ? inputSecondMoments[input] : nil)
    }

    mutating func linear(_ l: LinearLayer, input: String, output: String, activation: Activation) throws {
        let w = checkpoint.tensor("\(l.name).weight").values
        let b = l.bias ? checkpoint.tensor("\(l.name).bias").values : [Float](repeating: 0, count: l.outFeatures)
        let layout = WeightLayout(taps: 1, inputChannelsPerGroup: l.inFeatures, depthwise: false)
        let inputParams = try params(input), outputParams = try params(output)
        try storeOperator(name: l.name, weights: w, shape: [l.outFeatures, l.inFeatures], bias: b, layout: layout,
                          input: inputParams, activation: activation, output: outputParams,
                          preactName: TensorNames.preact(l.name), inputSecondMoment: inputSecondMoments[input])
    }

    mutating func add(name: String, a: String, b: String, output: String) throws {
        let pa = try params(a), pb = try params(b), py = try params(output)
        let p = try AddInt8.Parameters.make(inputScaleA: pa.scale, inputZeroPointA: pa.zeroPoint,
                                            inputScaleB: pb.scale, inputZeroPointB: pb.zeroPoint,
                                            outputScale: py.scale, outputZeroPoint: py.zeroPoint)
        for (k, v) in [("multiplier_a", p.multiplierA), ("shift_a", p.shiftA), ("multiplier_b", p.multiplierB),
                       ("shift_b", p.shiftB), ("output_multiplier", p.outputMultiplier), ("output_shift", p.outputShift),
                       ("clamp_min", p.clampMin), ("clamp_max", p.clampMax)] {
            model.scalars["\(name).add.\(k)"] = Int64(v)
        }
    }

    mutating func layerNorm(_ l: LayerNormLayer, input: String, output: String) throws {
        let pi = try params(input), po = try params(output)
        let gamma = checkpoint.tensor("\(l.name).weight").values.map(Double.init)
        let beta = checkpoint.tensor("\(l.name).bias").values.map(Double.init)
        let p = try IntegerLayerNorm.Parameters.make(inputScale: pi.scale, inputZeroPoint: pi.zeroPoint,
                                                     outputScale: po.scale, outputZeroPoint: po.zeroPoint,
                                                     gamma: gamma, beta: beta, eps: l.eps)
        model.scalars["\(l.name).variance_shift"] = Int64(p.varianceShift)
        model.scalars["\(l.name).epsilon_term"] = Int64(bitPattern: p.epsilonTerm)
        model.scalars["\(l.name).output_zero_point"] = Int64(p.outputZeroPoint)
        model.set("\(l.name).gamma_multiplier", int32: p.gammaMultipliers)
        model.set("\(l.name).gamma_shift", int32: p.shifts)
        model.set("\(l.name).beta", int64: p.biases)
    }

    /// Softmax over QKᵀ accumulators: the score unit is s_q·s_k/√d_head.
    mutating func attention(_ t: TransformerLayer) throws {
        let q = try params(t.query.name), k = try params(t.key.name)
        let probs = QuantParams(scale: 1.0 / 255, zeroPoint: -128)
        activations[TensorNames.probs(t)] = probs
        let p = try IntegerSoftmax.Parameters.make(inputScale: q.scale * k.scale / Double(t.headSize).squareRoot(),
                                                   outputScale: probs.scale, outputZeroPoint: probs.zeroPoint)
        let name = "\(t.name).softmax"
        model.scalars["\(name).exp_multiplier"] = Int64(p.expMultiplier)
        model.scalars["\(name).exp_shift"] = Int64(p.expShift)
        model.scalars["\(name).max_difference"] = Int64(p.maxDifference)
        model.scalars["\(name).output_multiplier"] = Int64(p.outputMultiplier)
        model.scalars["\(name).output_shift"] = Int64(p.outputShift)
        model.scalars["\(name).output_zero_point"] = Int64(p.outputZeroPoint)
        // P·V requantises probs × V to the context quantisation.
        let v = try params(t.value.name), ctx = try params(TensorNames.context(t))
        let pv = quantizeMultiplier(probs.scale * v.scale / ctx.scale)
        model.scalars["\(t.name).pv.multiplier"] = Int64(pv.multiplier)
        model.scalars["\(t.name).pv.shift"] = Int64(pv.shift)
    }

    /// The pool's rescale without the 1/(H·W), which the executor folds in with integer arithmetic
    /// for each input size.
    mutating func pool(input: String) throws {
        let pi = try params(input), po = try params(TensorNames.pooler)
        let m = quantizeMultiplier(pi.scale / po.scale)
        model.scalars["\(TensorNames.pooler).multiplier"] = Int64(m.multiplier)
        model.scalars["\(TensorNames.pooler).shift"] = Int64(m.shift)
    }

    /// The classifier keeps int32 accumulators; `logit_scale[c]` = s_pool · s_w[c] dequantises them.
    mutating func classifier() throws {
        let l = graph.classifier
        let pi = try params(TensorNames.pooler)
        let w = checkpoint.tensor("\(l.name).weight").values
        let b = l.bias ? checkpoint.tensor("\(l.name).bias").values : [Float](repeating: 0, count: l.outFeatures)
        let (q, scales) = Self.roundWeights(w, channels: l.outFeatures, inputSecondMoment: inputSecondMoments[TensorNames.pooler])
        model.set(l.name + ".weight", int8: q, shape: [l.outFeatures, l.inFeatures])
        model.set(l.name + ".bias", int32: Self.quantizeBias(b, inputScale: pi.scale, weightScales: scales))
        model.set(l.name + ".logit_scale", float32: scales.map { Float(pi.scale * $0) })
    }
}
