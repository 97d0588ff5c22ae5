/// Element types a safetensors file may hold.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }
}

/// One tensor's entry in a safetensors header: where its bytes are and what they mean.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file (https://github.com/huggingface/safetensors format), mapped and validated.
///
/// Validation is complete before any tensor is read: the header length fits the file, the header
/// is a JSON object of entries with known dtypes, non-negative shapes whose byte size matches the
/// offsets, and offset ranges that cover the data section exactly, without overlaps or holes.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: TensorInfo]
    /// Tensor names in the order of their data offsets.
    public let names: [String]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// Headers larger than this are refused before parsing (the format's own limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw InputError("\(path): not a safetensors file (\(bytes.count) bytes, shorter than the 8-byte header length)")
        }
        var headerLength: UInt64 = 0
        for k in 0..<8 { headerLength |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw InputError("\(path): safetensors header length \(headerLength) is implausibly large")
        }
        guard 8 + Int(headerLength) <= bytes.count else {
            throw InputError("\(path): truncated safetensors file: header claims \(headerLength) bytes, file has \(bytes.count - 8) after the length")
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart
        let header: JSON
        do {
            header = try JSON.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]))
        } catch let e as InputError {
            throw InputError("\(path): safetensors header is not valid JSON (\(e.message))")
        }
        guard let members = header.object else { throw InputError("\(path): safetensors header is not a JSON object") }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, entry) in members {
            if name == "__metadata__" {
                for (k, v) in entry.object ?? [] { metadata[k] = v.string ?? v.serialized() }
                continue
            }
            guard tensors[name] == nil else { throw InputError("\(path): tensor '\(name)' appears twice in the header") }
            guard let dtypeName = entry["dtype"]?.string else { throw InputError("\(path): tensor '\(name)' has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw InputError("\(path): tensor '\(name)' has unsupported dtype \(dtypeName)") }
            guard let shapeJSON = entry["shape"]?.array else { throw InputError("\(path): tensor '\(name)' has no shape") }
            var shape: [Int] = []
            var count = 1
            for d in shapeJSON {
                guard let v = d.int, v >= 0 else { throw InputError("\(path): tensor '\(name)' has an invalid shape \(shapeJSON.map { $0.serialized() })") }
                shape.append(v)
                let (m, overflow) = count.multipliedReportingOverflow(by: v)
                guard !overflow, m <= Int(Int32.max) * 64 else { throw InputError("\(path): tensor '\(name)' shape \(shape) is too large") }
                count = m
            }
            guard let offsets = entry["data_offsets"]?.array, offsets.count == 2,
                let begin = offsets[0].int, let end = offsets[1].int, begin >= 0, begin <= end
            else { throw InputError("\(path): tensor '\(name)' has invalid data_offsets") }
            guard end <= dataSize else {
                throw InputError("\(path): tensor '\(name)' data [\(begin), \(end)) lies past the end of the data (\(dataSize) bytes): truncated file?")
            }
            guard end - begin == count * dtype.byteSize else {
                throw InputError("\(path): tensor '\(name)' has \(end - begin) bytes, but \(dtype.rawValue) \(shape) needs \(count * dtype.byteSize)")
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
        }
        let ordered = tensors.values.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name) < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.dataRange.upperBound > b.dataRange.lowerBound {
            throw InputError("\(path): tensors '\(a.name)' and '\(b.name)' overlap in the data section")
        }
        // The format requires the data section to be entirely indexed, without holes (as the
        // reference implementation checks): a header length that is off by a few bytes otherwise
        // shifts every tensor onto its neighbours' bytes and still parses.
        var covered = 0
        for t in ordered {
            guard t.dataRange.lowerBound == covered else {
                throw InputError("\(path): safetensors data bytes [\(covered), \(t.dataRange.lowerBound)) belong to no tensor (a hole before '\(t.name)')")
            }
            covered = t.dataRange.upperBound
        }
        guard covered == dataSize else {
            throw InputError("\(path): safetensors data section has \(dataSize) bytes but its tensors cover \(covered) (wrong header length or trailing bytes)")
        }
        self.tensors = tensors
        self.names = ordered.map(\.name)
        self.metadata = metadata
    }

    public func info(_ name: String) throws -> TensorInfo {
        guard let t = tensors[name] else { throw InputError("\(path): no tensor named '\(name)'") }
        return t
    }

    /// The tensor's raw bytes, in place in the mapping.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let t = try info(name)
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + t.dataRange.lowerBound)..<(dataStart + t.dataRange.upperBound)])
    }

    /// A floating-point tensor converted to Float32 (F32, F16, BF16 and F64 are accepted).
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        let raw = try rawBytes(name)
        let n = t.elementCount
        switch t.dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: n) { buf, done in
                for k in 0..<n { buf[k] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self).littleEndian) }
                done = n
            }
        case .f16:
            return (0..<n).map { floatFromHalf(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
        case .bf16:
            return (0..<n).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) << 16) }
        case .f64:
            return (0..<n).map { Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian)) }
        default:
            throw InputError("\(path): tensor '\(name)' has dtype \(t.dtype.rawValue), expected a floating-point dtype (F32, F16, BF16, F64)")
        }
    }

    /// An I32 tensor's values (label maps).
    public func int32s(_ name: String) throws -> [Int32] {
        let t = try info(name)
        guard t.dtype == .i32 else { throw InputError("\(path): tensor '\(name)' has dtype \(t.dtype.rawValue), expected I32") }
        let raw = try rawBytes(name)
        return (0..<t.elementCount).map { Int32(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
    }

    /// A U8 tensor's bytes.
    public func uint8s(_ name: String) throws -> [UInt8] {
        let t = try info(name)
        guard t.dtype == .u8 else { throw InputError("\(path): tensor '\(name)' has dtype \(t.dtype.rawValue), expected U8") }
        return Array(try rawBytes(name))
    }
}

/// IEEE 754 binary16 to Float, including subnormals, infinities and NaN.
public func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa × 2^-24.
        let v = Float(mantissa) * (1.0 / 16_777_216.0)
        return sign != 0 ? -v : v
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// Float to IEEE 754 binary16, rounding to nearest even.
public func halfFromFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    if f.isNaN { return sign | 0x7E00 }
    let a = abs(f)
    if a >= 65520 { return sign | 0x7C00 }
    if a < 6.103515625e-05 {
        // Subnormal half: round a × 2^24 to an integer, ties to even.
        return sign | UInt16((a * 16_777_216.0).rounded(.toNearestOrEven))
    }
    let e = Int((bits >> 23) & 0xFF) - 127 + 15
    var m = bits & 0x7F_FFFF
    var h = UInt32(e) << 10 | (m >> 13)
    m &= 0x1FFF
    if m > 0x1000 || (m == 0x1000 && (h & 1) == 1) { h += 1 }
    return sign | UInt16(h)
}

