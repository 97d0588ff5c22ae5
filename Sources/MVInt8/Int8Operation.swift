import MVFormats
import MVKernels
import MVModel

/// One operator of the network prepared for the int8 kernels: weights packed, parameters read
/// from the `.mvq` file and checked. Size-dependent state (buffers, index maps, resize plans)
/// lives in the plan (`Int8Plan`).
enum Int8Operation {
    case conv(Int8Conv)
    case linear(Int8Linear)
    case add(AddInt8.Parameters)
    case layerNorm(IntegerLayerNorm.Parameters)
    case attention(Int8Attention)
    /// Unfold and fold: a resize when the grid is not a multiple of the patch size, else nothing.
    case resample
    /// A bilinear resize into a buffer of its own (or a concat slice), codes kept.
    case resize
    /// The inputs were written into the concat's buffer.
    case concat
    case pool(Int8Pool)
    case classifier(Int8Classifier)

    init(_ op: Operator, network: Network, model: QuantizedModel, isa: KernelISA) throws {
        func params(_ tensor: String) throws -> QuantParams { try model.activation(network.quantizedName(tensor)) }
        switch op.kind {
        case let .conv(l):
            self = .conv(try Int8Conv(l, model: model, input: try params(op.inputs[0]), isa: isa))
        case let .linear(l, _):
            self = .linear(try Int8Linear(l, model: model, input: try params(op.inputs[0]), isa: isa))
        case .add:
            self = .add(try AddRecord(model, op.output).parameters(a: try params(op.inputs[0]), b: try params(op.inputs[1]),
                                                                     output: try params(op.output), name: op.output, model: model))
        case let .layerNorm(l):
            self = .layerNorm(try LayerNormRecord(model, l).parameters(channels: l.channels, name: l.name, model: model))
        case let .attention(t):
            self = .attention(try Int8Attention(t, model: model, query: try params(op.inputs[0]), key: try params(op.inputs[1]),
                                                value: try params(op.inputs[2]), context: try params(op.output)))
        case .unfold, .fold:
            self = .resample
        case .resize:
            self = .resize
        case .concat:
            self = .concat
        case .globalAveragePool:
            self = .pool(try Int8Pool(model: model, name: op.output, input: try params(op.inputs[0]), output: try params(op.output)))
        case let .classifier(l):
            self = .classifier(try Int8Classifier(name: l.name, classes: l.outFeatures, inputs: l.inFeatures, dense: false,
                                                  model: model, input: try params(op.inputs[0]), isa: isa))
        case let .pixelClassifier(l):
            self = .classifier(try Int8Classifier(name: l.name, classes: l.outChannels, inputs: l.inChannels, dense: true,
                                                  model: model, input: try params(op.inputs[0]), isa: isa))
        }
    }
}

extension Int8Operation {
    var isResize: Bool {
        if case .resize = self { return true }
        return false
    }
}

/// Softmax(QKᵀ/√d)·V of one transformer layer: the integer softmax, the P·V requantisation and the
/// zero points of its operands.
struct Int8Attention {
    let heads: Int
    let headSize: Int
    let softmax: IntegerSoftmax.Parameters
    let valueRequantization: RequantizationParameters
    let query, key, value, probs, context: QuantParams

    init(_ t: TransformerLayer, model: QuantizedModel, query: QuantParams, key: QuantParams, value: QuantParams,
         context: QuantParams) throws {
        heads = t.heads
        headSize = t.headSize
        self.query = query
        self.key = key
        self.value = value
        self.context = context
        probs = try model.activation(TensorNames.probs(t))
        let record = try AttentionRecord(model, t)
        softmax = try record.softmaxParameters(probs: probs, name: t.name, model: model)
        valueRequantization = record.valueRequantization
    }
}

/// Global average pooling: the stored s_in/s_out rescale; the 1/(H·W) is folded in per input size.
struct Int8Pool {
    let rescale: PoolRecord
    let inputZeroPoint: Int32
    let outputZeroPoint: Int32

    init(model: QuantizedModel, name: String, input: QuantParams, output: QuantParams) throws {
        rescale = try PoolRecord(model, name)
        inputZeroPoint = input.zeroPoint
        outputZeroPoint = output.zeroPoint
    }

    /// Integer-only pool parameters for H·W pixels from the stored s_in/s_out multiplier: the
    /// division by H·W is done in 64-bit integers, so every platform derives the same bits.
    func parameters(pixelCount: Int) throws -> GlobalAveragePoolInt8.Parameters {
        func bitLength(_ x: UInt64) -> Int { 64 - x.leadingZeroBitCount }
        let l = 31 - bitLength(UInt64(255 * pixelCount))  // 255·H·W·2^l < 2^31
        let q = (UInt64(rescale.multiplier) << 32) / UInt64(pixelCount)
        var b = bitLength(q)
        var m: UInt64 = b > 31 ? (q + (1 << UInt64(b - 32))) >> UInt64(b - 31) : q << UInt64(31 - b)
        if m == 1 << 31 {
            m >>= 1
            b += 1
        }
        // real = m·2^−31 · 2^(b − 63 − h0 − l)  ⇒  shift = 63 + h0 + l − b.
        var shift = 63 + Int(rescale.shift) + l - b
        if shift > 62 { m = 0; shift = 0 }
        return try GlobalAveragePoolInt8.Parameters.restored(pixelCount: pixelCount, inputZeroPoint: inputZeroPoint,
                                                             preShift: Int32(l), multiplier: Int32(m), shift: Int32(shift),
                                                             outputZeroPoint: outputZeroPoint)
    }
}

/// The classifier (per image, or per pixel for a dense head): int32 accumulators, dequantised by
/// `logitScale` (s_in · s_w[c]); a dense head's `labelRescale` brings every class to one scale
/// for the integer label map.
struct Int8Classifier {
    let packed: PackedInt8Matrix
    let logitScale: [Float]
    let labelRescale: RequantizationParameters?

    init(name: String, classes: Int, inputs: Int, dense: Bool, model: QuantizedModel, input: QuantParams, isa: KernelISA) throws {
        let record = try ClassifierRecord(model, name: name, classes: classes, inputs: inputs, dense: dense)
        packed = record.bias.withUnsafeBufferPointer { bias in
            PackedInt8Matrix(rows: record.weights, rowStride: inputs, n: classes, k: inputs,
                             bias: bias.baseAddress, aZeroPoint: input.zeroPoint, isa: isa)
        }
        logitScale = record.logitScale
        labelRescale = record.labelRescale.map { RequantizationParameters(multipliers: $0.multipliers, shifts: $0.shifts) }
    }
}
