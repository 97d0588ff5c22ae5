// One kernel table per operator family, resolved once per `KernelISA`: which ISA's code each
// family runs for a requested ISA, the C entry points it calls, and, where a family has no code of
// its own for that ISA, the fallback and why. Kernels look their table up here instead of testing
// the ISA themselves, and `KernelConfig.summary(for:)` prints the same tables for `--verbose`.
//
// The C functions of every ISA are declared on every architecture (mv_int8.h, mv_nonlinear.h) and
// trap on the other one, so these tables name them all without `#if arch`; a kernel calls an entry
// only after checking `isSupported` of the ISA it resolved to.
import MVKernelsC

/// The operator families with ISA-specific code.
public enum KernelFamily: String, CaseIterable, Sendable {
    /// Int8 GEMM (int8 and int32 output) and the packing of its B operand.
    case gemm
    /// Element-wise int8 addition (`AddInt8`).
    case add
    /// `IntegerLayerNorm`.
    case layerNorm = "layernorm"
    /// `IntegerSoftmax`.
    case softmax
    /// `DepthwiseConv3x3Int8`.
    case depthwise
    /// `Conv2DInt8`: im2col + the GEMM, or Winograd F(2x2, 3x3).
    case conv

    /// The ISA whose code this family runs when `requested` is asked for, with the reason when it is
    /// another one. The one place that decides fallbacks; the tables below are built from it.
    func resolve(_ requested: KernelISA) -> (isa: KernelISA, fallbackReason: StaticString?) {
        switch (self, requested) {
        case (_, .reference), (.gemm, _), (.conv, _), (_, .avx2), (_, .neon):
            return (requested, nil)
        case (.softmax, .avx512vnni), (.add, .avx512vnni), (.layerNorm, .avx512vnni):
            return (requested, nil)
        case (.add, .neondot), (.layerNorm, .neondot), (.softmax, .neondot):
            return (.neon, "no SDOT rows, none needed: no int8 dot products for SDOT to speed up")
        case (.depthwise, .avx512vnni) where KernelISA.hasAVX512VBMI:
            return (requested, nil)
        case (.depthwise, .avx512vnni):
            // The AVX-512 loop (dwconv_avx512.c) is 1.2-1.6x faster than AVX2's without tables, but
            // MobileViT's depthwise layers all end in per-channel SiLU tables; looked up a byte at a
            // time they dominate both loops, and the AVX-512 loop measured no faster. With VBMI the
            // tables go by blocks (channel_lut_avx512vbmi.c) and the AVX-512 loop is selected.
            return (.avx2, "AVX-512 loop only with VBMI: without it the per-channel table lookups dominate and it is no faster")
        case (.depthwise, .neondot):
            return (.neon, "no SDOT loop: 9 taps per channel, not a K-long dot product")
        }
    }

    /// A fallback some weights take on top of `resolve` (decided when they are packed).
    func conditionalFallback(_ resolved: KernelISA) -> KernelConditionalFallback? {
        switch (self, resolved) {
        case (.depthwise, .neon):
            return KernelConditionalFallback(isa: .reference, condition: "a weight is -128",
                                             reason: "the NEON loop sums two int8 products in int16, which -128 x -128 x 2 overflows")
        default:
            return nil
        }
    }

    /// A variant the family takes for some shapes, named in the summary (not a fallback).
    func shapeVariant(_ resolved: KernelISA) -> StaticString? {
        switch (self, resolved) {
        case (.conv, .avx2): return "3x3 stride 1 with 16...3584 input channels: exact Winograd F(2x2, 3x3); otherwise im2col + gemm"
        case (.conv, _): return "im2col + gemm; Winograd 3x3 is AVX2 only"
        case (.gemm, _) where channelTableBlocks(resolved) != nil: return "per-column tables by AVX-512 VBMI blocks of 64 rows"
        case (.depthwise, _) where channelTableBlocks(resolved) != nil: return "per-channel tables by AVX-512 VBMI blocks of 64 pixels"
        default: return nil
        }
    }