/// Writes safetensors files. Tensors are written in the order given, 8-byte aligned data.
public struct SafeTensorsWriter {
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let bytes: [UInt8]

        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        public static func float32(_ name: String, shape: [Int], _ values: [Float]) -> Entry {
            var bytes = [UInt8](repeating: 0, count: values.count * 4)
            bytes.withUnsafeMutableBytes { raw in
                for (k, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * k, as: UInt32.self) }
            }
            return Entry(name: name, dtype: .f32, shape: shape, bytes: bytes)
        }

        public static func int32(_ name: String, shape: [Int], _ values: [Int32]) -> Entry {
            var bytes = [UInt8](repeating: 0, count: values.count * 4)
            bytes.withUnsafeMutableBytes { raw in
                for (k, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: 4 * k, as: Int32.self) }
            }
            return Entry(name: name, dtype: .i32, shape: shape, bytes: bytes)
        }
    }

    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) -> [UInt8] {
        var members: [(String, JSON)] = []
        if !metadata.isEmpty {
            members.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        var offset = 0
        for e in entries {
            members.append((e.name, .object([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + e.bytes.count))])),
            ])))
            offset += e.bytes.count
        }
        var header = Array(JSON.object(members).serialized().utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        var n = UInt64(header.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        out += header
        for e in entries { out += e.bytes }
        return out
    }

    /// Writes the file atomically (temporary file, then rename).
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        try FileSystem.writeAtomically(path, bytes: encode(entries, metadata: metadata))
    }
}
