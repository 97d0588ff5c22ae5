import MVFormats

// The `.mvq` contents of each int8 operator as one record type per operator: the compiler fills a
// record and writes it, the executor reads the same record back, so the keys and their valid
// ranges are spelled once. Records hold plain integers; the kernels' parameter types are built
// from them in MVInt8 (and validated there).

/// A layer with weights run as a convolution or GEMM (`<layer>.weight`, `.bias`, `.multiplier`,
/// `.shift`, optional `.lut`, and the scalars `.output_zero_point`, `.clamp_min`, `.clamp_max`).
public struct LayerRecord: Sendable {
    public var weights: [Int8]
    public var weightShape: [Int]
    public var bias: [Int32]
    /// Per output channel: real = M·2⁻³¹·2⁻ⁿ.
    public var multipliers: [Int32]
    public var shifts: [Int32]
    public var outputZeroPoint: Int32
    public var clampMin: Int32
    public var clampMax: Int32
    /// 256 entries, or 256 per output channel.
    public var table: [Int8]?

    public init(weights: [Int8], weightShape: [Int], bias: [Int32], multipliers: [Int32], shifts: [Int32],
                outputZeroPoint: Int32, clampMin: Int32, clampMax: Int32, table: [Int8]?) {
        self.weights = weights
        self.weightShape = weightShape
        self.bias = bias
        self.multipliers = multipliers
        self.shifts = shifts
        self.outputZeroPoint = outputZeroPoint
        self.clampMin = clampMin
        self.clampMax = clampMax
        self.table = table
    }

    /// Entries between consecutive channels' tables: 0 for one shared table.
    public var tableStride: Int { (table?.count ?? 256) == 256 ? 0 : 256 }

    public func write(to m: inout QuantizedModelBuilder, _ name: String) {
        if let table { m.set(name + ".lut", int8: table, shape: [table.count / 256, 256]) }
        m.set(name + ".weight", int8: weights, shape: weightShape)
        m.set(name + ".bias", int32: bias)
        m.set(name + ".multiplier", int32: multipliers)
        m.set(name + ".shift", int32: shifts)
        m.scalars[name + ".output_zero_point"] = Int64(outputZeroPoint)
        m.scalars[name + ".clamp_min"] = Int64(clampMin)
        m.scalars[name + ".clamp_max"] = Int64(clampMax)
    }

    public init(_ model: QuantizedModel, _ name: String, weightShape: [Int]) throws {
        let cout = weightShape[0]
        self.weightShape = weightShape
        weights = Array(try model.int8(name + ".weight", count: weightShape.reduce(1, *)))
        bias = try model.int32(name + ".bias", count: cout)
        multipliers = try model.int32(name + ".multiplier", count: cout)
        shifts = try model.int32(name + ".shift", count: cout)
        for (mi, si) in zip(multipliers, shifts) where mi < 0 || si < -31 || si > 62 {
            throw InputError("\(model.path): \(name): requantisation multiplier/shift out of range")
        }
        outputZeroPoint = Int32(try model.scalar(name + ".output_zero_point", in: -128...127))
        clampMin = Int32(try model.scalar(name + ".clamp_min", in: -128...127))
        clampMax = Int32(try model.scalar(name + ".clamp_max", in: -128...127))
        guard clampMin <= clampMax else { throw InputError("\(model.path): \(name): clamp_min > clamp_max") }
        if let t = model.file.tensors[name + ".lut"] {
            table = Array(try model.int8(name + ".lut", count: t.elementCount == 256 ? 256 : 256 * cout))
        } else {
            table = nil
        }
    }
}

/// A residual addition (`<output>.add.*`), TFLite style.
public struct AddRecord: Sendable {
    public var multiplierA, multiplierB, shift, clampMin, clampMax: Int32

    public init(multiplierA: Int32, multiplierB: Int32, shift: Int32, clampMin: Int32, clampMax: Int32) {
        (self.multiplierA, self.multiplierB, self.shift) = (multiplierA, multiplierB, shift)
        (self.clampMin, self.clampMax) = (clampMin, clampMax)
    }

    static let multiplierRange: ClosedRange<Int64> = 0...32767
    static let shiftRange: ClosedRange<Int64> = 1...22
    static let codeRange: ClosedRange<Int64> = -128...127

    var fields: [(String, Int32, ClosedRange<Int64>)] {
        [("multiplier_a", multiplierA, Self.multiplierRange), ("multiplier_b", multiplierB, Self.multiplierRange),
         ("shift", shift, Self.shiftRange), ("clamp_min", clampMin, Self.codeRange), ("clamp_max", clampMax, Self.codeRange)]
    }

