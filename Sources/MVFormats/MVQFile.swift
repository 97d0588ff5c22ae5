/// The `.mvq` container: a fixed 64-byte preamble, a JSON header, 64-byte-aligned tensors that a
/// loader maps in place, and a trailing checksum over everything before it.
///
///     offset  size  field
///     0       8     magic "MVQUANT\0"
///     8       4     format version (little-endian u32), currently 5 (1: before the 16-bit softmax,
///                   2: before the 16-bit-multiplier add, 3: before the 32-bit-lane LayerNorm,
///                   4: before the softmax's 16-bit difference multiply; their parameters meant
///                   another computation, so they are refused with "recalibrate")
///     12      4     flags (0)
///     16      8     header length in bytes (u64)
///     24      8     data offset (u64, multiple of 64)
///     32      8     data length (u64)
///     40      24    reserved, zero
///     64      …     header: UTF-8 JSON {"model": …, "tensors": {name: {dtype, shape, offset, bytes}}}
///     …             zero padding to the data offset
///     data    …     tensors, each at a multiple of 64 bytes from the data offset
///     end-8   8     FNV-1a 64-bit checksum of every byte before it (u64)
///
/// Files are written atomically (temporary file, then rename).
public enum MVQFile {
    public static let magic: [UInt8] = Array("MVQUANT".utf8) + [0]
    public static let version: UInt32 = 5
    public static let alignment = 64

    public struct Tensor: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        public init(_ name: String, int8 values: [Int8], shape: [Int]? = nil) {
            self.init(name: name, dtype: .i8, shape: shape ?? [values.count], bytes: values.map { UInt8(bitPattern: $0) })
        }

        public init(_ name: String, int32 values: [Int32], shape: [Int]? = nil) {
            var b = [UInt8](repeating: 0, count: values.count * 4)
            for (i, v) in values.enumerated() {
                let u = UInt32(bitPattern: v)
                for k in 0..<4 { b[4 * i + k] = UInt8((u >> (8 * UInt32(k))) & 0xFF) }
            }
            self.init(name: name, dtype: .i32, shape: shape ?? [values.count], bytes: b)
        }

        public init(_ name: String, float32 values: [Float], shape: [Int]? = nil) {
            var b = [UInt8](repeating: 0, count: values.count * 4)
            for (i, v) in values.enumerated() {
                let u = v.bitPattern
                for k in 0..<4 { b[4 * i + k] = UInt8((u >> (8 * UInt32(k))) & 0xFF) }
            }
            self.init(name: name, dtype: .f32, shape: shape ?? [values.count], bytes: b)
        }
    }

    /// FNV-1a, 64-bit: simple, byte-order independent, and enough to catch corruption.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    static func alignUp(_ x: Int) -> Int { (x + alignment - 1) / alignment * alignment }

    /// Serialises a model header and tensors into the file layout.
    public static func encode(header model: JSON, tensors: [Tensor]) -> [UInt8] {
        var table: [(String, JSON)] = []
        var offset = 0
        for t in tensors {
            table.append((t.name, .object([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .number(Double($0)) })),
                ("offset", .number(Double(offset))),
                ("bytes", .number(Double(t.bytes.count))),
            ])))
            offset = alignUp(offset + t.bytes.count)
        }
        let header = Array(JSON.object([("model", model), ("tensors", .object(table))]).serialized().utf8)
        let dataOffset = alignUp(64 + header.count)
        let dataLength = offset
        var out = [UInt8](repeating: 0, count: dataOffset + dataLength + 8)
        func put(_ v: UInt64, at i: Int, bytes n: Int) {
            for k in 0..<n { out[i + k] = UInt8((v >> (8 * UInt64(k))) & 0xFF) }
        }
        out.replaceSubrange(0..<8, with: magic)
        put(UInt64(version), at: 8, bytes: 4)
        put(UInt64(header.count), at: 16, bytes: 8)
        put(UInt64(dataOffset), at: 24, bytes: 8)
        put(UInt64(dataLength), at: 32, bytes: 8)
        out.replaceSubrange(64..<(64 + header.count), with: header)
        var o = dataOffset
        for t in tensors {
            out.replaceSubrange(o..<(o + t.bytes.count), with: t.bytes)
            o = dataOffset + alignUp(o - dataOffset + t.bytes.count)
        }
        let sum = out.withUnsafeBytes { checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(out.count - 8)])) }
        put(sum, at: out.count - 8, bytes: 8)
        return out
    }

    public static func write(header: JSON, tensors: [Tensor], to path: String) throws {
        try FileSystem.writeAtomically(path, bytes: encode(header: header, tensors: tensors))
    }
}

