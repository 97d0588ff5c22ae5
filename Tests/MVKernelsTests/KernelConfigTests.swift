import MVKernels
import XCTest

/// The per-family kernel tables: what `bench --verbose` prints, that it names every fallback, and
/// that the families declared but not yet wired to the tables (depthwise, conv) do what they say.
final class KernelConfigTests: XCTestCase {
    /// The ISA each family is expected to run: its own, except the element-wise families and
    /// depthwise on the dot-product ISAs, which have no code of their own there, and depthwise on
    /// AVX-512 VNNI without VBMI (this CPU's), where its AVX-512 loop is no faster than AVX2's.
    func expectedISA(_ family: KernelFamily, _ requested: KernelISA) -> KernelISA {
        switch (family, requested) {
        case (.depthwise, .avx512vnni): return KernelISA.hasAVX512VBMI ? .avx512vnni : .avx2
        case (.add, .neondot), (.layerNorm, .neondot), (.softmax, .neondot), (.depthwise, .neondot): return .neon
        default: return requested
        }
    }

    func testEveryFamilyResolvesToASupportedISAAndReportsItsFallback() {
        for isa in KernelISA.available {
            let summary = KernelConfig.summary(for: isa)
            print("kernels for \(isa.rawValue):\n  " + summary.joined(separator: "\n  "))
            let resolutions = KernelConfig.resolutions(for: isa)
            XCTAssertEqual(resolutions.map(\.family), KernelFamily.allCases)
            XCTAssertEqual(summary.count, KernelFamily.allCases.count)
            for (r, line) in zip(resolutions, summary) {
                XCTAssertEqual(r.requested, isa)
                XCTAssertEqual(r.resolved, expectedISA(r.family, isa), "\(r.family) for \(isa)")
                XCTAssertTrue(r.resolved.isSupported, "\(r.family) for \(isa) resolves to unsupported \(r.resolved)")
                XCTAssertTrue(line.hasPrefix("\(r.family.rawValue): \(r.resolved.rawValue)"), line)
                XCTAssertEqual(r.isFallback, r.fallbackReason != nil, line)
                XCTAssertEqual(line.contains("fallback from \(isa.rawValue): "), r.isFallback, line)
                if let c = r.conditionalFallback {
                    XCTAssertTrue(c.isa.isSupported)
                    XCTAssertTrue(line.contains("\(c.isa.rawValue) when \(c.condition)"), line)
                }
            }
        }
    }

    /// Every ISA's table names its fallbacks, including the ISAs this CPU cannot run (a table is
    /// data; only running it needs the CPU).
    func testFallbacksOfEveryISA() {
        for isa in KernelISA.allCases {
            for r in KernelConfig.resolutions(for: isa) {
                XCTAssertEqual(r.resolved, expectedISA(r.family, isa), "\(r.family) for \(isa)")
                XCTAssertEqual(r.conditionalFallback != nil, r.family == .depthwise && r.resolved == .neon)
            }
        }
        let vnni = KernelConfig.summary(for: .avx512vnni)
        XCTAssertTrue(vnni.contains { $0.hasPrefix("gemm: avx512vnni") && !$0.contains("fallback") })
        XCTAssertTrue(vnni.contains("layernorm: avx512vnni"))
        XCTAssertTrue(vnni.contains { $0.hasPrefix(KernelISA.hasAVX512VBMI ? "depthwise: avx512vnni" : "depthwise: avx2 (fallback from avx512vnni: ") })
        XCTAssertTrue(KernelConfig.summary(for: .neondot).contains { $0.hasPrefix("softmax: neon (fallback from neondot: ") })
        XCTAssertTrue(KernelConfig.summary(for: .reference).allSatisfy { !$0.contains("fallback") })
    }

    /// Depthwise and conv choose their ISA themselves until they read the table: the table must
    /// say what they do.
    func testDepthwiseAndConvDoWhatTheTableDeclares() {
        let requant = RequantizationParameters(multiplier: 1 << 30, shift: 4)
        for isa in KernelISA.available {
            let dw = KernelResolution(family: .depthwise, requested: isa)
            let plain = DepthwiseConv3x3Int8(weights: [Int8](repeating: 3, count: 2 * 9), bias: nil, channels: 2,
                                             inputZeroPoint: 0, requantization: requant, isa: isa)
            XCTAssertEqual(plain.isa, dw.resolved, "depthwise for \(isa)")
            var withMin = [Int8](repeating: 3, count: 2 * 9)
            withMin[5] = -128
            let minus128 = DepthwiseConv3x3Int8(weights: withMin, bias: nil, channels: 2, inputZeroPoint: 0,
                                                requantization: requant, isa: isa)
            XCTAssertEqual(minus128.isa, dw.conditionalFallback?.isa ?? dw.resolved, "depthwise with -128 for \(isa)")

            let conv = KernelResolution(family: .conv, requested: isa)
            let c3 = Conv2DInt8(weights: [Int8](repeating: 1, count: 4 * 16 * 9), bias: nil, inChannels: 16, outChannels: 4,
                                kernelSize: 3, stride: 1, inputZeroPoint: 0, requantization: requant, isa: isa)
            XCTAssertEqual(c3.usesWinograd, conv.variant?.contains("Winograd F(2x2, 3x3)") == true, "conv for \(isa)")
            if let packed = c3.weights { XCTAssertEqual(packed.isa, conv.resolved) }

            let gemm = KernelResolution(family: .gemm, requested: isa)
            XCTAssertEqual(PackedInt8Matrix(weights: [1, 2], n: 1, k: 2, aZeroPoint: 0, isa: isa).isa, gemm.resolved)
        }
    }
}