    public func write(to m: inout QuantizedModelBuilder, _ name: String) {
        for (key, value, _) in fields { m.scalars["\(name).add.\(key)"] = Int64(value) }
    }

    public init(_ model: QuantizedModel, _ name: String) throws {
        func s(_ key: String, _ r: ClosedRange<Int64>) throws -> Int32 { Int32(try model.scalar("\(name).add.\(key)", in: r)) }
        self.init(multiplierA: try s("multiplier_a", Self.multiplierRange), multiplierB: try s("multiplier_b", Self.multiplierRange),
                  shift: try s("shift", Self.shiftRange),
                  clampMin: try s("clamp_min", Self.codeRange), clampMax: try s("clamp_max", Self.codeRange))
    }
}

/// An integer LayerNorm (`<layer>.variance_shift`, `.epsilon_term`, `.output_zero_point`, and the
/// arrays `.gamma_multiplier`, `.gamma_shift`, `.beta`).
public struct LayerNormRecord: Sendable {
    public var varianceShift: Int32
    public var epsilonTerm: UInt64
    public var gammaMultipliers: [Int32]
    public var gammaShifts: [Int32]
    public var betas: [Int32]
    public var outputZeroPoint: Int32

    public init(varianceShift: Int32, epsilonTerm: UInt64, gammaMultipliers: [Int32], gammaShifts: [Int32], betas: [Int32],
                outputZeroPoint: Int32) {
        self.varianceShift = varianceShift
        self.epsilonTerm = epsilonTerm
        self.gammaMultipliers = gammaMultipliers
        self.gammaShifts = gammaShifts
        self.betas = betas
        self.outputZeroPoint = outputZeroPoint
    }

    public func write(to m: inout QuantizedModelBuilder, _ l: LayerNormLayer) {
        m.scalars["\(l.name).variance_shift"] = Int64(varianceShift)
        m.scalars["\(l.name).epsilon_term"] = Int64(bitPattern: epsilonTerm)
        m.scalars["\(l.name).output_zero_point"] = Int64(outputZeroPoint)
        m.set("\(l.name).gamma_multiplier", int32: gammaMultipliers)
        m.set("\(l.name).gamma_shift", int32: gammaShifts)
        m.set("\(l.name).beta", int32: betas)
    }

    public init(_ model: QuantizedModel, _ l: LayerNormLayer) throws {
        let n = l.name, c = l.channels
        self.init(varianceShift: Int32(try model.scalar(n + ".variance_shift", in: 0...26)),
                  epsilonTerm: UInt64(bitPattern: try model.scalar(n + ".epsilon_term", in: 0...Int64.max)),
                  gammaMultipliers: try model.int32(n + ".gamma_multiplier", count: c),
                  gammaShifts: try model.int32(n + ".gamma_shift", count: c),
                  betas: try model.int32(n + ".beta", count: c),
                  outputZeroPoint: Int32(try model.scalar(n + ".output_zero_point", in: -128...127)))
    }
}

/// A transformer layer's attention: the integer softmax (`<layer>.softmax.*`) and the P·V
/// requantisation to the context (`<layer>.pv.multiplier`, `.pv.shift`).
public struct AttentionRecord: Sendable {
    public var expPreShift: Int32
    public var expLeftShift: Int32
    public var expMultiplier: UInt32
    public var outputMultiplier: UInt32
    public var outputShift: Int32
    public var outputZeroPoint: Int32
    public var valueMultiplier: Int32
    public var valueShift: Int32

    public init(expPreShift: Int32, expLeftShift: Int32, expMultiplier: UInt32, outputMultiplier: UInt32,
                outputShift: Int32, outputZeroPoint: Int32, valueMultiplier: Int32, valueShift: Int32) {
        (self.expPreShift, self.expLeftShift, self.expMultiplier) = (expPreShift, expLeftShift, expMultiplier)
        (self.outputMultiplier, self.outputShift, self.outputZeroPoint) = (outputMultiplier, outputShift, outputZeroPoint)
        (self.valueMultiplier, self.valueShift) = (valueMultiplier, valueShift)
    }

