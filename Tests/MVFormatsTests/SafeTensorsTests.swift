import MVFormats
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndHalfPrecisionConversion() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let halves: [Float] = [0, 1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, -0.333251953125]
        let f16 = halves.flatMap { v -> [UInt8] in let h = halfFromFloat(v); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
        let bf16 = halves.flatMap { v -> [UInt8] in let b = UInt16(v.bitPattern >> 16); return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        let path = dir.file("t.safetensors")
        try SafeTensorsWriter.write([
            .float32("a", shape: [2, 3], [1, 2, 3, 4, 5, 6]),
            SafeTensorsWriter.Entry(name: "h", dtype: .f16, shape: [halves.count], bytes: f16),
            SafeTensorsWriter.Entry(name: "b", dtype: .bf16, shape: [halves.count], bytes: bf16),
            SafeTensorsWriter.Entry(name: "u", dtype: .u8, shape: [3], bytes: [1, 2, 255]),
        ], metadata: ["k": "v"], to: path)
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.metadata["k"], "v")
        XCTAssertEqual(try f.floats("a"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try f.floats("h"), halves)
        XCTAssertEqual(try f.floats("b"), halves.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
        XCTAssertEqual(try f.uint8s("u"), [1, 2, 255])
        XCTAssertThrowsError(try f.floats("u"))
        XCTAssertThrowsError(try f.floats("missing"))
    }

    func testRejectsMalformedFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let good = SafeTensorsWriter.encode([.float32("a", shape: [4], [1, 2, 3, 4]), .float32("b", shape: [2], [5, 6])])
        func rejects(_ bytes: [UInt8], _ why: String, file: StaticString = #filePath, line: UInt = #line) {
            let p = dir.file("bad.safetensors")
            try? FileSystem.writeAtomically(p, bytes: bytes)
            XCTAssertThrowsError(try SafeTensorsFile(path: p), why, file: file, line: line) { e in
                let message = (e as? InputError)?.message ?? ""
                XCTAssertFalse(message.contains("\n"), "one-line error", file: file, line: line)
            }
        }
        for cut in [0, 7, 8, 20, good.count - 1] { rejects(Array(good[0..<cut]), "truncated at \(cut)") }
        func withHeader(_ text: String, data: Int) -> [UInt8] {
            var h = Array(text.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var n = h.count
            var out: [UInt8] = []
            for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
            return out + h + [UInt8](repeating: 0, count: data)
        }
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,17]}}"#, data: 16), "offset past end")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}"#, data: 16), "size mismatch")
        rejects(withHeader(#"{"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}}"#, data: 16), "unknown dtype")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, data: 16), "negative dim")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 16), "overlap")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,0]}}"#, data: 16), "reversed offsets")
        rejects(withHeader(#"[1,2]"#, data: 0), "not an object")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[99999999999,99999999999],"data_offsets":[0,16]}}"#, data: 16), "huge shape")
        rejects([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 0x20, count: 32), "huge header length")
        // The data section must be entirely indexed (the format's rule): holes and trailing bytes
        // are refused, and so is a header length a few bytes short of the padded header, which
        // still parses as JSON but shifts every tensor (found by fuzzing: it ran).
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#, data: 20), "hole")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12), "hole at the start")
        rejects(withHeader(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: 20), "trailing bytes")
        var short = withHeader(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"# + "     ", data: 16)
        let length = Int(short[0]) - 5
        short[0] = UInt8(length)
        XCTAssertEqual(short[8 + length], 0x20, "the first byte after the short header is padding")
        rejects(short, "header length short of the padding")
        XCTAssertNoThrow(try SafeTensorsFile(path: { let p = dir.file("ok.safetensors"); try? FileSystem.writeAtomically(p, bytes: good); return p }()))
    }
}
