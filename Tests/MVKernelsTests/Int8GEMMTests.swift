import Dispatch
import MVKernels
import MVKernelsC
import XCTest

/// A random GEMM problem with its own (unpacked) data, for comparing paths.
struct GEMMCase {
    var m: Int, n: Int, k: Int
    var a: [Int8]            // storage for A rows (addressed by aOffsets)
    var aOffsets: [Int32]
    var aStride: Int?        // non-nil: strided addressing with this stride (offsets still valid)
    var b: [Int8]            // N x K, row stride bStride (or column-major when bColumnMajor)
    var bStride: Int
    var bColumnMajor: Bool
    var bias: [Int32]?
    var aZeroPoint: Int32, bZeroPoint: Int32
    var mult: [Int32], shift: [Int32]
    var outZeroPoint: Int32, clampMin: Int32, clampMax: Int32
    var lut: [Int8]?
    var cOffsets: [Int32]
    var cStride: Int?
    var cCount: Int

    func bElement(_ row: Int, _ col: Int) -> Int8 {
        bColumnMajor ? b[col * bStride + row] : b[row * bStride + col]
    }

    init(_ rng: inout Int8TestRNG, m: Int, n: Int, k: Int, allowBZeroPoint: Bool = true) {
        self.m = m; self.n = n; self.k = k
        // A: strided with padding, or indexed rows in a shuffled order.
        if rng.bool() {
            let stride = k + rng.int(0, 5)
            aStride = stride
            a = rng.int8s(max(1, (m - 1) * stride + k))
            aOffsets = (0..<m).map { Int32($0 * stride) }
        } else {
            aStride = nil
            let rows = m + rng.int(0, 3)
            a = rng.int8s(rows * k)
            aOffsets = (0..<m).map { _ in Int32(rng.int(0, rows - 1) * k) }
        }
        if rng.int(0, 3) == 0 {  // occasionally extreme activations
            for i in a.indices where rng.int(0, 3) == 0 { a[i] = rng.bool() ? -128 : 127 }
        }
        bColumnMajor = rng.int(0, 3) == 0
        bStride = (bColumnMajor ? n : k) + rng.int(0, 3)
        let wlo = allowBZeroPoint && rng.int(0, 3) == 0 ? -128 : -127
        b = rng.int8s(bColumnMajor ? (k - 1) * bStride + n : (n - 1) * bStride + k, wlo, 127)
        bias = rng.bool() ? (0..<n).map { _ in Int32(rng.int(-100_000, 100_000)) } : nil
        let zps: [Int32] = [-128, 127, 0, Int32(rng.int(-128, 127))]
        aZeroPoint = zps[rng.int(0, 3)]
        bZeroPoint = allowBZeroPoint && rng.int(0, 3) == 0 ? zps[rng.int(0, 3)] : 0
        if rng.bool() {
            let p = randomRequantPair(&rng)
            mult = [p.0]; shift = [p.1]
        } else {
            mult = []; shift = []
            for _ in 0..<n { let p = randomRequantPair(&rng); mult.append(p.0); shift.append(p.1) }
        }
        // Make most outputs land inside int8 by scaling multipliers down with K.
        let kShift = Int32(max(0, 64 - Int(UInt64(k * 128 * 128).leadingZeroBitCount) - 8))
        shift = shift.map { $0 >= 0 && $0 < 30 ? min(62, $0 + kShift) : $0 }
        outZeroPoint = zps[rng.int(0, 3)]
        clampMin = rng.bool() ? -128 : Int32(rng.int(-128, 0))
        clampMax = rng.bool() ? 127 : Int32(rng.int(Int(clampMin), 127))
        lut = rng.bool() ? randomLUT(&rng) : nil
        if rng.bool() {
            let stride = n + rng.int(0, 4)
            cStride = stride
            cOffsets = (0..<m).map { Int32($0 * stride) }
            cCount = (m - 1) * stride + n
        } else {
            cStride = nil
            let perm = (0..<m).map { $0 }.sorted { _, _ in rng.bool() }
            var p = Array(0..<m)
            for i in stride(from: m - 1, to: 0, by: -1) { p.swapAt(i, rng.int(0, i)) }
            _ = perm
            cOffsets = p.map { Int32($0 * n) }
            cCount = m * n
        }
    }