/// A `.mvq` file mapped read-only and validated: magic, version, sizes, checksum, tensor table.
public final class MVQReader: @unchecked Sendable {
    public let path: String
    public let model: JSON
    public let tensors: [String: TensorInfo]
    /// Byte sizes by section, for `inspect`.
    public let sectionSizes: [(String, Int)]
    private let file: MappedFile
    private let dataOffset: Int

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let b = file.bytes
        func fail(_ why: String) -> InputError { InputError("\(path): \(why)") }
        guard b.count >= 72 else { throw fail("not an .mvq model (\(b.count) bytes, too short)") }
        guard Array(b[0..<8]) == MVQFile.magic else { throw fail("not an .mvq model (bad magic)") }
        func u64(_ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[i + $1]) << (8 * UInt64($1)) } }
        let version = UInt32(truncatingIfNeeded: u64(8))
        guard version >= MVQFile.version else {
            throw fail("written by an older mvquant (.mvq format version \(version), this one reads \(MVQFile.version)): recalibrate the model with this version")
        }
        guard version == MVQFile.version else {
            throw fail("unsupported .mvq format version \(version) (this mvquant reads version \(MVQFile.version))")
        }
        let headerLength = u64(16), data = u64(24), dataLength = u64(32)
        guard headerLength < UInt64(b.count), data < UInt64(b.count), dataLength < UInt64(b.count),
              64 + Int(headerLength) <= Int(data), Int(data) % MVQFile.alignment == 0,
              Int(data) + Int(dataLength) + 8 == b.count
        else { throw fail("inconsistent section sizes (truncated or corrupt file)") }
        let stored = u64(b.count - 8)
        let actual = MVQFile.checksum(UnsafeRawBufferPointer(rebasing: b[0..<(b.count - 8)]))
        guard stored == actual else { throw fail("checksum mismatch: the file is corrupt") }
        dataOffset = Int(data)
        let header: JSON
        do {
            header = try JSON.parse(UnsafeRawBufferPointer(rebasing: b[64..<(64 + Int(headerLength))]))
        } catch let e as InputError {
            throw fail("header is not valid JSON (\(e.message))")
        }
        guard let model = header["model"], let table = header["tensors"]?.object else { throw fail("header lacks model or tensors") }
        self.model = model
        var tensors: [String: TensorInfo] = [:]
        for (name, e) in table {
            guard let dt = e["dtype"]?.string.flatMap(DType.init(rawValue:)), let shapeJSON = e["shape"]?.array,
                  let offset = e["offset"]?.int, let bytes = e["bytes"]?.int
            else { throw fail("bad tensor entry '\(name)'") }
            let shape = shapeJSON.compactMap(\.int)
            guard shape.count == shapeJSON.count, shape.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else { throw fail("tensor '\(name)' has a bad shape") }
            let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            guard count < 1 << 31, count * dt.byteSize == bytes else { throw fail("tensor '\(name)' size does not match its shape") }
            guard offset >= 0, offset % MVQFile.alignment == 0, offset + bytes <= Int(dataLength) else {
                throw fail("tensor '\(name)' lies outside the data section")
            }
            tensors[name] = TensorInfo(name: name, dtype: dt, shape: shape, dataRange: offset..<(offset + bytes))
        }
        self.tensors = tensors
        sectionSizes = [("preamble", 64), ("header (JSON)", Int(headerLength)), ("padding", Int(data) - 64 - Int(headerLength)),
                        ("tensors", Int(dataLength)), ("checksum", 8)]
    }

    public var fileSize: Int { file.count }

    public func info(_ name: String) throws -> TensorInfo {
        guard let t = tensors[name] else { throw InputError("\(path): missing tensor '\(name)'") }
        return t
    }

    /// Raw bytes of a tensor, in place in the mapping (64-byte aligned).
    public func raw(_ name: String) throws -> UnsafeRawBufferPointer {
        let t = try info(name)
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataOffset + t.dataRange.lowerBound)..<(dataOffset + t.dataRange.upperBound)])
    }

    public func int8s(_ name: String, count: Int? = nil) throws -> UnsafeBufferPointer<Int8> {
        let t = try info(name)
        guard t.dtype == .i8 else { throw InputError("\(path): tensor '\(name)' is \(t.dtype.rawValue), expected I8") }
        if let count, count != t.elementCount { throw InputError("\(path): tensor '\(name)' has \(t.elementCount) values, expected \(count)") }
        return try raw(name).bindMemory(to: Int8.self)
    }

    public func int32s(_ name: String, count: Int? = nil) throws -> [Int32] {
        let t = try info(name)
        guard t.dtype == .i32 else { throw InputError("\(path): tensor '\(name)' is \(t.dtype.rawValue), expected I32") }
        if let count, count != t.elementCount { throw InputError("\(path): tensor '\(name)' has \(t.elementCount) values, expected \(count)") }
        let r = try raw(name)
        return (0..<t.elementCount).map { Int32(bitPattern: r.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
    }

    public func float32s(_ name: String, count: Int? = nil) throws -> [Float] {
        let t = try info(name)
        guard t.dtype == .f32 else { throw InputError("\(path): tensor '\(name)' is \(t.dtype.rawValue), expected F32") }
        if let count, count != t.elementCount { throw InputError("\(path): tensor '\(name)' has \(t.elementCount) values, expected \(count)") }
        let r = try raw(name)
        return (0..<t.elementCount).map { Float(bitPattern: r.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
    }
}
