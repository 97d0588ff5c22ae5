import MVFormats

/// One operator of the network: what it computes, the tensors it reads (in order) and the one it
/// writes. Tensor names follow `TensorNames`; every name is written by exactly one operator (or is
/// the network input).
public struct Operator: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A convolution with BatchNorm folded and its activation.
        case conv(ConvLayer)
        /// A fully connected layer over the last axis, followed by `activation`.
        case linear(LinearLayer, activation: Activation)
        /// Element-wise sum of the two inputs.
        case add
        case layerNorm(LayerNormLayer)
        /// Softmax(QKᵀ/√d)·V of one transformer layer among the tokens that share a position inside
        /// their patch, head by head. Inputs: query, key, value; output: the context.
        case attention(TransformerLayer)
        /// A feature map into patch tokens: resized (bilinear, align_corners=False) up to a multiple of
        /// the patch size when needed. How the tokens are ordered in memory is the executor's choice
        /// (transformers' [P, N, C], or pixel order with index maps); their shape here is the grid's.
        case unfold(patchSize: Int)
        /// Tokens back into a feature map of the size of `sizeOf` (the unfold's input), resized down
        /// when the unfold resized up.
        case fold(patchSize: Int, sizeOf: String)
        /// Channel concatenation of the inputs. The inputs are written straight into slices of the
        /// concat's buffer (`Network.concatSlices`), so the operator itself moves nothing.
        case concat
        /// Mean over every pixel: [H, W, C] → [1, 1, C].
        case globalAveragePool
        /// Bilinear resize (align_corners=False) to the spatial size of `sizeOf`, channels kept: the
        /// upsampling of DeepLabV3's pooled branch. Its input is stored at its output's quantisation
        /// (the resize moves codes; from a 1×1 map it is a broadcast).
        case resize(sizeOf: String)
        /// The final linear layer, producing the logits (int32 accumulators in the int8 model).
        case classifier(LinearLayer)
        /// The final 1×1 convolution (with bias) of a dense-prediction head, producing logits at
        /// every pixel (int32 accumulators in the int8 model).
        case pixelClassifier(ConvLayer)
    }

    public var kind: Kind
    public var inputs: [String]
    public var output: String

    public init(_ kind: Kind, inputs: [String], output: String) {
        self.kind = kind
        self.inputs = inputs
        self.output = output
    }

    /// Whether the operator only reorders or gathers memory (unfold, fold, concat): its output is
    /// no new activation, has no quantisation of its own, and is not reported to observers.
    public var isLayout: Bool {
        switch kind {
        case .unfold, .fold, .concat, .resize: return true
        default: return false
        }
    }

    /// Whether the float executor reports the output to observers: every operator that computes
    /// something, and a resize (a map of its own shape, which transformers reports too).
    public var isReported: Bool {
        if case .resize = kind { return true }
        return !isLayout
    }

    /// The tensor an int8 GEMM reads (1×1 stride-1 convolutions, linear layers, the classifier),
    /// else nil: the tensors whose second moments error-compensating rounding needs.
    public var gemmInput: String? {
        switch kind {
        case let .conv(l): return l.isPointwise ? inputs[0] : nil
        case .linear, .classifier, .pixelClassifier: return inputs[0]
        default: return nil
        }
    }

    /// The layer whose activation a table may implement, with that activation.
    public var activation: Activation {
        switch kind {
        case let .conv(l): return l.activation
        case let .linear(_, a): return a
        default: return .none
        }
    }
}

/// Where a concat's input lives inside the concat's buffer.
public struct ConcatSlice: Sendable, Equatable {
    /// The concat's output tensor.
    public var concat: String
    public var channelOffset: Int
}

/// The spatial shape of a tensor at a given input size: [H, W, C] for feature maps (and for tokens,
/// on their patch grid), [1, 1, C] for pooled vectors.
public struct TensorShape: Sendable, Equatable {
    public var height: Int
    public var width: Int
    public var channels: Int

    public init(height: Int, width: Int, channels: Int) {
        self.height = height
        self.width = width
        self.channels = channels
    }

    public var pixels: Int { height * width }
    public var count: Int { height * width * channels }
}

/// The network as one list of operators in execution order, with the plan annotations every
/// executor honours. It is the only walk of the architecture: the float executor, the int8
/// compiler, the int8 executor, calibration and the sensitivity study all interpret this list.
public struct Network: Sendable {
    public let operators: [Operator]
    /// Concat inputs, written by their producers straight into the concat's buffer.
    public let concatSlices: [String: ConcatSlice]
    /// Further names under which the float executor reports a tensor (transformers' module paths:
    /// stage outputs, blocks without a skip connection, a transformer's output), in report order.
    public let aliases: [String: [String]]
    /// Index of the last operator that reads each tensor (the output: the last operator).
    public let lastUse: [String: Int]
    /// The tensors that are patch tokens (from an unfold up to its fold's input), with the patch size.
    public let tokenPatchSize: [String: Int]
    public let inputChannels: Int

    public static let input = TensorNames.input

