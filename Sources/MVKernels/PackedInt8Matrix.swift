// The B operand of the int8 GEMM (N x K, row n = output channel), packed once for one ISA
// together with the folded bias and the per-channel requantisation parameters.
import MVKernelsC

/// Tile geometry of a packed layout (see mv_int8.h; each ISA's is in its `GEMMKernels`).
@usableFromInline
struct PackedLayout: Sendable {
    /// Output channels per block.
    @usableFromInline let nr: Int
    /// K elements grouped together per column inside a block.
    let kr: Int
    /// K is padded with zeros to a multiple of this.
    let kpad: Int
    /// Bytes per packed weight element (2 for AVX2's pre-widened int16).
    let elementSize: Int

    init(nr: Int, kr: Int, kpad: Int, elementSize: Int) {
        (self.nr, self.kr, self.kpad, self.elementSize) = (nr, kr, kpad, elementSize)
    }

    func paddedN(_ n: Int) -> Int { (n + nr - 1) / nr * nr }
    func paddedK(_ k: Int) -> Int { (k + kpad - 1) / kpad * kpad }
    /// Byte offset of the weights after bias, multiplier and shift (3 x paddedN Int32), 64-aligned.
    func weightsOffset(n: Int) -> Int { (3 * 4 * paddedN(n) + 63) & ~63 }
    func storageSize(n: Int, k: Int) -> Int {
        weightsOffset(n: n) + paddedN(n) * paddedK(k) * elementSize
    }
}

/// B packed for one ISA: weights in that ISA's tile layout, `bias'[n] = bias[n] − zp_A·Σ_k B[n][k]
/// (+ K·zp_A·zp_B)` (plus the unsigned-activation correction on VNNI), and per-channel requantisation
/// multipliers and shifts.
///
/// Immutable once packed, except through `repack`, which must not run while another thread uses
/// the matrix (attention keeps one per thread and repacks it per head, without allocating).
public final class PackedInt8Matrix: @unchecked Sendable {
    /// The ISA whose kernels this layout is for.
    public let isa: KernelISA
    /// Output channels (rows of B) and reduction length.
    public private(set) var n: Int
    public private(set) var k: Int
    /// Zero point of B (0 for weights; K or V activations in attention may have one).
    public private(set) var bZeroPoint: Int32
    /// Bytes allocated.
    public let capacity: Int

    /// The GEMM kernel table of `isa`: layout, packing routine and kernels.
    @usableFromInline let kernels: GEMMKernels
    @usableFromInline var layout: PackedLayout { kernels.layout }
    @usableFromInline let storage: UnsafeMutableRawPointer
    @usableFromInline var flags: Int32 = 0

    /// Bytes needed to pack an N x K matrix for `isa`.
    public static func storageSize(n: Int, k: Int, isa: KernelISA = .best) -> Int {
        GEMMKernels.for(isa).layout.storageSize(n: n, k: k)
    }

    /// Allocates storage for matrices up to `storageSize(n:k:isa:)` bytes (e.g. the largest head of
    /// an attention layer), to be filled by `repack`. Until then it is a 0 x 0 matrix.
    public init(capacityN: Int, capacityK: Int, isa: KernelISA = .best) {
        precondition(capacityN >= 0 && capacityK >= 0)
        self.isa = isa
        self.kernels = GEMMKernels.for(isa)
        self.capacity = max(kernels.layout.storageSize(n: capacityN, k: capacityK), 64)
        self.storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        self.storage.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        self.n = 0
        self.k = 0
        self.bZeroPoint = 0
    }

    deinit { storage.deallocate() }

