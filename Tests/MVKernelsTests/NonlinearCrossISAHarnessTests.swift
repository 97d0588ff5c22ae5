import MVKernels
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The AVX-512 softmax rows (nonlinear_avx512.c) against the Swift reference on hosts of any x86-64
/// kind: a C harness (NonlinearHarnessSource) is compiled with the system C compiler together with
/// the kernel file under `MV_SIMDE_EMULATION` (SIMDe emulates the intrinsics; the file shims what
/// SIMDe lacks), runs every case and hands back the output bytes, which must equal
/// `IntegerSoftmax.run(isa: .reference)` bit for bit. On a CPU with AVX-512 F/BW/VL the harness
/// also runs with the real intrinsics, and the emulated intrinsics must give the hardware's results
/// on edge-heavy inputs. The AVX2 rows and the scalar C model of mv_nonlinear_internal.h go through
/// the same cases. Skipped (with the reason) without a C compiler or SIMDe
/// (`apt-get install libsimde-dev`); `MV_HARNESS_CC` names another compiler.
final class NonlinearCrossISAHarnessTests: XCTestCase {
    struct Case {
        var p: IntegerSoftmax.Parameters
        var n, rows, inStride, outStride: Int
        var scores: [Int32]      // (rows − 1) · inStride + n
        var reference: [Int8]    // rows · n
    }

    var cDir: String {
        var dir = #filePath
        for _ in 0..<3 { dir = String(dir[..<dir.lastIndex(of: "/")!]) }  // package root
        return dir + "/Sources/MVKernelsC"
    }

    func sh(_ command: String) -> Int32 {
        print("$ \(command)")
        let status = system(command)
        if status == -1 { return -1 }
        return status & 0x7F != 0 ? 128 + (status & 0x7F) : (status >> 8) & 0xFF  // a signal as the shell shows it
    }

    func quiet(_ command: String) -> Bool { system(command + " >/dev/null 2>&1") == 0 }

    func compiler() throws -> String {
        if let cc = getenv("MV_HARNESS_CC").map({ String(cString: $0) }), !cc.isEmpty { return cc }
        for cc in ["cc", "clang", "gcc"] where quiet("command -v \(cc)") { return cc }
        throw XCTSkip("no C compiler (cc, clang, gcc) on PATH")
    }

    func requireSIMDe(_ cc: String) throws {
        guard quiet("echo '#include <simde/x86/avx512.h>' | \(cc) -E -x c -") else {
            throw XCTSkip("SIMDe headers (simde/x86/avx512.h) missing for \(cc): apt-get install libsimde-dev")
        }
    }

    func workDirectory() throws -> String {
        let dir = TemporaryDirectory().path
        let path = dir + "/harness.c"
        guard let f = fopen(path, "w") else { throw XCTSkip("cannot write \(path)") }
        fputs(NonlinearHarnessSource.harnessC, f)
        fclose(f)
        return dir
    }

    /// Compiles the harness (nonlinear_avx512.c included) and nonlinear_avx2.c into `dir/name`.
    func build(_ cc: String, emulated: Bool, dir: String, name: String) -> String {
        let out = "\(dir)/\(name)"
        let flags = "-O2 -Wall -Wno-psabi" + (emulated ? " -DMV_SIMDE_EMULATION" : "")
        XCTAssertEqual(sh("\(cc) \(flags) -o '\(out)' '\(dir)/harness.c' '\(cDir)/nonlinear_avx2.c' -I '\(cDir)' -I '\(cDir)/include'"), 0,
                       "compiling the harness (\(emulated ? "SIMDe" : "native"))")
        return out
    }

    // MARK: Cases