    /// The routine that applies per-channel activation tables to blocks of 64 rows × 16 channels
    /// (`mv_channel_lut_block_vbmi`), for the family's loops of `resolved` that take it as their
    /// `lut_block` (the VNNI GEMM, the AVX2 and AVX-512 depthwise loops), where this CPU has
    /// AVX-512 VBMI; nil elsewhere (the loops then look the tables up themselves).
    func channelTableBlocks(_ resolved: KernelISA) -> ChannelTableBlocks? {
        guard KernelISA.hasAVX512VBMI else { return nil }
        switch (self, resolved) {
        case (.gemm, .avx512vnni), (.depthwise, .avx2), (.depthwise, .avx512vnni): return mv_channel_lut_block_vbmi
        default: return nil
        }
    }
}

/// `mv_channel_lut_block_vbmi`'s type: tables applied in place to a 64 × 16 block.
typealias ChannelTableBlocks = @convention(c) (UnsafeMutablePointer<Int8>?, UnsafePointer<Int8>?) -> Void

/// A fallback that depends on the data (the weights), not only on the ISA.
public struct KernelConditionalFallback: Sendable, Equatable {
    /// The ISA whose code runs instead.
    public let isa: KernelISA
    /// When it applies.
    public let condition: String
    /// Why.
    public let reason: String
}

/// Which ISA's code one family runs for a requested ISA.
public struct KernelResolution: Sendable, Equatable {
    public let family: KernelFamily
    public let requested: KernelISA
    /// The ISA whose code runs (the requested one unless the family falls back).
    public let resolved: KernelISA
    /// Why `resolved` differs from `requested`; nil when they are the same.
    public let fallbackReason: String?
    /// A further fallback for some weights.
    public let conditionalFallback: KernelConditionalFallback?
    /// Shape-dependent variants (conv's Winograd), for the summary.
    public let variant: String?

    public init(family: KernelFamily, requested: KernelISA) {
        let r = family.resolve(requested)
        self.family = family
        self.requested = requested
        self.resolved = r.isa
        self.fallbackReason = r.fallbackReason.map { $0.description }
        self.conditionalFallback = family.conditionalFallback(r.isa)
        self.variant = family.shapeVariant(r.isa).map { $0.description }
    }

    /// Whether the family runs another ISA's code than the requested one.
    public var isFallback: Bool { resolved != requested }

    /// One line: `family: isa`, then the fallback, a conditional fallback and a variant if any.
    public var summaryLine: String {
        var s = "\(family.rawValue): \(resolved.rawValue)"
        var notes: [String] = []
        if let fallbackReason { notes.append("fallback from \(requested.rawValue): \(fallbackReason)") }
        if let c = conditionalFallback { notes.append("\(c.isa.rawValue) when \(c.condition): \(c.reason)") }
        if let variant { notes.append(variant) }
        if !notes.isEmpty { s += " (" + notes.joined(separator: "; ") + ")" }
        return s
    }
}

// MARK: - The tables

extension KernelISA {
    /// Position in `allCases`: the index of every per-ISA table.
    @inlinable
    var tableIndex: Int {
        switch self {
        case .reference: return 0
        case .avx2: return 1
        case .avx512vnni: return 2
        case .neon: return 3
        case .neondot: return 4
        }
    }
}

/// The GEMM family for one ISA: the B layout, the packing routine and the two kernels.
@usableFromInline
struct GEMMKernels: @unchecked Sendable {  // C function pointers and values: no shared state
    typealias Kernel = @convention(c) (UnsafePointer<mv_gemm_args>?) -> Void
    typealias Pack = @convention(c) (UnsafePointer<Int8>?, Int, Int, Int, Int, Int, Int, Int,
                                     UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?) -> Int32

