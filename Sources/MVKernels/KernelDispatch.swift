// Run-time selection of the int8 kernel instruction set. Every ISA gives bit-identical results;
// the choice only changes speed.
import MVKernelsC

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction sets the int8 kernels (GEMM, depthwise, dense conv) have inner loops for.
public enum KernelISA: String, CaseIterable, Sendable {
    /// Portable Swift; the specification every other path matches bit for bit.
    case reference
    /// x86-64 AVX2: sign-extended int16 pairs and `vpmaddwd`.
    case avx2
    /// x86-64 AVX-512 VNNI: `vpdpbusd` with activations offset to unsigned.
    case avx512vnni
    /// AArch64 Advanced SIMD without dot product (Cortex-A72): `smull`/`smlal`/`sadalp`.
    case neon
    /// AArch64 with the dot-product extension (Cortex-A76 and later): `sdot`.
    case neondot

    /// CPU feature bits from `mv_cpu_features()`, read once.
    public static let cpuFeatures: UInt32 = mv_cpu_features()

    /// Whether this CPU has AVX-512 VBMI (byte permutes): per-channel activation tables of the
    /// depthwise loops then go by blocks (`mv_channel_lut_block_vbmi`), and depthwise takes the
    /// AVX-512 loop for avx512vnni (`KernelFamily.resolve`).
    public static let hasAVX512VBMI: Bool = {
        #if arch(x86_64)
        return cpuFeatures & MV_CPU_AVX512VBMI != 0
        #else
        return false
        #endif
    }()

    /// Whether this CPU (and this build's architecture) can run the ISA.
    public var isSupported: Bool {
        let f = KernelISA.cpuFeatures
        switch self {
        case .reference: return true
        #if arch(x86_64)
        case .avx2: return f & MV_CPU_AVX2 != 0
        case .avx512vnni: return f & MV_CPU_AVX512VNNI != 0 && f & MV_CPU_AVX2 != 0
        case .neon, .neondot: return false
        #elseif arch(arm64)
        case .neon: return f & MV_CPU_NEON != 0
        case .neondot: return f & MV_CPU_NEON != 0 && f & MV_CPU_DOTPROD != 0
        case .avx2, .avx512vnni: return false
        #else
        default: return false
        #endif
        }
    }

    /// Every ISA this CPU can run, reference first (tests loop over these).
    public static let available: [KernelISA] = allCases.filter(\.isSupported)

    /// The fastest ISA this CPU supports, ignoring `MVQUANT_KERNELS`.
    public static let detected: KernelISA = {
        for isa in [KernelISA.avx512vnni, .avx2, .neondot, .neon] where isa.isSupported { return isa }
        return .reference
    }()

    /// Why the environment override was not honoured, if it was set and refused.
    public static let overrideRefusal: String? = resolveOverride().refusal

    /// The ISA the kernels use by default: `MVQUANT_KERNELS` when set to a supported ISA name,
    /// otherwise `detected`. A refused override prints a message to standard error once and
    /// falls back to `detected`.
    public static let best: KernelISA = {
        let r = resolveOverride()
        if let refusal = r.refusal { mv_log_stderr("mvquant: \(refusal)") }
        return r.isa
    }()

    /// Parses an ISA name (case-insensitive; `auto` or empty means `detected`) and checks the CPU.
    public static func select(named name: String) -> Result<KernelISA, KernelSelectionError> {
        let lower = name.lowercased()
        if lower.isEmpty || lower == "auto" || lower == "best" { return .success(detected) }
        guard let isa = KernelISA(rawValue: lower) else {
            return .failure(.unknown(name: name, known: allCases.map(\.rawValue)))
        }
        guard isa.isSupported else { return .failure(.unsupported(isa)) }
        return .success(isa)
    }

    private static func resolveOverride() -> (isa: KernelISA, refusal: String?) {
        guard let raw = getenv("MVQUANT_KERNELS") else { return (detected, nil) }
        switch select(named: String(cString: raw)) {
        case .success(let isa): return (isa, nil)
        case .failure(let e): return (detected, "MVQUANT_KERNELS: \(e.description); using \(detected.rawValue)")
        }
    }

    /// One line for a `--verbose` log: the selected ISA, how it was chosen, and what the CPU has.
    public static var selectionSummary: String {
        var s = "int8 kernels: \(best.rawValue)"
        if let raw = getenv("MVQUANT_KERNELS") {
            s += overrideRefusal == nil ? " (MVQUANT_KERNELS=\(String(cString: raw)))" : " (override refused: \(overrideRefusal!))"
        } else {
            s += " (auto)"
        }
        s += "; available: " + available.map(\.rawValue).joined(separator: ", ")
        return s
    }
}

/// Why an ISA name could not be selected.
public enum KernelSelectionError: Error, CustomStringConvertible, Sendable {
    case unknown(name: String, known: [String])
    case unsupported(KernelISA)

    public var description: String {
        switch self {
        case .unknown(let name, let known):
            return "unknown kernel ISA '\(name)' (known: \(known.joined(separator: ", ")))"
        case .unsupported(let isa):
            return "this CPU does not support the '\(isa.rawValue)' kernels (available: \(KernelISA.available.map(\.rawValue).joined(separator: ", ")))"
        }
    }
}