    var requant: RequantizationParameters { RequantizationParameters(multipliers: mult, shifts: shift) }

    /// Naive triple loop straight from the definition (no folding).
    func naiveInt32() -> [Int32] {
        var out = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Int64 = Int64(bias?[j] ?? 0)
                for kk in 0..<k {
                    acc += (Int64(a[Int(aOffsets[i]) + kk]) - Int64(aZeroPoint)) * (Int64(bElement(j, kk)) - Int64(bZeroPoint))
                }
                out[i * n + j] = Int32(acc)
            }
        }
        return out
    }

    func naiveInt8() -> [Int8] {
        naiveInt32().enumerated().map { idx, acc in
            let j = idx % n
            let (mm, ss) = mult.count == 1 ? (mult[0], shift[0]) : (mult[j], shift[j])
            var o = requantizeToInt8(acc, multiplier: mm, shift: ss, zeroPoint: outZeroPoint, clampMin: clampMin, clampMax: clampMax)
            if let lut { o = lut[Int(o) + 128] }
            return o
        }
    }

    func pack(_ isa: KernelISA) -> PackedInt8Matrix {
        b.withUnsafeBufferPointer { bp in
            (bias ?? []).withUnsafeBufferPointer { biasp in
                let bptr = bias == nil ? nil : biasp.baseAddress
                if bColumnMajor {
                    return PackedInt8Matrix(columns: bp.baseAddress!, kStride: bStride, n: n, k: k, bias: bptr,
                                            aZeroPoint: aZeroPoint, bZeroPoint: bZeroPoint, requantization: requant, isa: isa)
                }
                return PackedInt8Matrix(rows: bp.baseAddress!, rowStride: bStride, n: n, k: k, bias: bptr,
                                        aZeroPoint: aZeroPoint, bZeroPoint: bZeroPoint, requantization: requant, isa: isa)
            }
        }
    }

    /// Runs the int8 GEMM with `packed`, returning outputs in logical [m][n] order.
    func runInt8(_ packed: PackedInt8Matrix) -> [Int8] {
        var out = [Int8](repeating: 0x55, count: cCount)
        a.withUnsafeBufferPointer { ap in
            aOffsets.withUnsafeBufferPointer { ao in
                cOffsets.withUnsafeBufferPointer { co in
                    out.withUnsafeMutableBufferPointer { op in
                        (lut ?? []).withUnsafeBufferPointer { lp in
                            Int8GEMM.run(a: ap.baseAddress!, aRows: aStride.map { .strided($0) } ?? .indexed(ao.baseAddress!),
                                         m: m, k: k, b: packed,
                                         output: op.baseAddress!, outRows: cStride.map { .strided($0) } ?? .indexed(co.baseAddress!),
                                         outputZeroPoint: outZeroPoint, clampMin: clampMin, clampMax: clampMax,
                                         lookupTable: lut == nil ? nil : lp.baseAddress)
                        }
                    }
                }
            }
        }
        return (0..<m * n).map { out[Int(cOffsets[$0 / n]) + $0 % n] }
    }

    func runInt32(_ packed: PackedInt8Matrix) -> [Int32] {
        var out = [Int32](repeating: 0x5555, count: cCount)
        a.withUnsafeBufferPointer { ap in
            aOffsets.withUnsafeBufferPointer { ao in
                cOffsets.withUnsafeBufferPointer { co in
                    out.withUnsafeMutableBufferPointer { op in
                        Int8GEMM.runInt32(a: ap.baseAddress!, aRows: aStride.map { .strided($0) } ?? .indexed(ao.baseAddress!),
                                          m: m, k: k, b: packed,
                                          output: op.baseAddress!, outRows: cStride.map { .strided($0) } ?? .indexed(co.baseAddress!))
                    }
                }
            }
        }
        return (0..<m * n).map { out[Int(cOffsets[$0 / n]) + $0 % n] }
    }
}