    /// Rows of length 1…300, 777, 1024, 4096 and some longer, 1–4 rows with random strides and
    /// parameters (input scales 1e-6…10, output scales 1/2048…1, zero points), scores of many kinds:
    /// full-range, small, peaked, flat, two-level, int32 extremes, differences where d' saturates
    /// (± 3 scores or pre-shift steps) and at the Q11 integer steps (u = 2048k ± 1).
    static func makeCases() throws -> [Case] {
        var rng = NLRNG(0x50F7)
        let lengths = Array(1...300) + [777, 1024, 4096] + (0..<12).map { _ in rng.int(301, 3000) }
        // Then rows whose codes are as sensitive to e as codes can be (see `fineRow`).
        let fine = (0..<300).map { _ in rng.int(2, 300) }
        var cases: [Case] = []
        for (index, n) in (lengths + fine).enumerated() {
            let sensitive = index >= lengths.count
            let rows = n > 1000 ? rng.int(1, 2) : rng.int(1, 4)
            let inStride = n + [0, rng.int(1, 7), rng.int(8, 40)][rng.int(0, 2)]
            let outStride = n + [0, rng.int(1, 9), rng.int(10, 70)][rng.int(0, 2)]
            let scale = rng.logUniform(1e-6, 10)
            let outScale = sensitive ? rng.logUniform(1.0 / 2048, 1.0 / 1024)
                                     : [1.0 / 256, 1.0 / 255, 1.0 / 2048, 1, rng.logUniform(1.0 / 2048, 1)][rng.int(0, 4)]
            let zp = sensitive ? -128 : Int32([-128, 0, 127, rng.int(-128, 127)][rng.int(0, 3)])
            let p = try IntegerSoftmax.Parameters.make(inputScale: scale, outputScale: outScale, outputZeroPoint: zp)
            // Stride padding holds garbage the kernel must ignore.
            var s = (0..<((rows - 1) * inStride + n)).map { _ in Int32(truncatingIfNeeded: rng.next()) }
            for r in 0..<rows {
                let row = sensitive ? fineRow(&rng, n: n, p: p) : scoreRow(&rng, n: n, p: p)
                for i in 0..<n { s[r * inStride + i] = row[i] }
            }
            var ref = [Int8](repeating: 0, count: rows * n)
            var scratch = [Int32](repeating: 0, count: IntegerSoftmax.scratchCount(rowLength: n))
            s.withUnsafeBufferPointer { sp in
                ref.withUnsafeMutableBufferPointer { op in
                    scratch.withUnsafeMutableBufferPointer { sc in
                        IntegerSoftmax.run(scores: sp.baseAddress!, scoreRowStride: inStride, output: op.baseAddress!,
                                           outputRowStride: n, rowLength: n, rows: 0..<rows, parameters: p,
                                           scratch: sc.baseAddress!, isa: .reference)
                    }
                }
            }
            cases.append(Case(p: p, n: n, rows: rows, inStride: inStride, outStride: outStride, scores: s, reference: ref))
        }
        return cases
    }

    /// A row with a codes step of 1/16 to 1/64 of a unit of e (the finest a row can have): one
    /// maximum (Σ stays near its e, 32766) and the rest at u = 2048k + x for k in 3…9 and any x,
    /// whose codes (at output scales near 1/2048) are below the saturation level.
    static func fineRow(_ rng: inout NLRNG, n: Int, p: IntegerSoftmax.Parameters) -> [Int32] {
        let m = Int64(Int32.max) - Int64(rng.int(0, 1000))
        let unit = scoresPerQ11Unit(p)
        let kMin = n > 60 ? 6 : 3
        return (0..<n).map { i in
            if i == 0 { return Int32(m) }
            let u = Double(rng.int(kMin, 9) * 2048 + rng.int(0, 2047))
            return Int32(clamping: m - max(0, Int64((u * unit).rounded()) + Int64(rng.int(-2, 2))))
        }
    }

    /// Score units per Q11 log₂ unit: u = d · 2^(a − r) · M / 2^16.
    static func scoresPerQ11Unit(_ p: IntegerSoftmax.Parameters) -> Double {
        NonlinearCheckless.pow2(16 + Int(p.expPreShift) - Int(p.expLeftShift)) / Double(p.expMultiplier)
    }

