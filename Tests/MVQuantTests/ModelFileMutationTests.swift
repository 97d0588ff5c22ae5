import MVFormats
import MVInt8
import MVModel
import TestSupport
import XCTest

/// A model file whose checksum is right but whose contents are wrong (a buggy writer, a
/// hand-edited header, a tool that recomputed the checksum) is refused with an error or runs; it
/// never traps. The checksum tests cover accidental corruption; these mutations get past it.
final class ModelFileMutationTests: XCTestCase {
    /// 60 deterministic mutations of the compiled default model, alternating between one header
    /// value (configuration, activation parameters, scalars, preprocessing, labels: a section is
    /// picked first so that the long per-channel arrays do not crowd out the rest) and one element
    /// of a tensor (weights, biases, multipliers, shifts, tables, LayerNorm and softmax constants).
    /// Each mutated file is written with a valid checksum, loaded, compiled into an executor and
    /// run on one image. A trap ends the test process, so getting to the end is the check; the
    /// counts show that both outcomes occur (every mutation refused would mean they are too crude).
    func testMutatedModelsAreRefusedOrRunButNeverTrap() throws {
        guard let s = EndToEndInt8Tests.setup else { return }
        let reader = s.model.file
        let tensors = try reader.copiedTensors()
        guard case let .object(sections) = reader.model else { return XCTFail("the model header is not an object") }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("mutated.mvq")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        var refused = 0, ran = 0
        var messages: Set<String> = []
        for trial in 0..<60 {
            var header = sections
            var body = tensors
            if trial % 2 == 0 {
                let section = random(header.count)
                var index = random(Self.leafCount(header[section].1))
                let kind = random(Self.replacementKinds)
                header[section].1 = Self.replacingLeaf(header[section].1, &index) { Self.replacement(for: $0, kind) }
            } else {
                let t = random(body.count)
                let size = body[t].dtype.byteSize
                let count = body[t].bytes.count / size
                guard count > 0 else { continue }
                let at = random(count) * size
                let value = Self.element(body[t].dtype, random(8))
                for (i, byte) in value.enumerated() where i < size { body[t].bytes[at + i] = byte }
            }
            try MVQFile.write(header: .object(header), tensors: body, to: path)
            do {
                let model = try QuantizedModel(path: path)
                let executor = try Int8Executor(model: model, threads: 1)
                _ = s.images[0].withUnsafeBufferPointer { executor.run(nchw: $0, height: 64, width: 64) }
                ran += 1
            } catch {
                refused += 1
                let message = "\(error)"
                XCTAssertFalse(message.isEmpty || message.contains("\n"), "an error message is one line: \(message)")
                messages.insert(message)
            }
        }
        print("mutated models: \(refused) refused, \(ran) ran; for example: \(messages.sorted().prefix(3).joined(separator: " | "))")
        XCTAssertGreaterThan(refused, 0)
        XCTAssertGreaterThan(ran, 0)
    }

    /// Files of the earlier formats (version 1: softmax scalars of the 32-bit computation; version 2:
    /// TFLite-style add scalars; version 3: LayerNorm parameters of the 64-bit computation; version 4:
    /// softmax scalars of the rounded 32-bit difference multiply) are refused with one line that
    /// says to recalibrate, not run with
    /// misread parameters; the version check is what refuses them.
    func testModelsOfEarlierFormatVersionsAreRefused() throws {
        guard let s = EndToEndInt8Tests.setup else { return }
        let reader = s.model.file
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        for old: UInt8 in [1, 2, 3, 4] {
            let path = dir.file("version\(old).mvq")
            try MVQFile.write(header: reader.model, tensors: try reader.copiedTensors(), to: path)
            var bytes = try FileSystem.read(path)
            XCTAssertEqual(bytes[8], UInt8(MVQFile.version))
            bytes[8] = old
            let sum = bytes.withUnsafeBytes { MVQFile.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 8)])) }
            for i in 0..<8 { bytes[bytes.count - 8 + i] = UInt8(truncatingIfNeeded: sum >> (8 * UInt64(i))) }
            try FileSystem.writeAtomically(path, bytes: bytes)
            XCTAssertThrowsError(try QuantizedModel(path: path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("older mvquant") && message.contains("recalibrate"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    static func leafCount(_ json: JSON) -> Int {
        switch json {
        case let .array(a): return max(1, a.reduce(0) { $0 + leafCount($1) })
        case let .object(o): return max(1, o.reduce(0) { $0 + leafCount($1.1) })
        default: return 1
        }
    }

    /// `json` with its `index`-th leaf, depth first (an empty array or object counts as a leaf),
    /// replaced by `transform` of it.
    static func replacingLeaf(_ json: JSON, _ index: inout Int, _ transform: (JSON) -> JSON) -> JSON {
        switch json {
        case let .array(a) where !a.isEmpty:
            return .array(a.map { replacingLeaf($0, &index, transform) })
        case let .object(o) where !o.isEmpty:
            return .object(o.map { ($0.0, replacingLeaf($0.1, &index, transform)) })
        default:
            defer { index -= 1 }
            return index == 0 ? transform(json) : json
        }
    }

    static let replacementKinds = 14

    /// Wrong values of every kind: out of range, non-integral, huge, of the wrong type.
    static func replacement(for old: JSON, _ kind: Int) -> JSON {
        let v = old.double ?? 1
        switch kind {
        case 0: return .number(0)
        case 1: return .number(-1)
        case 2: return .number(1e12)
        case 3: return .number(2_147_483_648)
        case 4: return .number(3.5)
        case 5: return .number(-1e-30)
        case 6: return .string("x")
        case 7: return .null
        case 8: return .array([])
        case 9: return .object([])
        case 10: return .number(v + 1)
        case 11: return .number(v * 2)
        case 12: return .number(-v)
        default: return .number(v * 1e6)
        }
    }

    /// A little-endian element value for `dtype`: extremes, signs and values at the edge of the
    /// ranges the loader checks (shifts of 31/32/63/64, int8 −128).
    static func element(_ dtype: DType, _ kind: Int) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        switch dtype {
        case .i8, .u8, .bool: return [[0x80, 0x7F, 0, 0xFF, 0x81, 1, 0x40, 0xC0][kind]]
        case .i32, .u32: return le([0, 1, -1, Int32.max, Int32.min, 31, 32, 64][kind])
        case .i64, .u64: return le([0, 1, -1, Int64.max, Int64.min, 1 << 62, 63, 64][kind])
        case .f32:
            return le([Float.nan, .infinity, 0, -1, 1e38, .leastNonzeroMagnitude, -.infinity, 0.5][kind].bitPattern)
        default: return le(UInt16([0, 1, 0xFFFF, 0x7C00, 0x7E00, 0x8000, 0x3C00, 0xFC00][kind]))
        }
    }
}
