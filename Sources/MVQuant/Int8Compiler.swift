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
    /// The operator list the compiler walks (the one the executors interpret).
    let network: Network

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
        let network = checkpoint.graph.network
        self.network = network
        for name in network.perChannelTensors {
            if let r = channelRanges[name] { acts[name] = QuantParams(channelRanges: r) }
        }
        // Pixels rescaled by 1/255 are exactly representable with scale 1/255, zero point −128.
        if let r = ranges[TensorNames.input], r.lo >= -1e-6, r.hi <= 1 + 1e-6 {
            acts[TensorNames.input] = QuantParams(scale: 1.0 / 255, zeroPoint: -128)
        }
        // A concat's buffer holds all of its inputs at one quantisation, covering every input's range.
        for op in network.operators where op.kind == .concat {
            let parts = op.inputs.compactMap { ranges[$0] }
            guard parts.count == op.inputs.count else { throw InputError("calibration is missing ranges for \(op.output)") }
            acts[op.output] = QuantParams(lo: parts.map(\.lo).min()!, hi: parts.map(\.hi).max()!)
        }
        for (name, p) in acts.sorted(by: { $0.key < $1.key }) where !p.isPlausible {
            throw InputError("the activation range of '\(name)' (scale \(p.scale)) is out of what a model file holds "
                             + "(scales \(QuantParams.plausibleScale)): is the float model broken?")
        }
        activations = acts
        try compileAll()
        model.activations = activations
    }

    /// The quantisation of a tensor as the int8 model stores it (a concat input's is the concat's).
    func params(_ name: String) throws -> QuantParams {
        let stored = network.quantizedName(name)
        guard let p = activations[stored] else { throw InputError("calibration has no range for '\(stored)'") }
        return p
    }

    // MARK: Walk (the one the int8 executor takes too)

    mutating func compileAll() throws {
        for op in network.operators {
            let moment = network.secondMomentTensor(op).flatMap { inputSecondMoments[$0] }
            switch op.kind {
            case let .conv(l): try conv(l, input: op.inputs[0], output: op.output, inputSecondMoment: moment)
            case let .linear(l, activation):
                try linear(l, input: op.inputs[0], output: op.output, activation: activation, inputSecondMoment: moment)
            case .add: try add(a: op.inputs[0], b: op.inputs[1], output: op.output)
            case let .layerNorm(l): try layerNorm(l, input: op.inputs[0], output: op.output)
            case let .attention(t): try attention(t, query: op.inputs[0], key: op.inputs[1], value: op.inputs[2], context: op.output)
            case .globalAveragePool: try pool(input: op.inputs[0], output: op.output)
            case let .classifier(l):
                let w = checkpoint.tensor("\(l.name).weight").values
                let b = l.bias ? checkpoint.tensor("\(l.name).bias").values : [Float](repeating: 0, count: l.outFeatures)
                try classifier(l.name, weights: w, bias: b, classes: l.outFeatures, inputs: l.inFeatures, dense: false,
                               input: op.inputs[0], inputSecondMoment: moment)
            case let .pixelClassifier(l):
                let folded = FoldedConv(l, from: checkpoint)
                try classifier(l.name, weights: folded.weight, bias: folded.bias, classes: l.outChannels, inputs: l.inChannels,
                               dense: true, input: op.inputs[0], inputSecondMoment: moment)
            case .unfold, .fold, .concat, .resize: break  // layout only: no quantisation of their own
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
        var tables: [Int8]?
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
            tables = entries
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
        LayerRecord(weights: q, weightShape: shape, bias: bias, multipliers: pairs.map(\.multiplier), shifts: pairs.map(\.shift),
                    outputZeroPoint: requantTo.zeroPoint, clampMin: clampMin, clampMax: clampMax, table: tables)
            .write(to: &model, name)
    }

    mutating func conv(_ l: ConvLayer, input: String, output: String, inputSecondMoment: [Double]?) throws {
        let folded = FoldedConv(l, from: checkpoint)
        let layout = WeightLayout(taps: l.kernel * l.kernel, inputChannelsPerGroup: l.inChannels / l.groups,
                                  depthwise: l.isDepthwise)
        try storeOperator(name: l.name, weights: folded.weight, shape: l.weightShape, bias: folded.bias, layout: layout,
                          input: try params(input), activation: l.activation, output: try params(output),
                          preactName: TensorNames.preact(l.name), inputSecondMoment: inputSecondMoment)
    }

    mutating func linear(_ l: LinearLayer, input: String, output: String, activation: Activation,
                         inputSecondMoment: [Double]?) throws {
        let w = checkpoint.tensor("\(l.name).weight").values
        let b = l.bias ? checkpoint.tensor("\(l.name).bias").values : [Float](repeating: 0, count: l.outFeatures)
        let layout = WeightLayout(taps: 1, inputChannelsPerGroup: l.inFeatures, depthwise: false)
        try storeOperator(name: l.name, weights: w, shape: [l.outFeatures, l.inFeatures], bias: b, layout: layout,
                          input: try params(input), activation: activation, output: try params(output),
                          preactName: TensorNames.preact(l.name), inputSecondMoment: inputSecondMoment)
    }

    mutating func add(a: String, b: String, output: String) throws {
        let pa = try params(a), pb = try params(b), py = try params(output)
        let p = try AddInt8.Parameters.make(inputScaleA: pa.scale, inputZeroPointA: pa.zeroPoint,
                                            inputScaleB: pb.scale, inputZeroPointB: pb.zeroPoint,
                                            outputScale: py.scale, outputZeroPoint: py.zeroPoint)
        AddRecord(multiplierA: p.multiplierA, multiplierB: p.multiplierB, shift: p.shift, clampMin: p.clampMin, clampMax: p.clampMax)
            .write(to: &model, output)
    }

    mutating func layerNorm(_ l: LayerNormLayer, input: String, output: String) throws {
        let pi = try params(input), po = try params(output)
        let gamma = checkpoint.tensor("\(l.name).weight").values.map(Double.init)
        let beta = checkpoint.tensor("\(l.name).bias").values.map(Double.init)
        let p = try IntegerLayerNorm.Parameters.make(inputScale: pi.scale, inputZeroPoint: pi.zeroPoint,
                                                     outputScale: po.scale, outputZeroPoint: po.zeroPoint,
                                                     gamma: gamma, beta: beta, eps: l.eps)
        LayerNormRecord(varianceShift: p.varianceShift, epsilonTerm: p.epsilonTerm, gammaMultipliers: p.gammaMultipliers,
                        gammaShifts: p.shifts, betas: p.biases, outputZeroPoint: p.outputZeroPoint)
            .write(to: &model, l)
    }

    /// Softmax over QKᵀ accumulators: the score unit is s_q·s_k/√d_head; P·V requantises
    /// probs × V to the context quantisation.
    mutating func attention(_ t: TransformerLayer, query: String, key: String, value: String, context: String) throws {
        let q = try params(query), k = try params(key)
        let probs = QuantParams(scale: 1.0 / 255, zeroPoint: -128)
        activations[TensorNames.probs(t)] = probs
        let p = try IntegerSoftmax.Parameters.make(inputScale: q.scale * k.scale / Double(t.headSize).squareRoot(),
                                                   outputScale: probs.scale, outputZeroPoint: probs.zeroPoint)
        let v = try params(value), ctx = try params(context)
        let pv = quantizeMultiplier(probs.scale * v.scale / ctx.scale)
        AttentionRecord(expPreShift: p.expPreShift, expLeftShift: p.expLeftShift, expMultiplier: p.expMultiplier,
                        outputMultiplier: p.outputMultiplier, outputShift: p.outputShift, outputZeroPoint: p.outputZeroPoint,
                        valueMultiplier: pv.multiplier, valueShift: pv.shift)
            .write(to: &model, t)
    }

    /// The pool's rescale without the 1/(H·W), which the executor folds in with integer arithmetic
    /// for each input size.
    mutating func pool(input: String, output: String) throws {
        let m = quantizeMultiplier(try params(input).scale / params(output).scale)
        PoolRecord(multiplier: m.multiplier, shift: m.shift).write(to: &model, output)
    }

    /// The classifier keeps int32 accumulators; `logit_scale[c]` = s_in · s_w[c] dequantises them.
    /// A dense head's label map compares classes in integers, so it also gets, per class, the
    /// rescale s_w[c] / max(s_w) (≤ 1) to the coarsest class's scale.
    mutating func classifier(_ name: String, weights w: [Float], bias b: [Float], classes: Int, inputs: Int, dense: Bool,
                             input: String, inputSecondMoment: [Double]?) throws {
        let pi = try params(input)
        let (q, scales) = Self.roundWeights(w, channels: classes, inputSecondMoment: inputSecondMoment)
        var labelRescale: (multipliers: [Int32], shifts: [Int32])?
        if dense {
            let largest = scales.max()!
            let pairs = scales.map { quantizeMultiplier($0 / largest) }
            labelRescale = (pairs.map(\.multiplier), pairs.map(\.shift))
        }
        ClassifierRecord(weights: q, bias: Self.quantizeBias(b, inputScale: pi.scale, weightScales: scales),
                         logitScale: scales.map { Float(pi.scale * $0) }, labelRescale: labelRescale)
            .write(to: &model, name: name, classes: classes, inputs: inputs)
    }
}
