import MVKernels
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Per-channel activation tables (`lookupTableStride` 256): every ISA matches the reference, and
/// the reference applies channel c's table to column c.
final class PerChannelTableTests: XCTestCase {
    func testGEMMPerColumnTablesOnEveryISA() {
        var rng = Int8TestRNG(seed: 91)
        // Row counts past 64 with partial blocks of 64 rows and partial column tiles: the AVX-512
        // GEMM's VBMI table blocks; K past its 4096-byte panel; more columns (656) than it keeps
        // blocks for (640), where it takes the gathers.
        for (m, k, n) in [(7, 13, 5), (33, 64, 40), (5, 3, 17), (64, 80, 160), (150, 24, 48), (71, 16, 33), (129, 8, 16),
                          (70, 4100, 20), (66, 12, 656)] {
            let a = rng.int8s(m * k), w = rng.int8s(n * k, -127, 127)
            let bias = (0..<n).map { _ in Int32(rng.int(-5000, 5000)) }
            let pairs = (0..<n).map { _ in randomRequantPair(&rng, allowNegativeShift: false) }
            let rq = RequantizationParameters(multipliers: pairs.map(\.0), shifts: pairs.map(\.1))
            let tables = rng.int8s(256 * n)
            let zp = Int32(rng.int(-20, 20)), az = Int32(rng.int(-128, 127))
            func run(_ isa: KernelISA, _ stride: Int, blocks: Bool = true) -> [Int8] {
                let b = PackedInt8Matrix(weights: w, n: n, k: k, bias: bias, aZeroPoint: az, requantization: rq, isa: isa)
                var out = [Int8](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { ab in
                    out.withUnsafeMutableBufferPointer { ob in
                        tables.withUnsafeBufferPointer { t in
                            Int8GEMM.run(a: ab.baseAddress!, aRows: .strided(k), m: m, k: k, b: b, output: ob.baseAddress!,
                                         outRows: .strided(n), outputZeroPoint: zp, lookupTable: t.baseAddress,
                                         lookupTableStride: stride, blockTableLookups: blocks)
                        }
                    }
                }
                return out
            }
            let plain = run(.reference, 0)
            let expected = run(.reference, 256)
            // Column c of the per-channel result is table c applied to the table-0 input code.
            var untabled = [Int8](repeating: 0, count: m * n)
            let b = PackedInt8Matrix(weights: w, n: n, k: k, bias: bias, aZeroPoint: az, requantization: rq, isa: .reference)
            a.withUnsafeBufferPointer { ab in
                untabled.withUnsafeMutableBufferPointer { ob in
                    Int8GEMM.run(a: ab.baseAddress!, aRows: .strided(k), m: m, k: k, b: b, output: ob.baseAddress!,
                                 outRows: .strided(n), outputZeroPoint: zp)
                }
            }
            for i in 0..<(m * n) {
                XCTAssertEqual(expected[i], tables[(i % n) * 256 + Int(untabled[i]) + 128])
                XCTAssertEqual(plain[i], tables[Int(untabled[i]) + 128])
            }
            for isa in KernelISA.available where isa != .reference {
                XCTAssertEqual(run(isa, 256), expected, "\(isa) m=\(m) k=\(k) n=\(n)")
                XCTAssertEqual(run(isa, 256, blocks: false), expected, "\(isa) gathers m=\(m) k=\(k) n=\(n)")
            }
        }
    }

    func testDepthwisePerChannelTablesOnEveryISA() {
        var rng = Int8TestRNG(seed: 92)
        // Wide rows give whole and partial 64-pixel blocks (the AVX2 loop's VBMI table lookups).
        for (h, w, c, stride) in [(5, 7, 3, 1), (9, 6, 37, 2), (8, 8, 32, 1), (3, 70, 48, 1), (4, 131, 16, 2)] {
            let input = rng.int8s(h * w * c), weights = rng.int8s(c * 9, -127, 127)
            let bias = (0..<c).map { _ in Int32(rng.int(-3000, 3000)) }
            let pairs = (0..<c).map { _ in randomRequantPair(&rng, allowNegativeShift: false) }
            let rq = RequantizationParameters(multipliers: pairs.map(\.0), shifts: pairs.map(\.1))
            let tables = rng.int8s(256 * c)
            let (oh, ow) = DepthwiseConv3x3Int8.outputSize(inputHeight: h, inputWidth: w, stride: stride)
            func run(_ isa: KernelISA, blocks: Bool = true) -> [Int8] {
                let dw = DepthwiseConv3x3Int8(weights: weights, bias: bias, channels: c, inputZeroPoint: 3, requantization: rq, isa: isa)
                var out = [Int8](repeating: 0, count: oh * ow * c)
                input.withUnsafeBufferPointer { ib in
                    out.withUnsafeMutableBufferPointer { ob in
                        tables.withUnsafeBufferPointer { t in
                            dw.run(input: ib.baseAddress!, inputHeight: h, inputWidth: w, stride: stride, output: ob.baseAddress!,
                                   outputZeroPoint: -5, lookupTable: t.baseAddress, lookupTableStride: 256, rows: 0..<oh,
                                   blockTableLookups: blocks)
                        }
                    }
                }
                return out
            }
            let expected = run(.reference)
            for isa in KernelISA.available where isa != .reference {
                XCTAssertEqual(run(isa), expected, "\(isa) \(h)x\(w)x\(c) stride \(stride)")
                XCTAssertEqual(run(isa, blocks: false), expected, "\(isa) byte lookups \(h)x\(w)x\(c) stride \(stride)")
            }
        }
    }

    /// Tables that end right before an unreadable page, in both layouts (one shared table, one per
    /// column), with outputs at codes -128 and 127 (the first and last entry of a table), partial
    /// column tiles and partial row blocks: a kernel reading past the last entry (a whole dword at
    /// code 127, or a lane beyond the last column) crashes here instead of passing by luck.
    func testGEMMTablesEndingAtAnUnreadablePage() throws {
        #if canImport(Glibc)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var rng = Int8TestRNG(seed: 93)
        for (m, k, n) in [(1, 4, 16), (9, 13, 17), (8, 32, 5), (3, 7, 33), (17, 20, 48)] {
            let a = rng.int8s(m * k), w = rng.int8s(n * k, -127, 127)
            // acc / 2 per output: a large bias pins a column to 127 or -128 (the last to 127),
            // a small one leaves it in between.
            let bias: [Int32] = (0..<n).map { j in
                j == n - 1 || j % 3 == 0 ? 1_000_000 : (j % 3 == 1 ? -1_000_000 : Int32(rng.int(-300, 300)))
            }
            let rq = RequantizationParameters(multipliers: [1 << 30], shifts: [0])
            func run(_ isa: KernelISA, _ table: UnsafePointer<Int8>?, _ stride: Int) -> [Int8] {
                let b = PackedInt8Matrix(weights: w, n: n, k: k, bias: bias, aZeroPoint: 0, requantization: rq, isa: isa)
                var out = [Int8](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { ab in
                    out.withUnsafeMutableBufferPointer { ob in
                        Int8GEMM.run(a: ab.baseAddress!, aRows: .strided(k), m: m, k: k, b: b, output: ob.baseAddress!,
                                     outRows: .strided(n), outputZeroPoint: 0, lookupTable: table, lookupTableStride: stride)
                    }
                }
                return out
            }
            let codes = run(.reference, nil, 0)
            XCTAssertTrue(codes.contains(-128) && codes.contains(127))
            for stride in [0, 256] {
                let count = stride == 0 ? 256 : 256 * n
                let size = (count + page - 1) / page * page
                guard let base = mmap(nil, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                      base != UnsafeMutableRawPointer(bitPattern: -1) else { throw XCTSkip("mmap failed") }
                defer { munmap(base, size + page) }
                XCTAssertEqual(mprotect(base + size, page, PROT_NONE), 0)
                let tables = base.advanced(by: size - count).bindMemory(to: Int8.self, capacity: count)
                for i in 0..<count { tables[i] = rng.int8() }
                let expected = codes.indices.map { i in tables[(i % n) * stride + Int(codes[i]) + 128] }
                for isa in KernelISA.available {
                    XCTAssertEqual(run(isa, tables, stride), expected, "\(isa) m=\(m) k=\(k) n=\(n) stride \(stride)")
                }
            }
        }
        #else
        throw XCTSkip("needs mmap/mprotect (Glibc)")
        #endif
    }
}