final class Int8GEMMTests: XCTestCase {
    func testAvailableISAs() {
        print("int8 GEMM ISAs available here: \(KernelISA.available.map(\.rawValue))")
        print(KernelISA.selectionSummary)
        XCTAssertTrue(KernelISA.available.contains(.reference))
        XCTAssertTrue(KernelISA.best.isSupported)
        if case .failure = KernelISA.select(named: "nonsense") {} else { XCTFail("unknown name accepted") }
        #if arch(x86_64)
        if case .failure = KernelISA.select(named: "neon") {} else { XCTFail("neon accepted on x86-64") }
        #endif
    }

    /// The reference GEMM against the naive triple loop (int8 and int32 outputs).
    func testReferenceMatchesNaive() {
        var rng = Int8TestRNG(seed: 10)
        for iter in 0..<300 {
            let c = GEMMCase(&rng, m: rng.int(1, 12), n: rng.int(1, 40), k: rng.int(1, 70))
            let p = c.pack(.reference)
            XCTAssertEqual(c.runInt8(p), c.naiveInt8(), "case \(iter) m\(c.m) n\(c.n) k\(c.k)")
            XCTAssertEqual(c.runInt32(p), c.naiveInt32(), "case \(iter) int32")
        }
    }

    /// Every SIMD path bit-exact against the reference on random shapes.
    func testEveryISAMatchesReference() {
        var rng = Int8TestRNG(seed: 11)
        let shapes: [(Int, Int, Int)] = [(1, 1, 1), (4, 16, 2), (5, 17, 3), (3, 8, 16), (7, 33, 31), (9, 24, 64),
                                         (2, 1, 1), (13, 5, 100), (1, 40, 2049), (6, 18, 4500), (8, 48, 17)]
        for isa in KernelISA.available where isa != .reference {
            var cases = shapes
            for _ in 0..<250 { cases.append((rng.int(1, 20), rng.int(1, 70), rng.int(1, 300))) }
            for (i, s) in cases.enumerated() {
                let c = GEMMCase(&rng, m: s.0, n: s.1, k: s.2)
                let ref = c.pack(.reference), fast = c.pack(isa)
                XCTAssertEqual(c.runInt8(fast), c.runInt8(ref), "\(isa) case \(i) m\(c.m) n\(c.n) k\(c.k)")
                XCTAssertEqual(c.runInt32(fast), c.runInt32(ref), "\(isa) int32 case \(i) m\(c.m) n\(c.n) k\(c.k)")
            }
        }
    }