    /// Packs B from a row-major source: element (n, k) at `rows[n * rowStride + k]` (weights
    /// [N][K]; K-matrix rows for QKᵀ).
    /// - Parameters:
    ///   - bias: N int32 values at input_scale·weight_scale[n], or nil for none.
    ///   - aZeroPoint: zero point of the A operand (activations) folded into the bias.
    ///   - bZeroPoint: zero point of B (0 for symmetric weights).
    ///   - requantization: per-channel (N entries) or shared multiplier/shift; nil when only the
    ///     int32-output GEMM is used.
    public convenience init(
        rows: UnsafePointer<Int8>, rowStride: Int, n: Int, k: Int,
        bias: UnsafePointer<Int32>? = nil, aZeroPoint: Int32, bZeroPoint: Int32 = 0,
        requantization: RequantizationParameters? = nil, isa: KernelISA = .best
    ) {
        self.init(capacityN: n, capacityK: k, isa: isa)
        repack(rows: rows, rowStride: rowStride, n: n, k: k, bias: bias, aZeroPoint: aZeroPoint,
               bZeroPoint: bZeroPoint, requantization: requantization)
    }

    /// Packs B from a column-major source: element (n, k) at `columns[k * kStride + n]` (V for P·V).
    public convenience init(
        columns: UnsafePointer<Int8>, kStride: Int, n: Int, k: Int,
        bias: UnsafePointer<Int32>? = nil, aZeroPoint: Int32, bZeroPoint: Int32 = 0,
        requantization: RequantizationParameters? = nil, isa: KernelISA = .best
    ) {
        self.init(capacityN: n, capacityK: k, isa: isa)
        repack(columns: columns, kStride: kStride, n: n, k: k, bias: bias, aZeroPoint: aZeroPoint,
               bZeroPoint: bZeroPoint, requantization: requantization)
    }

    /// Packs weights given as a Swift array `[N][K]` (row-major, contiguous).
    public convenience init(
        weights: [Int8], n: Int, k: Int, bias: [Int32]? = nil, aZeroPoint: Int32, bZeroPoint: Int32 = 0,
        requantization: RequantizationParameters? = nil, isa: KernelISA = .best
    ) {
        precondition(weights.count == n * k, "weights must hold N x K values")
        precondition(bias == nil || bias!.count == n, "bias must hold N values")
        self.init(capacityN: n, capacityK: k, isa: isa)
        weights.withUnsafeBufferPointer { w in
            if let bias {
                bias.withUnsafeBufferPointer { b in
                    repack(rows: w.baseAddress!, rowStride: k, n: n, k: k, bias: b.baseAddress, aZeroPoint: aZeroPoint,
                           bZeroPoint: bZeroPoint, requantization: requantization)
                }
            } else {
                repack(rows: w.baseAddress!, rowStride: k, n: n, k: k, bias: nil, aZeroPoint: aZeroPoint,
                       bZeroPoint: bZeroPoint, requantization: requantization)
            }
        }
    }

    /// Re-packs a row-major source into this matrix's storage (no allocation).
    public func repack(
        rows: UnsafePointer<Int8>, rowStride: Int, n: Int, k: Int,
        bias: UnsafePointer<Int32>? = nil, aZeroPoint: Int32, bZeroPoint: Int32 = 0,
        requantization: RequantizationParameters? = nil
    ) {
        pack(source: rows, nStride: rowStride, kStride: 1, n: n, k: k, bias: bias, aZeroPoint: aZeroPoint,
             bZeroPoint: bZeroPoint, requantization: requantization)
    }

    /// Re-packs a column-major source (element (n, k) at `columns[k * kStride + n]`), no allocation.
    public func repack(
        columns: UnsafePointer<Int8>, kStride: Int, n: Int, k: Int,
        bias: UnsafePointer<Int32>? = nil, aZeroPoint: Int32, bZeroPoint: Int32 = 0,
        requantization: RequantizationParameters? = nil
    ) {
        pack(source: columns, nStride: 1, kStride: kStride, n: n, k: k, bias: bias, aZeroPoint: aZeroPoint,
             bZeroPoint: bZeroPoint, requantization: requantization)
    }

    // MARK: - Storage views

    @usableFromInline var paddedN: Int { layout.paddedN(n) }
    @usableFromInline var paddedK: Int { layout.paddedK(k) }

