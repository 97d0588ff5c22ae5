import MVFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Affine quantisation of an activation: real = scale · (q − zeroPoint), q ∈ int8. Tensors feeding
/// or leaving depthwise convolutions are quantised per channel (`channelScales`, channels
/// innermost) with one shared zero point, so a channel with a small range keeps its resolution;
/// `scale` is then the largest channel scale.
public struct QuantParams: Sendable, Equatable {
    public var scale: Double
    public var zeroPoint: Int32
    public var channelScales: [Double]?

    public init(scale: Double, zeroPoint: Int32, channelScales: [Double]? = nil) {
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.channelScales = channelScales
    }

    /// The parameters covering [lo, hi] (widened to include 0, so zero is exact) with 256 levels.
    public init(lo: Float, hi: Float) {
        let l = Double(min(lo, 0)), h = Double(max(hi, 0))
        let span = max(h - l, 1e-8)
        scale = span / 255
        let z = (-128 - l / scale).rounded()
        zeroPoint = Int32(min(max(z, -128), 127))
        channelScales = nil
    }

    /// Per-channel scales with one zero point. The zero point minimises Σ_c log(s_c / s*_c), where
    /// s_c is the smallest scale covering channel c's range with that zero point and s*_c the
    /// scale it would have with its own: the mean loss of resolution, in bits, over channels.
    public init(channelRanges: [(lo: Float, hi: Float)]) {
        let ranges = channelRanges.map { (lo: Double(min($0.lo, 0)), hi: Double(max($0.hi, 0))) }
        func scales(_ z: Double) -> [Double] {
            ranges.map { max($0.hi / (127 - z), -$0.lo / (128 + z), 1e-10) }
        }
        let ideal = ranges.map { max(($0.hi - $0.lo) / 255, 1e-10) }
        var best = (cost: Double.infinity, z: 0.0)
        for zi in -127...126 {
            let z = Double(zi)
            let cost = zip(scales(z), ideal).reduce(0.0) { $0 + log2($1.0 / $1.1) }
            if cost < best.cost { best = (cost, z) }
        }
        let chosen = scales(best.z)
        scale = chosen.max() ?? 1e-10
        zeroPoint = Int32(best.z)
        channelScales = chosen
    }

    public var isPerChannel: Bool { channelScales != nil }

    public func channelScale(_ c: Int) -> Double { channelScales?[c] ?? scale }

    public func quantize(_ x: Float, channel: Int = 0) -> Int8 {
        let q = (Double(x) / channelScale(channel)).rounded() + Double(zeroPoint)
        return Int8(min(max(q, -128), 127))
    }

    public func dequantize(_ q: Int8, channel: Int = 0) -> Float { Float(channelScale(channel) * Double(Int32(q) - zeroPoint)) }

    var json: JSON {
        var items: [JSON] = [.number(scale), .number(Double(zeroPoint))]
        if let channelScales { items.append(.array(channelScales.map { .number($0) })) }
        return .array(items)
    }

    /// Scales a model file may hold: far wider than any calibration produces (a float model's
    /// activations span about 1e-4…1e4), narrow enough that derived values (1/scale, ratios of
    /// scales, their logarithms) stay finite and in range.
    public static let plausibleScale: ClosedRange<Double> = 1e-30...1e30

    /// Whether every scale is within `plausibleScale` (what a model file may hold).
    public var isPlausible: Bool {
        Self.plausibleScale.contains(scale) && (channelScales ?? []).allSatisfy { Self.plausibleScale.contains($0) }
    }

    init?(json: JSON) {
        guard let a = json.array, a.count == 2 || a.count == 3, let s = a[0].double, let z = a[1].int,
              (-128...127).contains(z) else { return nil }
        var channels: [Double]?
        if a.count == 3 {
            guard let list = a[2].array?.compactMap(\.double), list.count == a[2].array!.count else { return nil }
            channels = list
        }
        self.init(scale: s, zeroPoint: Int32(z), channelScales: channels)
        guard isPlausible else { return nil }
    }
}

/// Collects everything the int8 executor needs — integer parameters only, derived once by the
/// compiler so that loading does no floating-point work — and writes it as a `.mvq` file.
///
/// Arrays are named `<layer>.<field>`; scalars go into the JSON header. The executor reads them
/// back through `QuantizedModel`, which checks every name and length.
public struct QuantizedModelBuilder {
    public var config: MobileViTConfig
    public var preprocessor: JSON?
    public var calibration: JSON = .object([])
    public var activations: [String: QuantParams] = [:]
    public var scalars: [String: Int64] = [:]
    private var tensors: [MVQFile.Tensor] = []
    private var names = Set<String>()

