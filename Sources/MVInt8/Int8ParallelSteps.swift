import MVKernels

// The data-parallel steps of the int8 graph as values: each holds a kernel call's operands and
// runs it over a range of units (pixel rows, tokens, attention tasks). The pool's workers reach a
// step through a pointer (`ThreadPool.parallelFor(_:tasks:_:)`), so an inference allocates nothing
// whatever the thread count; closures capturing the same operands cost a heap object per step.
// Steps hold raw pointers into the arena (hence `@unchecked Sendable`); the ranges the pool runs
// concurrently write disjoint outputs.

extension RowAddressing {
    /// The operand pointer and addressing of rows `units` of the operand at `base` (a step's
    /// share of a GEMM's rows, strided or through the unfold/fold offset table).
    func slice<T>(_ base: UnsafeMutablePointer<T>, _ units: Range<Int>) -> (UnsafeMutablePointer<T>, RowAddressing) {
        switch self {
        case let .strided(s): return (base + units.lowerBound * s, self)
        case let .indexed(offsets): return (base, .indexed(offsets + units.lowerBound))
        }
    }
}

extension Int8Executor {
    /// Input quantisation of a range of pixels, every channel: q = clamp(round(x · inverseScale) + z,
    /// −128, 127), rounding half to even by the 1.5·2²³ trick (no libm call on baseline x86-64),
    /// NaN giving −128. The clamp is applied to x / s, to [−128 − z, 127 − z], before rounding: the
    /// bounds are integers and rounding is monotone, so it is the same result, and it stays in
    /// vector min/max (an integer clamp of SIMD lanes compiles to branches per lane on baseline
    /// x86-64).
    struct InputQuantizationStep: ParallelRangeJob, @unchecked Sendable {
        let input: UnsafePointer<Float>, output: UnsafeMutablePointer<Int8>
        let planePixels: Int, channels: Int
        let inverseScale: Float, zeroPoint: Int32

        func run(_ units: Range<Int>, worker: Int) {
            let inv = inverseScale, z = zeroPoint, c = channels, out = output
            let lo = Float(-128 - z), hi = Float(127 - z)  // −255…0 and 0…255
            let magic: Float = 12_582_912
            // Eight pixels at a time, the same float operations: v + magic is 1.5·2²³ + round(v), so
            // its bit pattern minus magic's is round(v) exactly (|v| ≤ 255), as (v + magic) − magic.
            let vinv = SIMD8<Float>(repeating: inv), vlo = SIMD8<Float>(repeating: lo), vhi = SIMD8<Float>(repeating: hi)
            let offset = SIMD8<Int32>(repeating: z &- Int32(bitPattern: magic.bitPattern))
            let vectorEnd = units.lowerBound + units.count / 8 * 8
            for ch in 0..<c {
                let plane = input + ch * planePixels
                for p in stride(from: units.lowerBound, to: vectorEnd, by: 8) {
                    var v = UnsafeRawPointer(plane + p).loadUnaligned(as: SIMD8<Float>.self) * vinv
                    v.replace(with: vlo, where: .!(v .> vlo))  // NaN too
                    v.replace(with: vhi, where: .!(v .< vhi))
                    let q = unsafeBitCast(v + magic, to: SIMD8<Int32>.self) &+ offset
                    for j in 0..<8 { out[(p &+ j) &* c &+ ch] = Int8(truncatingIfNeeded: q[j]) }
                }
                for p in vectorEnd..<units.upperBound {
                    var v = plane[p] * inv
                    if !(v > lo) { v = lo }
                    if !(v < hi) { v = hi }
                    out[p &* c &+ ch] = Int8(truncatingIfNeeded: Int32((v + magic) - magic) &+ z)
                }
            }
        }
    }

    /// An int8-output GEMM (pointwise convolution, linear layer) over a range of rows.
    struct GEMMStep: ParallelRangeJob, @unchecked Sendable {
        let a: UnsafeMutablePointer<Int8>, aRows: RowAddressing, k: Int
        let b: PackedInt8Matrix
        let output: UnsafeMutablePointer<Int8>, outRows: RowAddressing
        let stage: OutputStage
        let table: UnsafePointer<Int8>?

