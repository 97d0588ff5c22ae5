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
        let perOut = layer.weightShape.dropFirst().reduce(1, *)
        let weights = try model.int8(n + ".weight", count: cout * perOut)
        let bias = try model.int32(n + ".bias", count: cout)
        let requant = try requantization(model, n, count: cout)
        output = try OutputStage(model, n, channels: cout)
        if layer.isDepthwise {
            guard layer.kernel == 3 else { throw InputError("\(model.path): \(n): only 3×3 depthwise convolutions are supported") }
            kernel = .depthwise(bias.withUnsafeBufferPointer { b in
                DepthwiseConv3x3Int8(weights: weights.baseAddress!, bias: b.baseAddress, channels: cout,
                                     inputZeroPoint: input.zeroPoint, requantization: requant, isa: isa)
            })
        } else if layer.groups != 1 {
            throw InputError("\(model.path): \(n): grouped convolutions are not supported")
        } else if layer.kernel == 1 && layer.stride == 1 {
            kernel = .pointwise(bias.withUnsafeBufferPointer { b in
                PackedInt8Matrix(rows: weights.baseAddress!, rowStride: cin, n: cout, k: cin, bias: b.baseAddress,
                                 aZeroPoint: input.zeroPoint, requantization: requant, isa: isa)
            })
        } else {
            kernel = .dense(bias.withUnsafeBufferPointer { b in
                Conv2DInt8(weights: weights.baseAddress!, bias: b.baseAddress, inChannels: cin, outChannels: cout,
                           kernelSize: layer.kernel, stride: layer.stride, inputZeroPoint: input.zeroPoint,
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

    init(_ model: QuantizedModel, _ name: String, channels: Int) throws {
        zeroPoint = Int32(try model.scalar(name + ".output_zero_point", in: -128...127))
        clampMin = Int32(try model.scalar(name + ".clamp_min", in: -128...127))
        clampMax = Int32(try model.scalar(name + ".clamp_max", in: -128...127))
        guard clampMin <= clampMax else { throw InputError("\(model.path): \(name): clamp_min > clamp_max") }
        if let t = model.file.tensors[name + ".lut"] {
            tableStride = t.elementCount == 256 ? 0 : 256
            table = Array(try model.int8(name + ".lut", count: tableStride == 0 ? 256 : 256 * channels))
        } else {
            table = nil
            tableStride = 0
        }
    }
}

func requantization(_ model: QuantizedModel, _ name: String, count: Int) throws -> RequantizationParameters {
    let m = try model.int32(name + ".multiplier", count: count)
    let s = try model.int32(name + ".shift", count: count)
    for (mi, si) in zip(m, s) where mi < 0 || si < -31 || si > 62 {
        throw InputError("\(model.path): \(name): requantisation multiplier/shift out of range")
    }
    return RequantizationParameters(multipliers: m, shifts: s)
}

/// A linear layer (PyTorch [out, in] weights) as a packed GEMM operand.
struct Int8Linear {
    let layer: LinearLayer
    let packed: PackedInt8Matrix
    let output: OutputStage

    init(_ layer: LinearLayer, model: QuantizedModel, input: QuantParams, isa: KernelISA) throws {
        self.layer = layer
        let n = layer.name
        let weights = try model.int8(n + ".weight", count: layer.outFeatures * layer.inFeatures)
        let bias = try model.int32(n + ".bias", count: layer.outFeatures)
        let requant = try requantization(model, n, count: layer.outFeatures)
        output = try OutputStage(model, n, channels: layer.outFeatures)
        packed = bias.withUnsafeBufferPointer { b in
            PackedInt8Matrix(rows: weights.baseAddress!, rowStride: layer.inFeatures, n: layer.outFeatures,
                             k: layer.inFeatures, bias: b.baseAddress, aZeroPoint: input.zeroPoint,
                             requantization: requant, isa: isa)
        }
    }
}

func addParameters(_ model: QuantizedModel, _ name: String, a: QuantParams, b: QuantParams, y: QuantParams) throws
    -> AddInt8.Parameters
{
    func s(_ k: String, _ r: ClosedRange<Int64>) throws -> Int32 { Int32(try model.scalar("\(name).add.\(k)", in: r)) }
    return try validatedParameters(model, name: name) { try AddInt8.Parameters.restored(
        inputZeroPointA: a.zeroPoint, inputZeroPointB: b.zeroPoint,
        multiplierA: try s("multiplier_a", 0...Int64(Int32.max)), shiftA: try s("shift_a", -31...62),
        multiplierB: try s("multiplier_b", 0...Int64(Int32.max)), shiftB: try s("shift_b", -31...62),
        outputMultiplier: try s("output_multiplier", 0...Int64(Int32.max)), outputShift: try s("output_shift", -31...62),
        outputZeroPoint: y.zeroPoint, clampMin: try s("clamp_min", -128...127), clampMax: try s("clamp_max", -128...127)) }
}

func layerNormParameters(_ model: QuantizedModel, _ l: LayerNormLayer) throws -> IntegerLayerNorm.Parameters {
    let c = l.channels, n = l.name
    return try validatedParameters(model, name: n) { try IntegerLayerNorm.Parameters.restored(
        channels: c,
        varianceShift: Int32(try model.scalar(n + ".variance_shift", in: 0...26)),
        epsilonTerm: UInt64(bitPattern: try model.scalar(n + ".epsilon_term", in: 0...Int64.max)),
        gammaMultipliers: try model.int32(n + ".gamma_multiplier", count: c),
        shifts: try model.int32(n + ".gamma_shift", count: c),
        biases: try model.int64(n + ".beta", count: c),
        outputZeroPoint: Int32(try model.scalar(n + ".output_zero_point", in: -128...127))) }
}

func softmaxParameters(_ model: QuantizedModel, _ t: TransformerLayer) throws -> IntegerSoftmax.Parameters {
    let n = "\(t.name).softmax"
    let probs = try model.activation(TensorNames.probs(t))
    return try validatedParameters(model, name: n) { try IntegerSoftmax.Parameters.restored(
        expMultiplier: UInt32(try model.scalar(n + ".exp_multiplier", in: 1...Int64(UInt32.max))),
        expShift: Int32(try model.scalar(n + ".exp_shift", in: 1...62)),
        maxDifference: UInt32(try model.scalar(n + ".max_difference", in: 0...Int64(UInt32.max))),
        outputMultiplier: UInt32(try model.scalar(n + ".output_multiplier", in: 1...Int64(UInt32.max))),
        outputShift: Int32(try model.scalar(n + ".output_shift", in: -62...62)),
        outputZeroPoint: Int32(try model.scalar(n + ".output_zero_point", in: -128...127)),
        inputScale: 0, outputScale: probs.scale) }
}

/// Integer-only pool parameters for H·W pixels from the stored s_in/s_out multiplier: the
/// division by H·W is done in 64-bit integers, so every platform derives the same bits.
func poolParameters(multiplier m0: Int32, shift h0: Int32, inputZeroPoint: Int32, outputZeroPoint: Int32,
                    pixelCount: Int) throws -> GlobalAveragePoolInt8.Parameters {
    func bitLength(_ x: UInt64) -> Int { 64 - x.leadingZeroBitCount }
    let l = 31 - bitLength(UInt64(255 * pixelCount))  // 255·H·W·2^l < 2^31
    let q = (UInt64(m0) << 32) / UInt64(pixelCount)
    var b = bitLength(q)
    var m: UInt64 = b > 31 ? (q + (1 << UInt64(b - 32))) >> UInt64(b - 31) : q << UInt64(31 - b)
    if m == 1 << 31 {
        m >>= 1
        b += 1
    }
    // real = m·2^−31 · 2^(b − 63 − h0 − l)  ⇒  shift = 63 + h0 + l − b.
    var shift = 63 + Int(h0) + l - b
    if shift > 62 { m = 0; shift = 0 }
    return try GlobalAveragePoolInt8.Parameters.restored(pixelCount: pixelCount, inputZeroPoint: inputZeroPoint, preShift: Int32(l),
                                            multiplier: Int32(m), shift: Int32(shift), outputZeroPoint: outputZeroPoint)
}

/// Kernel parameters restored from the file, with a failed validation reported as bad input.
func validatedParameters<T>(_ model: QuantizedModel, name: String, _ make: () throws -> T) throws -> T {
    do {
        return try make()
    } catch let e as NonlinearParameterError {
        throw InputError("\(model.path): \(name): invalid parameters (\(e.description))")
    }
}