    let isa: KernelISA
    @usableFromInline let layout: PackedLayout
    let pack: Pack
    /// nil: the Swift reference (`Int8GEMM.referenceGEMM`).
    let int8Output: Kernel?
    let int32Output: Kernel?
    /// The kernels offset the activations by +128 to unsigned (VNNI's `vpdpbusd`), so the packed
    /// bias must subtract 128·Σ_k B[n][k].
    let activationsOffsetToUnsigned: Bool
    /// `mv_gemm_args.lut_block` for per-column tables, or nil (`KernelFamily.channelTableBlocks`).
    let tableBlocks: ChannelTableBlocks?

    private init(_ isa: KernelISA, _ layout: PackedLayout, _ pack: Pack, _ int8Output: Kernel?, _ int32Output: Kernel?) {
        self.isa = isa
        self.layout = layout
        self.pack = pack
        self.int8Output = int8Output
        self.int32Output = int32Output
        activationsOffsetToUnsigned = isa == .avx512vnni
        tableBlocks = KernelFamily.gemm.channelTableBlocks(isa)
    }

    private static func resolve(_ isa: KernelISA) -> GEMMKernels {
        func layout(_ nr: Int32, _ kr: Int32, _ kpad: Int32, _ elementSize: Int) -> PackedLayout {
            PackedLayout(nr: Int(nr), kr: Int(kr), kpad: Int(kpad), elementSize: elementSize)
        }
        switch isa {
        case .reference: return GEMMKernels(isa, layout(1, 1, 1, 1), mv_pack_b_int8, nil, nil)
        case .avx2:
            return GEMMKernels(isa, layout(MV_AVX2_NR, MV_AVX2_KR, MV_AVX2_KPAD, 2), mv_pack_b_int16_avx2, mv_gemm_q8_avx2, mv_gemm_i32_avx2)
        case .avx512vnni:
            return GEMMKernels(isa, layout(MV_VNNI_NR, MV_VNNI_KR, MV_VNNI_KPAD, 1), mv_pack_b_int8_avx512vnni,
                               mv_gemm_q8_avx512vnni, mv_gemm_i32_avx512vnni)
        case .neon:
            return GEMMKernels(isa, layout(MV_NEON_NR, MV_NEON_KR, MV_NEON_KPAD, 1), mv_pack_b_int8, mv_gemm_q8_neon, mv_gemm_i32_neon)
        case .neondot:
            return GEMMKernels(isa, layout(MV_NEONDOT_NR, MV_NEONDOT_KR, MV_NEONDOT_KPAD, 1), mv_pack_b_int8,
                               mv_gemm_q8_neondot, mv_gemm_i32_neondot)
        }
    }

    private static let byISA = KernelISA.allCases.map(resolve)
    static func `for`(_ isa: KernelISA) -> GEMMKernels { byISA[isa.tableIndex] }
}

/// The rows kernel of one element-wise family (add, LayerNorm, softmax) for one ISA.
struct RowKernels<Rows>: @unchecked Sendable {  // `Rows` is a C function pointer: no state
    /// The ISA whose code runs (after the family's fallback).
    let isa: KernelISA
    /// nil: the Swift reference.
    let rows: Rows?

    /// `x86AVX512`: the rows for `.avx512vnni` where the family resolves to it (AVX-512 F/BW).
    init(_ family: KernelFamily, _ requested: KernelISA, x86: Rows, x86AVX512: Rows? = nil, arm: Rows) {
        isa = family.resolve(requested).isa
        switch isa {
        case .reference: rows = nil
        case .avx2: rows = x86
        case .avx512vnni: rows = x86AVX512 ?? x86
        case .neon, .neondot: rows = arm
        }
    }
}

typealias AddRows = @convention(c) (UnsafePointer<Int8>?, Int, UnsafePointer<Int8>?, Int, UnsafeMutablePointer<Int8>?, Int,
                                    Int32, Int32, UnsafePointer<mv_add_params>?) -> Void
typealias LayerNormRows = @convention(c) (UnsafePointer<Int8>?, Int, UnsafeMutablePointer<Int8>?, Int, Int32,
                                          UnsafePointer<mv_layernorm_params>?) -> Void