        func run(_ units: Range<Int>, worker: Int) {
            let (a, ar) = aRows.slice(self.a, units), (c, cr) = outRows.slice(output, units)
            Int8GEMM.run(a: a, aRows: ar, m: units.count, k: k, b: b, output: c, outRows: cr,
                         outputZeroPoint: stage.zeroPoint, clampMin: stage.clampMin, clampMax: stage.clampMax,
                         lookupTable: table, lookupTableStride: stage.tableStride)
        }
    }

    /// A 3×3 depthwise convolution over a range of output rows.
    struct DepthwiseStep: ParallelRangeJob, @unchecked Sendable {
        let kernel: DepthwiseConv3x3Int8
        let x: Tensor, stride: Int, dilation: Int, out: Tensor
        let stage: OutputStage
        let table: UnsafePointer<Int8>?

        func run(_ units: Range<Int>, worker: Int) {
            kernel.run(input: x.data, inputHeight: x.h, inputWidth: x.w, inputPixelStride: x.stride, stride: stride,
                       dilation: dilation, output: out.data, outputPixelStride: out.stride, outputZeroPoint: stage.zeroPoint,
                       clampMin: stage.clampMin, clampMax: stage.clampMax, lookupTable: table,
                       lookupTableStride: stage.tableStride, rows: units)
        }
    }

    /// A dense n×n convolution over a range of output rows, with per-worker im2col scratch.
    struct DenseConvStep: ParallelRangeJob, @unchecked Sendable {
        let kernel: Conv2DInt8
        let x: Tensor, out: Tensor
        let stage: OutputStage
        let table: UnsafePointer<Int8>?
        let scratch: UnsafeMutablePointer<Int8>, scratchBytes: Int, tilePixels: Int

        func run(_ units: Range<Int>, worker: Int) {
            kernel.run(input: x.data, inputHeight: x.h, inputWidth: x.w, inputPixelStride: x.stride,
                       output: out.data, outputPixelStride: out.stride, outputZeroPoint: stage.zeroPoint,
                       clampMin: stage.clampMin, clampMax: stage.clampMax, lookupTable: table,
                       lookupTableStride: stage.tableStride, rows: units, scratch: scratch + worker * scratchBytes,
                       tilePixels: tilePixels)
        }
    }

    /// A residual addition over a range of rows (pixels or tokens).
    struct AddStep: ParallelRangeJob, @unchecked Sendable {
        let a: UnsafeMutablePointer<Int8>, aStride: Int
        let b: UnsafeMutablePointer<Int8>, bStride: Int
        let output: UnsafeMutablePointer<Int8>, outputStride: Int
        let columns: Int
        let parameters: AddInt8.Parameters
        let isa: KernelISA

        func run(_ units: Range<Int>, worker: Int) {
            AddInt8.run(a: a, aRowStride: aStride, b: b, bRowStride: bStride, output: output,
                        outputRowStride: outputStride, columns: columns, rows: units, parameters: parameters, isa: isa)
        }
    }

    /// LayerNorm over a range of tokens of `dim` channels.
    struct LayerNormStep: ParallelRangeJob, @unchecked Sendable {
        let input: UnsafeMutablePointer<Int8>, output: UnsafeMutablePointer<Int8>, dim: Int
        let parameters: IntegerLayerNorm.Parameters
        let isa: KernelISA

        func run(_ units: Range<Int>, worker: Int) {
            IntegerLayerNorm.run(input: input, inputTokenStride: dim, output: output, outputTokenStride: dim,
                                 tokens: units, parameters: parameters, isa: isa)
        }
    }

    /// Bilinear resize over a range of output rows.
    /// A pixel classifier's int32 accumulators for a range of pixels.
    struct ClassifierStep: ParallelRangeJob, @unchecked Sendable {
        let a: UnsafeMutablePointer<Int8>
        let stride: Int, k: Int
        let b: PackedInt8Matrix
        let output: UnsafeMutablePointer<Int32>
        let classes: Int

