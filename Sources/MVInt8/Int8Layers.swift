import MVFormats
import MVKernels
import MVModel

/// A convolution prepared for the int8 kernels: weights packed once for the selected ISA,
/// requantisation, clamp and optional activation table.
struct Int8Conv {
    enum Kernel {
        case pointwise(PackedInt8Matrix)
        case depthwise(DepthwiseConv3x3Int8)
        case dense(Conv2DInt8)
    }

    let layer: ConvLayer
    let kernel: Kernel
    let output: OutputStage

    init(_ layer: ConvLayer, model: QuantizedModel, input: QuantParams, isa: KernelISA) throws {
        self.layer = layer
        let n = layer.name, cout = layer.outChannels, cin = layer.inChannels
        let record = try LayerRecord(model, n, weightShape: layer.weightShape)
        let requant = RequantizationParameters(multipliers: record.multipliers, shifts: record.shifts)
        output = OutputStage(record)
        let bias = record.bias
        switch layer.form {
        case .depthwise:
            guard layer.kernel == 3 else { throw InputError("\(model.path): \(n): only 3×3 depthwise convolutions are supported") }
            kernel = .depthwise(bias.withUnsafeBufferPointer { b in
                DepthwiseConv3x3Int8(weights: record.weights, bias: b.baseAddress, channels: cout,
                                     inputZeroPoint: input.zeroPoint, requantization: requant, isa: isa)
            })
        case .grouped:
            throw InputError("\(model.path): \(n): grouped convolutions are not supported")
        case .pointwise:
            kernel = .pointwise(bias.withUnsafeBufferPointer { b in
                PackedInt8Matrix(rows: record.weights, rowStride: cin, n: cout, k: cin, bias: b.baseAddress,
                                 aZeroPoint: input.zeroPoint, requantization: requant, isa: isa)
            })
        case .dense:
            kernel = .dense(bias.withUnsafeBufferPointer { b in
                Conv2DInt8(weights: record.weights, bias: b.baseAddress, inChannels: cin, outChannels: cout,
                           kernelSize: layer.kernel, stride: layer.stride, dilation: layer.dilation,
                           inputZeroPoint: input.zeroPoint,
                           requantization: requant, isa: isa)
            })
        }
    }
}

/// The zero point, clamp and optional activation table(s) applied after requantisation, inside
/// the kernel: one 256-entry table, or one per output channel (`tableStride` 256) for per-channel
/// quantised pre-activations or outputs.
struct OutputStage {
    let zeroPoint: Int32
    let clampMin: Int32
    let clampMax: Int32
    let table: [Int8]?
    let tableStride: Int

    init(_ record: LayerRecord) {
        zeroPoint = record.outputZeroPoint
        clampMin = record.clampMin
        clampMax = record.clampMax
        table = record.table
        tableStride = record.tableStride
    }
}

/// A linear layer (PyTorch [out, in] weights) as a packed GEMM operand.
struct Int8Linear {
    let layer: LinearLayer
    let packed: PackedInt8Matrix
    let output: OutputStage

    init(_ layer: LinearLayer, model: QuantizedModel, input: QuantParams, isa: KernelISA) throws {
        self.layer = layer
        let record = try LayerRecord(model, layer.name, weightShape: [layer.outFeatures, layer.inFeatures])
        output = OutputStage(record)
        let requant = RequantizationParameters(multipliers: record.multipliers, shifts: record.shifts)
        packed = record.bias.withUnsafeBufferPointer { b in
            PackedInt8Matrix(rows: record.weights, rowStride: layer.inFeatures, n: layer.outFeatures,
                             k: layer.inFeatures, bias: b.baseAddress, aZeroPoint: input.zeroPoint,
                             requantization: requant, isa: isa)
        }
    }
}

extension AddRecord {
    /// The kernel's parameters with the operands' zero points, validated.
    func parameters(a: QuantParams, b: QuantParams, output y: QuantParams, name: String, model: QuantizedModel) throws
        -> AddInt8.Parameters
    {
        try validatedParameters(model, name: name) { try AddInt8.Parameters.restored(
            inputZeroPointA: a.zeroPoint, inputZeroPointB: b.zeroPoint,
            multiplierA: multiplierA, multiplierB: multiplierB, shift: shift,
            outputZeroPoint: y.zeroPoint, clampMin: clampMin, clampMax: clampMax) }
    }
}

extension LayerNormRecord {
    func parameters(channels: Int, name: String, model: QuantizedModel) throws -> IntegerLayerNorm.Parameters {
        try validatedParameters(model, name: name) { try IntegerLayerNorm.Parameters.restored(
            channels: channels, varianceShift: varianceShift, epsilonTerm: epsilonTerm, gammaMultipliers: gammaMultipliers,
            shifts: gammaShifts, biases: betas, outputZeroPoint: outputZeroPoint) }
    }
}

extension AttentionRecord {
    func softmaxParameters(probs: QuantParams, name: String, model: QuantizedModel) throws -> IntegerSoftmax.Parameters {
        try validatedParameters(model, name: name + ".softmax") { try IntegerSoftmax.Parameters.restored(
            expPreShift: expPreShift, expLeftShift: expLeftShift, expMultiplier: expMultiplier,
            outputMultiplier: outputMultiplier, outputShift: outputShift, outputZeroPoint: outputZeroPoint,
            inputScale: 0, outputScale: probs.scale) }
    }

    var valueRequantization: RequantizationParameters {
        RequantizationParameters(multiplier: valueMultiplier, shift: valueShift)
    }
}

/// Kernel parameters restored from the file, with a failed validation reported as bad input.
func validatedParameters<T>(_ model: QuantizedModel, name: String, _ make: () throws -> T) throws -> T {
    do {
        return try make()
    } catch let e as NonlinearParameterError {
        throw InputError("\(model.path): \(name): invalid parameters (\(e.description))")
    }
}