    /// Folded bias, paddedN entries.
    @usableFromInline var biasPointer: UnsafeMutablePointer<Int32> {
        storage.assumingMemoryBound(to: Int32.self)
    }
    @usableFromInline var multiplierPointer: UnsafeMutablePointer<Int32> { biasPointer + paddedN }
    @usableFromInline var shiftPointer: UnsafeMutablePointer<Int32> { biasPointer + 2 * paddedN }
    @usableFromInline var weightsPointer: UnsafeMutableRawPointer { storage + layout.weightsOffset(n: n) }

    /// Whether B contains −128 (forces the NEON path to avoid int16 pair sums).
    public var containsMinus128: Bool { flags & Int32(MV_GEMM_B_HAS_MIN) != 0 }

    /// The stored folded bias of channel `c` (for tests and diagnostics; on VNNI it also holds the
    /// −128·Σ_k B[c][k] correction of the unsigned activations).
    public func foldedBias(_ c: Int) -> Int32 {
        precondition(c >= 0 && c < n)
        return biasPointer[c]
    }

    // MARK: - Packing

    private func pack(
        source: UnsafePointer<Int8>, nStride: Int, kStride: Int, n: Int, k: Int,
        bias: UnsafePointer<Int32>?, aZeroPoint: Int32, bZeroPoint: Int32,
        requantization: RequantizationParameters?
    ) {
        precondition(n >= 1 && k >= 1, "packed matrix needs N >= 1 and K >= 1")
        precondition(layout.storageSize(n: n, k: k) <= capacity, "packed matrix capacity exceeded")
        precondition(aZeroPoint >= -128 && aZeroPoint <= 127 && bZeroPoint >= -128 && bZeroPoint <= 127)
        if let r = requantization {
            precondition(r.isShared || r.multipliers.count == n, "requantization needs 1 or N entries")
        }
        self.n = n
        self.k = k
        self.bZeroPoint = bZeroPoint
        let np = paddedN, kp = paddedK
        let nr = layout.nr, kr = layout.kr
        let bp = biasPointer, mp = multiplierPointer, sp = shiftPointer
        let w = weightsPointer
        w.initializeMemory(as: UInt8.self, repeating: 0, count: np * kp * layout.elementSize)
        let subtractUnsignedCorrection = kernels.activationsOffsetToUnsigned
        // Column sums land in the bias slots first, then become the folded bias.
        let hasMin = kernels.pack(source, nStride, kStride, n, k, nr, kr, kp, w, bp) != 0
        for c in 0..<np {
            guard c < n else {
                bp[c] = 0; mp[c] = 0; sp[c] = 0
                continue
            }
            let sum = bp[c]
            var b = bias?[c] ?? 0
            b &-= aZeroPoint &* sum
            if bZeroPoint != 0 { b &+= Int32(k) &* aZeroPoint &* bZeroPoint }
            if subtractUnsignedCorrection { b &-= 128 &* sum }
            bp[c] = b
            if let r = requantization {
                let p = r.pair(c)
                mp[c] = p.multiplier
                sp[c] = p.shift
            } else {
                mp[c] = 0
                sp[c] = 0
            }
        }
        flags = hasMin ? Int32(MV_GEMM_B_HAS_MIN) : 0
    }

    /// Element (n, k) of B as packed (for tests).
    public func element(_ row: Int, _ col: Int) -> Int8 {
        precondition(row >= 0 && row < n && col >= 0 && col < k)
        let nr = layout.nr, kr = layout.kr
        let e = (row / nr) * paddedK * nr + ((col / kr) * nr + row % nr) * kr + col % kr
        if layout.elementSize == 2 {
            return Int8(truncatingIfNeeded: weightsPointer.load(fromByteOffset: 2 * e, as: Int16.self))
        }
        return weightsPointer.load(fromByteOffset: e, as: Int8.self)
    }
}
