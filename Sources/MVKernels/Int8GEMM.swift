// Int8 GEMM: C[m][n] = requant(bias'[n] + Σ_k A[m][k]·B[n][k]), with B a PackedInt8Matrix.
// Rows of A and C are addressed by a stride or by an index table, so MobileViT's unfold/fold of
// patches are index mappings consumed here rather than copies.
import MVKernelsC

/// How the rows of a matrix operand are found from its base pointer.
public enum RowAddressing {
    /// Row m at `base + m * stride` (elements).
    case strided(Int)
    /// Row m at `base + offsets[m]` (elements); the table holds at least M entries.
    case indexed(UnsafePointer<Int32>)
}

/// The int8 GEMM entry points. Calls on disjoint row ranges may run concurrently (the kernels
/// keep their scratch on the stack); the kernels are those of the ISA `b` was packed for (its
/// `GEMMKernels` table).
public enum Int8GEMM {
    /// Requantised int8 output:
    /// `C[m][n] = lut?[clamp(requant(acc) + outputZeroPoint, clampMin, clampMax)]`.
    /// - Parameters:
    ///   - a: base of A (M x K int8 activations); rows per `aRows`.
    ///   - k: must equal `b.k`.
    ///   - output: base of C; rows per `outRows`, N = `b.n` contiguous values per row.
    ///   - lookupTable: nil or 256 entries indexed by `out + 128`; with `lookupTableStride` 256,
    ///     one such table per output column (column n's at `lookupTable + n * 256`), for
    ///     per-channel quantised outputs.
    ///   - blockTableLookups: with per-column tables, apply them to blocks of 64 rows where the
    ///     kernel table has a block routine for `b`'s ISA (`GEMMKernels.tableBlocks`: AVX-512 VNNI
    ///     on a CPU with VBMI; the same bytes). False keeps the kernel's own lookups (for tests of both).
    public static func run(
        a: UnsafePointer<Int8>, aRows: RowAddressing, m: Int, k: Int,
        b: PackedInt8Matrix,
        output: UnsafeMutablePointer<Int8>, outRows: RowAddressing,
        outputZeroPoint: Int32, clampMin: Int32 = -128, clampMax: Int32 = 127,
        lookupTable: UnsafePointer<Int8>? = nil, lookupTableStride: Int = 0,
        blockTableLookups: Bool = true
    ) {
        precondition(lookupTableStride == 0 || lookupTableStride == 256, "table stride must be 0 or 256")
        precondition(k == b.k, "K does not match the packed matrix")
        precondition(b.isa.isSupported, "matrix packed for \(b.isa.rawValue), which this CPU cannot run")
        precondition(outputZeroPoint >= -128 && outputZeroPoint <= 127)
        precondition(clampMin >= -128 && clampMax <= 127 && clampMin <= clampMax)
        guard m > 0 else { return }
        guard let kernel = b.kernels.int8Output else {
            referenceGEMM(a: a, aRows: aRows, m: m, b: b, output: UnsafeMutableRawPointer(output), outRows: outRows,
                          int32Output: false, zeroPoint: outputZeroPoint, clampMin: clampMin, clampMax: clampMax,
                          lut: lookupTable, lutStride: lookupTableStride)
            return
        }
        withArgs(a: a, aRows: aRows, m: m, b: b, output: UnsafeMutableRawPointer(output), outRows: outRows,
                 zeroPoint: outputZeroPoint, clampMin: clampMin, clampMax: clampMax, lut: lookupTable,
                 lutStride: lookupTableStride, lutBlocks: blockTableLookups ? b.kernels.tableBlocks : nil) { kernel($0) }
    }

    /// Raw int32 output (no requantisation): `C[m][n] = bias'[n] + Σ_k A[m][k]·B[n][k]` with the
    /// zero points folded as in `run` (attention scores). `outRows` is in Int32 elements.
    public static func runInt32(
        a: UnsafePointer<Int8>, aRows: RowAddressing, m: Int, k: Int,
        b: PackedInt8Matrix,
        output: UnsafeMutablePointer<Int32>, outRows: RowAddressing
    ) {
        precondition(k == b.k, "K does not match the packed matrix")
        precondition(b.isa.isSupported, "matrix packed for \(b.isa.rawValue), which this CPU cannot run")
        guard m > 0 else { return }
        guard let kernel = b.kernels.int32Output else {
            referenceGEMM(a: a, aRows: aRows, m: m, b: b, output: UnsafeMutableRawPointer(output), outRows: outRows,
                          int32Output: true, zeroPoint: 0, clampMin: -128, clampMax: 127, lut: nil, lutStride: 0)
            return
        }
        withArgs(a: a, aRows: aRows, m: m, b: b, output: UnsafeMutableRawPointer(output), outRows: outRows,
                 zeroPoint: 0, clampMin: -128, clampMax: 127, lut: nil, lutStride: 0) { kernel($0) }
    }