    init(operators: [Operator], aliases: [String: [String]], inputChannels: Int) {
        self.operators = operators
        self.aliases = aliases
        self.inputChannels = inputChannels
        var slices: [String: ConcatSlice] = [:]
        var channels: [String: Int] = [Self.input: inputChannels]
        var last: [String: Int] = [:]
        var tokens: [String: Int] = [:]
        for (i, op) in operators.enumerated() {
            switch op.kind {
            case let .unfold(ps): tokens[op.output] = ps
            case .fold: break
            default: if let ps = tokens[op.inputs[0]] { tokens[op.output] = ps }
            }
            for t in op.inputs { last[t] = i }
            if case .concat = op.kind {
                var offset = 0
                for t in op.inputs {
                    slices[t] = ConcatSlice(concat: op.output, channelOffset: offset)
                    offset += channels[t] ?? 0
                }
            }
            channels[op.output] = Self.outputChannels(op, channels)
        }
        if let final = operators.last { last[final.output] = operators.count - 1 }
        // A resize's input is stored at the quantisation of what the resize writes.
        var sharedQuantization: [String: String] = [:]
        for op in operators {
            if case .resize = op.kind { sharedQuantization[op.inputs[0]] = op.output }
        }
        self.sharedQuantization = sharedQuantization
        // A concat's buffer lives as long as any of its slices is read.
        for (t, s) in slices { last[s.concat] = max(last[s.concat] ?? 0, last[t] ?? 0) }
        concatSlices = slices
        producer = Dictionary(operators.map { ($0.output, $0) }, uniquingKeysWith: { a, _ in a })
        lastUse = last
        tokenPatchSize = tokens
    }

    static func outputChannels(_ op: Operator, _ channels: [String: Int]) -> Int {
        switch op.kind {
        case let .conv(l), let .pixelClassifier(l): return l.outChannels
        case let .linear(l, _), let .classifier(l): return l.outFeatures
        case .concat: return op.inputs.reduce(0) { $0 + (channels[$1] ?? 0) }
        default: return channels[op.inputs[0]] ?? 0
        }
    }

    /// The final operator's output (the logits).
    public var output: String { operators.last!.output }

    /// Whether the network predicts a label per pixel (its logits are a map) rather than per image.
    public var isDense: Bool {
        if case .pixelClassifier = operators.last?.kind { return true }
        return false
    }

    /// Tensors stored at the quantisation of another: a resize's input at its output's.
    let sharedQuantization: [String: String]

    /// The tensor whose quantisation (and, for concat inputs, storage) a tensor uses: a concat's
    /// input is stored at the concat's quantisation, an unfold's or fold's output keeps its input's,
    /// a resize's input takes its output's.
    public func quantizedName(_ tensor: String) -> String {
        if let s = concatSlices[tensor] { return s.concat }
        if let shared = sharedQuantization[tensor] { return quantizedName(shared) }
        if let op = producer[tensor], op.isLayout, op.kind != .concat, sharedQuantization[op.inputs[0]] == nil {
            return quantizedName(op.inputs[0])
        }
        return tensor
    }

    /// The name under which a tensor's values are reported to observers: an unfold's or fold's
    /// output is its input reordered (and possibly resized), reported under the input's name.
    public func observedName(_ tensor: String) -> String {
        if let op = producer[tensor], op.isLayout, op.kind != .concat { return observedName(op.inputs[0]) }
        return tensor
    }

    /// The reported tensor whose second moment E[x xᵀ] error-compensating rounding uses for an
    /// operator's weights (its GEMM input), else nil.
    public func secondMomentTensor(_ op: Operator) -> String? { op.gemmInput.map(observedName) }

    /// Operator by the tensor it writes.
    public let producer: [String: Operator]

    /// The shape of every tensor for an H×W input, in execution order of the producers.
    /// - Throws: `InputError` when the input is too small for the network (a convolution with no
    ///   output pixel).
    public func shapes(height: Int, width: Int) throws -> [String: TensorShape] {
        var s: [String: TensorShape] = [Self.input: TensorShape(height: height, width: width, channels: inputChannels)]
        for op in operators {
            let x = s[op.inputs[0]]!
            var y = x
            switch op.kind {
            case let .conv(l), let .pixelClassifier(l):
                let (oh, ow) = l.outputSize(x.height, x.width)
                guard oh >= 1, ow >= 1 else {
                    throw InputError("input \(height)×\(width) is too small: \(l.name) would have no output pixel")
                }
                y = TensorShape(height: oh, width: ow, channels: l.outChannels)
            case let .linear(l, _), let .classifier(l): y.channels = l.outFeatures
            case let .unfold(ps):
                y.height = (x.height + ps - 1) / ps * ps
                y.width = (x.width + ps - 1) / ps * ps
            case let .fold(_, sizeOf):
                y.height = s[sizeOf]!.height
                y.width = s[sizeOf]!.width
            case .concat: y.channels = op.inputs.reduce(0) { $0 + s[$1]!.channels }
            case .globalAveragePool: y = TensorShape(height: 1, width: 1, channels: x.channels)
            case let .resize(sizeOf):
                y.height = s[sizeOf]!.height
                y.width = s[sizeOf]!.width
            case .add, .layerNorm, .attention: break
            }
            s[op.output] = y
        }
        return s
    }

    /// The tensors around which activations are quantised per channel:
    /// - the inputs of depthwise convolutions, where channels' ranges differ by orders of magnitude
    ///   and the depthwise weights (BatchNorm folded) amplify the noise of a coarsely quantised
    ///   channel; the depthwise conv folds the per-channel scales into its weights. Its output stays
    ///   per tensor: folding per-channel scales into the next pointwise conv's weights costs more
    ///   weight precision than it saves (measured: −6 dB SQNR there).
    /// - every pre-activation read through a table (SiLU): the producing GEMM requantises per
    ///   channel anyway, so per-channel scales and tables cost nothing in the kernels.
    public var perChannelTensors: [String] {
        var names: [String] = []
        for op in operators {
            if case let .conv(l) = op.kind, l.isDepthwise { names.append(op.inputs[0]) }
        }
        for op in operators where TensorNames.usesTable(op.activation) { names.append(TensorNames.preact(op.output)) }
        return names
    }

    /// The input tensors of the layers run as int8 GEMMs, named as the float executor reports them.
    public var gemmInputTensors: Set<String> { Set(operators.compactMap(secondMomentTensor)) }
}