    static func scoreRow(_ rng: inout NLRNG, n: Int, p: IntegerSoftmax.Parameters) -> [Int32] {
        func clamp(_ v: Int64) -> Int32 { Int32(clamping: v) }
        switch rng.int(0, 9) {
        case 0: return (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next()) }
        case 1: return (0..<n).map { _ in Int32(rng.int(-3000, 3000)) }
        case 2: return (0..<n).map { _ in Int32(rng.int(-20, 20) * rng.int(1, 1000)) }
        case 3: return (0..<n).map { _ in rng.bool() ? Int32.max : Int32(rng.int(-5, 5)) }
        case 4:  // attention-like logits, sometimes with one dominant
            let spread = [0.1, 1, 4, 10, 30][rng.int(0, 4)], center = rng.double(-1e6, 1e6)
            var row = (0..<n).map { _ in clamp(Int64((center + spread * rng.normal() / p.inputScale).rounded())) }
            if rng.bool() { row[rng.int(0, n - 1)] = clamp(Int64((center + (3 * spread + 12) / p.inputScale).rounded())) }
            return row
        case 5: return [Int32](repeating: Int32(truncatingIfNeeded: rng.next()), count: n)
        case 6:
            let a = Int32(rng.int(-1_000_000, 1_000_000)), b = clamp(Int64(a) - Int64((rng.double(0, 8) / p.inputScale).rounded()))
            return (0..<n).map { _ in rng.bool() ? a : b }
        case 7:  // differences where d' saturates at 65535 (in units of 2^(r − a) scores)
            let m = Int64(Int32.max) - Int64(rng.int(0, 1000))
            let step = Int64(1) << Int64(p.expPreShift), saturation = (Int64(65535) << Int64(p.expPreShift)) >> Int64(p.expLeftShift)
            return (0..<n).map { i in
                i == 0 || rng.int(0, 7) == 0 ? clamp(m) : clamp(m - saturation + Int64(rng.int(-3, 3)) * (rng.bool() ? 1 : step))
            }
        case 8:  // differences at the integer steps of u (the shift counts k = u >> 11, up to 16)
            let m = Int64(Int32.max) - Int64(rng.int(0, 1000))
            let unit = scoresPerQ11Unit(p)
            return (0..<n).map { i in
                if i == 0 { return clamp(m) }
                let u = Double(rng.int(0, 16) * 2048 + rng.int(-1, 1))
                return clamp(m - max(0, Int64((u * unit).rounded()) + Int64(rng.int(-2, 2))))
            }
        default: return (0..<n).map { _ in [Int32.min, Int32.max, 0, -1, 1][rng.int(0, 4)] }
        }
    }

    func writeCases(_ cases: [Case], to path: String) throws {
        var words: [Int32] = [Int32(cases.count)]
        for c in cases {
            words += [c.p.expPreShift, c.p.expLeftShift, Int32(bitPattern: c.p.expMultiplier),
                      Int32(bitPattern: c.p.outputMultiplier), c.p.outputShift, c.p.outputZeroPoint,
                      Int32(c.n), Int32(c.rows), Int32(c.inStride), Int32(c.outStride)]
            words += c.scores
        }
        guard let f = fopen(path, "wb") else { throw XCTSkip("cannot write \(path)") }
        defer { fclose(f) }
        XCTAssertEqual(words.withUnsafeBufferPointer { fwrite($0.baseAddress!, 4, $0.count, f) }, words.count)
    }

    /// Runs the cases through `isa` of `binary`; returns the number of cases equal to the reference,
    /// or nil when the harness says the CPU lacks the ISA.
    func check(_ binary: String, isa: String, label: String, cases: [Case], dir: String) throws -> Int? {
        let input = "\(dir)/cases.bin", output = "\(dir)/out-\(isa).bin"
        if access(input, F_OK) != 0 { try writeCases(cases, to: input) }
        let status = sh("'\(binary)' run \(isa) '\(input)' '\(output)'")
        if status == 77 { return nil }
        XCTAssertEqual(status, 0, "\(label): harness failed (fault, padding overwritten or bad input)")
        guard status == 0, let f = fopen(output, "rb") else { return 0 }
        defer { fclose(f) }
        let total = cases.reduce(0) { $0 + $1.rows * $1.n }
        var got = [Int8](repeating: 0, count: total)
        let read = got.withUnsafeMutableBufferPointer { fread($0.baseAddress!, 1, total, f) }
        XCTAssertEqual(read, total, "\(label): short output")
        var offset = 0, passed = 0, reported = 0
        for (index, c) in cases.enumerated() {
            let slice = Array(got[offset..<offset + c.rows * c.n])
            offset += c.rows * c.n
            if slice == c.reference { passed += 1; continue }
            if reported < 5 {
                let i = slice.indices.first { slice[$0] != c.reference[$0] } ?? 0
                XCTFail("\(label) case \(index): n \(c.n) row \(i / c.n) element \(i % c.n): got \(slice[i]), reference \(c.reference[i]); \(c.p)")
                reported += 1
            }
        }
        print("softmax \(label): \(passed) of \(cases.count) cases (\(cases.reduce(0) { $0 + $1.rows }) rows) bit-exact with the Swift reference")
        XCTAssertEqual(passed, cases.count, label)
        return passed
    }

    // MARK: Tests

    func testAVX512SoftmaxUnderSIMDeEmulation() throws {
        #if arch(x86_64)
        let cc = try compiler()
        try requireSIMDe(cc)
        let dir = try workDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        let cases = try Self.makeCases()
        let h = build(cc, emulated: true, dir: dir, name: "h-simde")
        _ = try check(h, isa: "avx512", label: "avx512 (SIMDe, \(cc))", cases: cases, dir: dir)
        #else
        throw XCTSkip("x86-64 only (nonlinear_avx512.c is a trapping stub elsewhere)")
        #endif
    }

    /// The same cases with the real intrinsics, and the emulated intrinsics against the hardware.
    func testAVX512SoftmaxNativeAndEmulatedIntrinsicsAgree() throws {
        #if arch(x86_64)
        let cc = try compiler()
        let dir = try workDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        let native = build(cc, emulated: false, dir: dir, name: "h-native")
        guard quiet("'\(native)' cpu") else { throw XCTSkip("this CPU lacks AVX-512 F/BW/VL: the SIMDe test covers the kernel") }
        let cases = try Self.makeCases()
        _ = try check(native, isa: "avx512", label: "avx512 (native, \(cc))", cases: cases, dir: dir)
        try requireSIMDe(cc)
        let emulated = build(cc, emulated: true, dir: dir, name: "h-simde")
        XCTAssertEqual(sh("'\(native)' intrinsics 20000 > '\(dir)/native.txt'"), 0)
        XCTAssertEqual(sh("'\(emulated)' intrinsics 20000 > '\(dir)/simde.txt'"), 0)
        let a = try String(contentsOfFile: "\(dir)/native.txt", encoding: .utf8).split(separator: "\n")
        let b = try String(contentsOfFile: "\(dir)/simde.txt", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(a.count, b.count)
        XCTAssertGreaterThan(a.count, 30)
        for (x, y) in zip(a, b) where x != y { XCTFail("intrinsic digest differs, native \(x) vs SIMDe \(y)") }
        print("softmax avx512: \(a.count) intrinsics × 20000 edge-heavy inputs, SIMDe (with the shims) = hardware")
        #else
        throw XCTSkip("x86-64 only")
        #endif
    }

    /// The AVX2 rows (native on any CI x86-64) and the scalar C model of mv_nonlinear_internal.h.
    func testAVX2AndScalarModelSoftmax() throws {
        #if arch(x86_64)
        let cc = try compiler()
        let dir = try workDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        let cases = try Self.makeCases()
        let h = build(cc, emulated: false, dir: dir, name: "h-native")
        _ = try check(h, isa: "scalar", label: "scalar C model", cases: cases, dir: dir)
        if try check(h, isa: "avx2", label: "avx2 (native)", cases: cases, dir: dir) == nil {
            print("softmax avx2: this CPU lacks AVX2, skipped")
        }
        #else
        throw XCTSkip("x86-64 only")
        #endif
    }
}

private enum NonlinearCheckless {
    static func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }
}