    @inline(__always)
    private static func withArgs(
        a: UnsafePointer<Int8>, aRows: RowAddressing, m: Int, b: PackedInt8Matrix,
        output: UnsafeMutableRawPointer, outRows: RowAddressing,
        zeroPoint: Int32, clampMin: Int32, clampMax: Int32, lut: UnsafePointer<Int8>?, lutStride: Int,
        lutBlocks: ChannelTableBlocks? = nil, _ body: (UnsafePointer<mv_gemm_args>) -> Void
    ) {
        var args = mv_gemm_args()
        args.a = a
        switch aRows {
        case .strided(let s): args.a_stride = s; args.a_offsets = nil
        case .indexed(let t): args.a_stride = 0; args.a_offsets = t
        }
        args.c = output
        switch outRows {
        case .strided(let s): args.c_stride = s; args.c_offsets = nil
        case .indexed(let t): args.c_stride = 0; args.c_offsets = t
        }
        args.m = m
        args.k = b.k
        args.n = b.n
        args.packed = UnsafeRawPointer(b.weightsPointer)
        args.bias = UnsafePointer(b.biasPointer)
        args.multiplier = UnsafePointer(b.multiplierPointer)
        args.shift = UnsafePointer(b.shiftPointer)
        args.b_zero_point = b.bZeroPoint
        args.output_zero_point = zeroPoint
        args.clamp_min = clampMin
        args.clamp_max = clampMax
        args.lut = lut
        args.lut_stride = lutStride
        if lutStride == 256 { args.lut_block = lutBlocks }
        args.flags = b.flags
        withUnsafePointer(to: &args) { body($0) }
    }

    /// The portable reference (the specification of every SIMD path).
    private static func referenceGEMM(
        a: UnsafePointer<Int8>, aRows: RowAddressing, m: Int, b: PackedInt8Matrix,
        output: UnsafeMutableRawPointer, outRows: RowAddressing, int32Output: Bool,
        zeroPoint: Int32, clampMin: Int32, clampMax: Int32, lut: UnsafePointer<Int8>?, lutStride: Int
    ) {
        let n = b.n, k = b.k
        let w = UnsafePointer<Int8>(b.weightsPointer.assumingMemoryBound(to: Int8.self))
        let bias = b.biasPointer, mult = b.multiplierPointer, shift = b.shiftPointer
        let bzp = b.bZeroPoint
        for row in 0..<m {
            let arow: UnsafePointer<Int8>
            switch aRows {
            case .strided(let s): arow = a + row * s
            case .indexed(let t): arow = a + Int(t[row])
            }
            let coff: Int
            switch outRows {
            case .strided(let s): coff = row * s
            case .indexed(let t): coff = Int(t[row])
            }
            var rowCorrection: Int32 = 0
            if bzp != 0 {
                var s: Int32 = 0
                for kk in 0..<k { s &+= Int32(arow[kk]) }
                rowCorrection = 0 &- bzp &* s
            }
            for col in 0..<n {
                let acc = bias[col] &+ rowCorrection &+ dot(arow, w + col * k, k)
                if int32Output {
                    output.assumingMemoryBound(to: Int32.self)[coff + col] = acc
                } else {
                    let z = requantize(acc, multiplier: mult[col], shift: shift[col])
                    var o = Int8(truncatingIfNeeded: addZeroPointAndClamp(z, zeroPoint: zeroPoint, clampMin: clampMin, clampMax: clampMax))
                    if let lut { o = lut[col &* lutStride &+ Int(o) &+ 128] }
                    output.assumingMemoryBound(to: Int8.self)[coff + col] = o
                }
            }
        }
    }

    @inline(__always)
    private static func dot(_ x: UnsafePointer<Int8>, _ y: UnsafePointer<Int8>, _ k: Int) -> Int32 {
        var s: Int32 = 0
        for i in 0..<k { s &+= Int32(x[i]) &* Int32(y[i]) }
        return s
    }
}