typealias SoftmaxRows = @convention(c) (UnsafePointer<Int32>?, Int, UnsafeMutablePointer<Int8>?, Int, Int32, Int32,
                                        UnsafePointer<mv_softmax_params>?, UnsafeMutablePointer<Int32>?) -> Void

// One table per ISA and family, built on first use (generic types cannot hold static lets).
private let addTables = KernelISA.allCases.map { RowKernels<AddRows>(.add, $0, x86: mv_add_rows_avx2, x86AVX512: mv_add_rows_avx512, arm: mv_add_rows_neon) }
private let layerNormTables = KernelISA.allCases.map {
    RowKernels<LayerNormRows>(.layerNorm, $0, x86: mv_layernorm_rows_avx2, x86AVX512: mv_layernorm_rows_avx512, arm: mv_layernorm_rows_neon)
}
private let softmaxTables = KernelISA.allCases.map {
    RowKernels<SoftmaxRows>(.softmax, $0, x86: mv_softmax_rows_avx2, x86AVX512: mv_softmax_rows_avx512, arm: mv_softmax_rows_neon)
}

extension RowKernels where Rows == AddRows {
    static func `for`(_ isa: KernelISA) -> Self { addTables[isa.tableIndex] }
}
extension RowKernels where Rows == LayerNormRows {
    static func `for`(_ isa: KernelISA) -> Self { layerNormTables[isa.tableIndex] }
}
extension RowKernels where Rows == SoftmaxRows {
    static func `for`(_ isa: KernelISA) -> Self { softmaxTables[isa.tableIndex] }
}

/// The depthwise family for one ISA; `DepthwiseConv3x3Int8.init` packs for the ISA it names.
struct DepthwiseKernels: Sendable {
    /// The ISA whose weight layout and loop run (`avx2`, `avx512vnni`, `neon` or `reference`).
    let isa: KernelISA
    /// The ISA that runs instead when a weight is −128 (`isa` itself where that needs nothing).
    let isaWithMinus128Weights: KernelISA

    private init(_ requested: KernelISA) {
        isa = KernelFamily.depthwise.resolve(requested).isa
        isaWithMinus128Weights = KernelFamily.depthwise.conditionalFallback(isa)?.isa ?? isa
    }

    private static let byISA = KernelISA.allCases.map(DepthwiseKernels.init)
    static func `for`(_ isa: KernelISA) -> DepthwiseKernels { byISA[isa.tableIndex] }
}

/// The dense-convolution family for one ISA; `Conv2DInt8` asks it (through
/// `WinogradConv3x3Weights.applies`) whether Winograd runs.
struct ConvKernels: Sendable {
    /// The ISA of the im2col path's GEMM (the requested one: every ISA has a GEMM).
    let isa: KernelISA
    /// Whether 3x3 stride-1 convolutions (16…MV_WINO_MAX_CIN input channels) run Winograd F(2x2, 3x3).
    let hasWinograd3x3: Bool

    private init(_ requested: KernelISA) {
        isa = KernelFamily.conv.resolve(requested).isa
        hasWinograd3x3 = isa == .avx2
    }

    private static let byISA = KernelISA.allCases.map(ConvKernels.init)
    static func `for`(_ isa: KernelISA) -> ConvKernels { byISA[isa.tableIndex] }
}

/// What every family runs for a requested ISA, for logs and tests.
public enum KernelConfig {
    /// Which ISA each family runs for `isa`, in `KernelFamily.allCases` order.
    public static func resolutions(for isa: KernelISA) -> [KernelResolution] {
        KernelFamily.allCases.map { KernelResolution(family: $0, requested: isa) }
    }

    /// One line per family for a `--verbose` log, e.g. `gemm: avx512vnni`,
    /// `layernorm: avx2 (fallback from avx512vnni: …)`.
    public static func summary(for isa: KernelISA) -> [String] {
        resolutions(for: isa).map(\.summaryLine)
    }
}