        func run(_ units: Range<Int>, worker: Int) {
            Int8GEMM.runInt32(a: a + units.lowerBound * stride, aRows: .strided(stride), m: units.count, k: k, b: b,
                              output: output + units.lowerBound * classes, outRows: .strided(classes))
        }
    }

    /// A dense head's label map for a range of output rows: the accumulators (already brought to
    /// one scale) upsampled and reduced to the argmax, each worker with its own row scratch.
    struct LabelStep: ParallelRangeJob, @unchecked Sendable {
        let values: UnsafePointer<Int32>
        let plan: BilinearArgmaxInt32.Plan
        let labels: UnsafeMutablePointer<Int32>
        let scratch: UnsafeMutablePointer<Int64>

        func run(_ units: Range<Int>, worker: Int) {
            BilinearArgmaxInt32.run(values: values, plan: plan, labels: labels, outputRows: units,
                                    scratch: scratch + worker * plan.scratchCount)
        }
    }

    struct ResizeStep: ParallelRangeJob, @unchecked Sendable {
        let src: Tensor, dst: Tensor
        let plan: BilinearResizeInt8.Plan

        func run(_ units: Range<Int>, worker: Int) {
            BilinearResizeInt8.run(input: src.data, inputRowStride: src.w * src.stride, inputPixelStride: src.stride,
                                   output: dst.data, outputRowStride: dst.w * dst.stride, outputPixelStride: dst.stride,
                                   channels: src.c, outputRows: units, plan: plan)
        }
    }

    /// Attention for a range of (position in patch, head) tasks: QKᵀ in int32, integer softmax,
    /// P·V, each worker in its own scratch. Q, K, V and the context are in unfolded token order.
    struct AttentionStep: ParallelRangeJob, @unchecked Sendable {
        let q, k, v, context: UnsafeMutablePointer<Int8>
        /// tokens² per worker.
        let scores: UnsafeMutablePointer<Int32>
        let probs: UnsafeMutablePointer<Int8>
        let softmaxScratch: UnsafeMutablePointer<Int32>
        let scratch: [AttentionScratch]
        /// Query rows per block (`Int8Plan.AttentionLayout.rowBlock`); scores and probabilities hold one block.
        let tokens: Int, rowBlock: Int, dim: Int, heads: Int, headSize: Int
        let attention: Int8Attention
        let isa: KernelISA

        func run(_ units: Range<Int>, worker: Int) {
            let s = scratch[worker], a = attention
            let scores = self.scores + worker * rowBlock * tokens, p = probs + worker * rowBlock * tokens
            let smScratch = softmaxScratch + worker * IntegerSoftmax.scratchCount(rowLength: tokens)
            for task in units {
                let base = (task / heads) * tokens * dim + (task % heads) * headSize
                s.keys.repack(rows: k + base, rowStride: dim, n: tokens, k: headSize, bias: nil,
                              aZeroPoint: a.query.zeroPoint, bZeroPoint: a.key.zeroPoint)
                s.values.repack(columns: v + base, kStride: dim, n: headSize, k: tokens, bias: nil,
                                aZeroPoint: a.probs.zeroPoint, bZeroPoint: a.value.zeroPoint,
                                requantization: a.valueRequantization)
                // Every query row's result depends on that row alone, so blocks of rows give the
                // same bits as the whole matrix at once.
                var r0 = 0
                while r0 < tokens {
                    let rows = min(rowBlock, tokens - r0)
                    Int8GEMM.runInt32(a: q + base + r0 * dim, aRows: .strided(dim), m: rows, k: headSize, b: s.keys,
                                      output: scores, outRows: .strided(tokens))
                    IntegerSoftmax.run(scores: scores, scoreRowStride: tokens, output: p, outputRowStride: tokens,
                                       rowLength: tokens, rows: 0..<rows, parameters: a.softmax, scratch: smScratch, isa: isa)
                    Int8GEMM.run(a: p, aRows: .strided(tokens), m: rows, k: tokens, b: s.values, output: context + base + r0 * dim,
                                 outRows: .strided(dim), outputZeroPoint: a.context.zeroPoint)
                    r0 += rows
                }
            }
        }
    }
}