    public func write(to m: inout QuantizedModelBuilder, _ t: TransformerLayer) {
        let n = "\(t.name).softmax"
        m.scalars["\(n).exp_pre_shift"] = Int64(expPreShift)
        m.scalars["\(n).exp_left_shift"] = Int64(expLeftShift)
        m.scalars["\(n).exp_multiplier"] = Int64(expMultiplier)
        m.scalars["\(n).output_multiplier"] = Int64(outputMultiplier)
        m.scalars["\(n).output_shift"] = Int64(outputShift)
        m.scalars["\(n).output_zero_point"] = Int64(outputZeroPoint)
        m.scalars["\(t.name).pv.multiplier"] = Int64(valueMultiplier)
        m.scalars["\(t.name).pv.shift"] = Int64(valueShift)
    }

    public init(_ model: QuantizedModel, _ t: TransformerLayer) throws {
        let n = "\(t.name).softmax"
        self.init(expPreShift: Int32(try model.scalar(n + ".exp_pre_shift", in: 0...31)),
                  expLeftShift: Int32(try model.scalar(n + ".exp_left_shift", in: 0...15)),
                  expMultiplier: UInt32(try model.scalar(n + ".exp_multiplier", in: 32769...65535)),
                  outputMultiplier: UInt32(try model.scalar(n + ".output_multiplier", in: 1...Int64(UInt32.max))),
                  outputShift: Int32(try model.scalar(n + ".output_shift", in: -62...62)),
                  outputZeroPoint: Int32(try model.scalar(n + ".output_zero_point", in: -128...127)),
                  valueMultiplier: Int32(try model.scalar("\(t.name).pv.multiplier", in: 0...Int64(Int32.max))),
                  valueShift: Int32(try model.scalar("\(t.name).pv.shift", in: -31...62)))
    }
}

/// Global average pooling's s_in/s_out rescale without the 1/(H·W) (`<output>.multiplier`,
/// `.shift`; the classifier's pool writes `mobilevit.pooler`).
public struct PoolRecord: Sendable {
    public var multiplier: Int32
    public var shift: Int32

    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    public func write(to m: inout QuantizedModelBuilder, _ output: String) {
        m.scalars["\(output).multiplier"] = Int64(multiplier)
        m.scalars["\(output).shift"] = Int64(shift)
    }

    public init(_ model: QuantizedModel, _ output: String) throws {
        self.init(multiplier: Int32(try model.scalar("\(output).multiplier", in: 0...Int64(Int32.max))),
                  shift: Int32(try model.scalar("\(output).shift", in: -31...62)))
    }
}

/// The classifier (per image, or per pixel in a dense head): int8 weights [classes, inputs], int32
/// bias, and `logit_scale` (s_in · s_w[c]) that dequantises its int32 accumulators. A pixel
/// classifier also stores `label_multiplier`/`label_shift`: per class, the fixed-point rescale
/// s_w[c]/max(s_w) that brings every class's accumulators to one scale, so the label map (upsampling
/// and argmax) is computed on integers.
public struct ClassifierRecord: Sendable {
    public var weights: [Int8]
    public var bias: [Int32]
    public var logitScale: [Float]
    /// Per class (multiplier, shift), pixel classifiers only.
    public var labelRescale: (multipliers: [Int32], shifts: [Int32])?

    public init(weights: [Int8], bias: [Int32], logitScale: [Float], labelRescale: (multipliers: [Int32], shifts: [Int32])? = nil) {
        self.weights = weights
        self.bias = bias
        self.logitScale = logitScale
        self.labelRescale = labelRescale
    }

    public func write(to m: inout QuantizedModelBuilder, name: String, classes: Int, inputs: Int) {
        m.set(name + ".weight", int8: weights, shape: [classes, inputs])
        m.set(name + ".bias", int32: bias)
        m.set(name + ".logit_scale", float32: logitScale)
        if let r = labelRescale {
            m.set(name + ".label_multiplier", int32: r.multipliers)
            m.set(name + ".label_shift", int32: r.shifts)
        }
    }

    public init(_ model: QuantizedModel, name: String, classes: Int, inputs: Int, dense: Bool) throws {
        weights = Array(try model.int8(name + ".weight", count: classes * inputs))
        bias = try model.int32(name + ".bias", count: classes)
        logitScale = try model.float32(name + ".logit_scale", count: classes)
        guard dense else { return }
        let multipliers = try model.int32(name + ".label_multiplier", count: classes)
        let shifts = try model.int32(name + ".label_shift", count: classes)
        for (m, s) in zip(multipliers, shifts) where m < 0 || s < -31 || s > 62 {
            throw InputError("\(name): label rescale (multiplier \(m), shift \(s)) out of range")
        }
        labelRescale = (multipliers, shifts)
    }
}