    /// Disjoint row ranges computed concurrently give the same bytes as one call.
    func testConcurrentRowRanges() {
        var rng = Int8TestRNG(seed: 13)
        for isa in KernelISA.available {
            let m = 203, k = 75, n = 37
            let a = rng.int8s(m * k), w = rng.int8s(n * k, -127, 127)
            let requant = RequantizationParameters(realScales: (0..<n).map { _ in 0.0005 + 0.002 * rng.unit() })
            let packed = PackedInt8Matrix(weights: w, n: n, k: k, bias: (0..<n).map { Int32($0 * 100) }, aZeroPoint: 9,
                                          requantization: requant, isa: isa)
            let single = UnsafeMutablePointer<Int8>.allocate(capacity: m * n)
            let split = UnsafeMutablePointer<Int8>.allocate(capacity: m * n)
            defer { single.deallocate(); split.deallocate() }
            a.withUnsafeBufferPointer { ap in
                let base = ap.baseAddress!
                Int8GEMM.run(a: base, aRows: .strided(k), m: m, k: k, b: packed, output: single, outRows: .strided(n),
                             outputZeroPoint: -3)
                let aBits = Int(bitPattern: base), cBits = Int(bitPattern: split)
                DispatchQueue.concurrentPerform(iterations: 7) { i in
                    let r0 = i * m / 7, r1 = (i + 1) * m / 7
                    let ap = UnsafePointer<Int8>(bitPattern: aBits)!, cp = UnsafeMutablePointer<Int8>(bitPattern: cBits)!
                    Int8GEMM.run(a: ap + r0 * k, aRows: .strided(k), m: r1 - r0, k: k, b: packed, output: cp + r0 * n,
                                 outRows: .strided(n), outputZeroPoint: -3)
                }
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: single, count: m * n)),
                           Array(UnsafeBufferPointer(start: split, count: m * n)), "\(isa)")
        }
    }

    /// Repacking into pre-allocated storage gives the same results as a fresh pack.
    func testRepackReusesStorage() {
        var rng = Int8TestRNG(seed: 12)
        for isa in KernelISA.available {
            let packed = PackedInt8Matrix(capacityN: 64, capacityK: 64, isa: isa)
            XCTAssertEqual(packed.capacity, max(PackedInt8Matrix.storageSize(n: 64, k: 64, isa: isa), 64))
            for _ in 0..<40 {
                let c = GEMMCase(&rng, m: rng.int(1, 9), n: rng.int(1, 64), k: rng.int(1, 64))
                c.b.withUnsafeBufferPointer { bp in
                    if c.bColumnMajor {
                        packed.repack(columns: bp.baseAddress!, kStride: c.bStride, n: c.n, k: c.k,
                                      aZeroPoint: c.aZeroPoint, bZeroPoint: c.bZeroPoint, requantization: c.requant)
                    } else {
                        packed.repack(rows: bp.baseAddress!, rowStride: c.bStride, n: c.n, k: c.k,
                                      aZeroPoint: c.aZeroPoint, bZeroPoint: c.bZeroPoint, requantization: c.requant)
                    }
                }
                var noBias = c
                noBias.bias = nil
                XCTAssertEqual(c.runInt8(packed), noBias.naiveInt8(), "\(isa)")
                XCTAssertEqual(c.runInt32(packed), noBias.naiveInt32(), "\(isa)")
                for row in 0..<c.n { for col in 0..<c.k where (row + col) % 7 == 0 { XCTAssertEqual(packed.element(row, col), c.bElement(row, col)) } }
            }
        }
    }

    /// The AVX2 packer of the VNNI layout (and the AVX-512 one, where the CPU has it) writes the
    /// same bytes, column sums and -128 flag as the portable packer, for row- and column-major
    /// sources, any N, K and strides, -128 present or not.
    func testVNNIPackMatchesPortable() throws {
        guard KernelISA.avx2.isSupported else { throw XCTSkip("no AVX2 on this machine") }
        let packers = [mv_pack_b_int8, mv_pack_b_int8_avx2] + (KernelISA.avx512vnni.isSupported ? [mv_pack_b_int8_avx512vnni] : [])
        var rng = Int8TestRNG(seed: 31)
        for it in 0..<400 {
            let n = it < 64 ? it + 1 : rng.int(1, 300), k = it < 64 ? 64 - it : rng.int(1, 300)
            let columnMajor = it % 2 == 1
            let stride = (columnMajor ? n : k) + rng.int(0, 9)
            var src = rng.int8s((columnMajor ? k : n) * stride)
            if it % 3 == 0 { for i in src.indices where src[i] == -128 { src[i] = -127 } }
            let kp = (k + 3) / 4 * 4, np = (n + 15) / 16 * 16
            var results: [([Int8], [Int32], Int32)] = []
            for pack in packers {
                var dst = [Int8](repeating: 0, count: np * kp)
                var sums = [Int32](repeating: 7, count: n)
                let flag = src.withUnsafeBufferPointer { s in
                    dst.withUnsafeMutableBytes { d in
                        sums.withUnsafeMutableBufferPointer { sm in
                            pack(s.baseAddress!, columnMajor ? 1 : stride, columnMajor ? stride : 1,
                                 n, k, 16, 4, kp, d.baseAddress!, sm.baseAddress!)
                        }
                    }
                }
                results.append((dst, sums, flag))
            }
            for (i, r) in results.enumerated().dropFirst() {
                XCTAssertEqual(results[0].0, r.0, "packer \(i): bytes n=\(n) k=\(k) columnMajor=\(columnMajor)")
                XCTAssertEqual(results[0].1, r.1, "packer \(i): sums n=\(n) k=\(k) columnMajor=\(columnMajor)")
                XCTAssertEqual(results[0].2, r.2, "packer \(i): flag n=\(n) k=\(k) columnMajor=\(columnMajor)")
            }
        }
    }
}