    public init(config: MobileViTConfig, preprocessor: JSON?) {
        self.config = config
        self.preprocessor = preprocessor
    }

    mutating func add(_ t: MVQFile.Tensor) {
        precondition(names.insert(t.name).inserted, "tensor \(t.name) added twice")
        tensors.append(t)
    }

    public mutating func set(_ name: String, int8 values: [Int8], shape: [Int]? = nil) { add(MVQFile.Tensor(name, int8: values, shape: shape)) }
    public mutating func set(_ name: String, int32 values: [Int32]) { add(MVQFile.Tensor(name, int32: values)) }
    public mutating func set(_ name: String, float32 values: [Float]) { add(MVQFile.Tensor(name, float32: values)) }
    public mutating func set(_ name: String, int64 values: [Int64]) {
        var b = [UInt8](repeating: 0, count: values.count * 8)
        for (i, v) in values.enumerated() {
            let u = UInt64(bitPattern: v)
            for k in 0..<8 { b[8 * i + k] = UInt8((u >> (8 * UInt64(k))) & 0xFF) }
        }
        add(MVQFile.Tensor(name: name, dtype: .i64, shape: [values.count], bytes: b))
    }

    public var header: JSON {
        .object([
            ("format", "mvquant int8 MobileViT"),
            ("config", config.json),
            ("preprocessor", preprocessor ?? .null),
            ("calibration", calibration),
            ("activations", .object(activations.sorted { $0.key < $1.key }.map { ($0.key, $0.value.json) })),
            ("scalars", .object(scalars.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
        ])
    }

    public func encode() -> [UInt8] { MVQFile.encode(header: header, tensors: tensors) }

    public func write(to path: String) throws { try MVQFile.write(header: header, tensors: tensors, to: path) }
}

/// A `.mvq` model mapped from disk: config, preprocessing, activation quantisation, and typed,
/// length-checked access to the integer parameter arrays (in place in the mapping).
public final class QuantizedModel: @unchecked Sendable {
    public let path: String
    public let config: MobileViTConfig
    public let graph: MobileViTGraph
    public let preprocessor: JSON?
    public let calibration: JSON
    public let activations: [String: QuantParams]
    public let scalars: [String: Int64]
    public let file: MVQReader

    public init(path: String) throws {
        self.path = path
        file = try MVQReader(path: path)
        let m = file.model
        guard m["format"]?.string == "mvquant int8 MobileViT", let configJSON = m["config"] else {
            throw InputError("\(path): not an mvquant MobileViT model")
        }
        do {
            config = try MobileViTConfig(json: configJSON)
        } catch let e as InputError {
            throw InputError("\(path): embedded \(e.message)")
        }
        graph = MobileViTGraph(config: config)
        preprocessor = m["preprocessor"].flatMap { $0 == .null ? nil : $0 }
        calibration = m["calibration"] ?? .object([])
        var acts: [String: QuantParams] = [:]
        for (name, v) in m["activations"]?.object ?? [] {
            guard let p = QuantParams(json: v) else { throw InputError("\(path): bad quantisation parameters for '\(name)'") }
            acts[name] = p
        }
        activations = acts
        var sc: [String: Int64] = [:]
        for (name, v) in m["scalars"]?.object ?? [] {
            guard let d = v.double, d.rounded() == d, abs(d) < 9.0e18 else { throw InputError("\(path): bad scalar '\(name)'") }
            sc[name] = Int64(d)
        }
        scalars = sc
    }

    public func activation(_ name: String) throws -> QuantParams {
        guard let a = activations[name] else { throw InputError("\(path): no quantisation parameters for '\(name)'") }
        return a
    }

    public func scalar(_ name: String, in range: ClosedRange<Int64>) throws -> Int64 {
        guard let v = scalars[name] else { throw InputError("\(path): missing scalar '\(name)'") }
        guard range.contains(v) else { throw InputError("\(path): scalar '\(name)' = \(v) out of range") }
        return v
    }

    public func int8(_ name: String, count: Int) throws -> UnsafeBufferPointer<Int8> { try file.int8s(name, count: count) }
    public func int32(_ name: String, count: Int) throws -> [Int32] { try file.int32s(name, count: count) }
    public func float32(_ name: String, count: Int) throws -> [Float] { try file.float32s(name, count: count) }

    public func int64(_ name: String, count: Int) throws -> [Int64] {
        let t = try file.info(name)
        guard t.dtype == .i64, t.elementCount == count else {
            throw InputError("\(path): tensor '\(name)' must be I64 with \(count) values")
        }
        let r = try file.raw(name)
        return (0..<count).map { Int64(bitPattern: r.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) }
    }
}
