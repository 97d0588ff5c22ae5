import MVKernels
import MVModel

extension Int8Executor {
    /// Scratch for attention, one set per worker thread, created when a size is planned.
    final class AttentionScratch {
        let keys: PackedInt8Matrix
        let values: PackedInt8Matrix
        init(tokens: Int, headSize: Int, isa: KernelISA) {
            keys = PackedInt8Matrix(capacityN: tokens, capacityK: headSize, isa: isa)
            values = PackedInt8Matrix(capacityN: headSize, capacityK: tokens, isa: isa)
        }
    }

    /// Runs operator `i` on the plan's buffers, its work split over the pool.
    func execute(_ i: Int, _ plan: Int8Plan) {
        let inputs = plan.inputs[i], out = plan.outputs[i]
        switch operations[i] {
        case let .conv(op):
            conv(op, inputs[0], out, scratch: plan.scratch[i])
        case let .linear(op):
            let x = inputs[0]
            let (inputRows, outputRows) = plan.gemmRows[i]!
            // Square layers (attention projections) take 64 tokens a task, the MLP's wider ones 32.
            let grain = op.layer.inFeatures == op.layer.outFeatures ? 64 : 32
            withTable(op.output.table) { table in
                parallel(x.pixels, grain: grain, GEMMStep(a: x.data, aRows: inputRows, k: x.c, b: op.packed, output: out.data,
                                                          outRows: outputRows, stage: op.output, table: table))
            }
        case let .add(p):
            let a = inputs[0], b = inputs[1]
            let grain = plan.tokenPatchSize[i] > 0 ? 256 : 1024 / max(1, out.c) + 1
            parallel(out.pixels, grain: grain, AddStep(a: a.data, aStride: a.stride, b: b.data, bStride: b.stride, output: out.data,
                                                       outputStride: out.stride, columns: out.c, parameters: p, isa: isa))
        case let .layerNorm(p):
            let x = inputs[0]
            precondition(x.stride == x.c && out.stride == out.c, "LayerNorm reads and writes whole buffers")
            parallel(x.pixels, grain: 64, LayerNormStep(input: x.data, output: out.data, dim: x.c, parameters: p, isa: isa))
        case let .attention(a):
            let ps = plan.tokenPatchSize[i]
            let patches = ps * ps, tokens = out.pixels / patches
            let layout = Int8Plan.AttentionLayout(tokens: tokens, threads: threads)
            let s = plan.scratch[i]
            parallel(patches * a.heads, grain: 1,
                     AttentionStep(q: inputs[0].data, k: inputs[1].data, v: inputs[2].data, context: out.data,
                                   scores: (s + layout.scores).assumingMemoryBound(to: Int32.self),
                                   probs: (s + layout.probs).assumingMemoryBound(to: Int8.self),
                                   softmaxScratch: (s + layout.softmax).assumingMemoryBound(to: Int32.self),
                                   scratch: plan.attentionScratch[i]!, tokens: tokens, rowBlock: layout.rowBlock, dim: out.c,
                                   heads: a.heads, headSize: a.headSize, attention: a, isa: isa))
        case .resample, .resize:
            if let r = plan.resizes[i] { parallel(out.h, grain: 4, ResizeStep(src: inputs[0], dst: out, plan: r)) }
        case .concat:
            break
        case .pool:
            let x = inputs[0]
            GlobalAveragePoolInt8.run(input: x.data, width: x.w, rowStride: x.w * x.stride, pixelStride: x.stride,
                                      output: out.data, channels: 0..<x.c, parameters: plan.pool[i]!,
                                      scratch: plan.scratch[i].assumingMemoryBound(to: Int32.self))
        case let .classifier(c):
            let x = inputs[0]
            let classes = c.logitScale.count, acc = UnsafeMutableRawPointer(out.data).assumingMemoryBound(to: Int32.self)
            if x.pixels == 1 {
                Int8GEMM.runInt32(a: x.data, aRows: .strided(x.stride), m: 1, k: x.c, b: c.packed, output: acc,
                                  outRows: .strided(classes))
            } else {
                parallel(x.pixels, grain: 64, ClassifierStep(a: x.data, stride: x.stride, k: x.c, b: c.packed, output: acc,
                                                             classes: classes))
            }
        }
    }

    /// A convolution into its output (a buffer of its own or a slice of a concat buffer).
    func conv(_ op: Int8Conv, _ x: Tensor, _ out: Tensor, scratch: UnsafeMutableRawPointer) {
        let l = op.layer
        let o = op.output
        withTable(o.table) { table in
            switch op.kernel {
            case let .pointwise(b):
                parallel(out.pixels, grain: max(16, 32768 / max(1, x.c * l.outChannels)),
                         GEMMStep(a: x.data, aRows: .strided(x.stride), k: x.c, b: b, output: out.data,
                                  outRows: .strided(out.stride), stage: o, table: table))
            case let .depthwise(d):
                parallel(out.h, grain: max(1, 4096 / max(1, out.w * x.c)),
                         DepthwiseStep(kernel: d, x: x, stride: l.stride, dilation: l.dilation, out: out, stage: o, table: table))
            case let .dense(d):
                let tile = d.recommendedTilePixels
                // Grain by work, not pixels: a row of the 32×32 fusion convolution is ~1.8 M
                // multiply-adds, and a pixel-count grain (2048 / ow) put all its rows in one task.
                parallel(out.h, grain: max(d.rowGranularity, 32768 / max(1, out.w * d.k * l.outChannels)),
                         DenseConvStep(kernel: d, x: x, out: out, stage: o, table: table,
                                       scratch: scratch.assumingMemoryBound(to: Int8.self),
                                       scratchBytes: d.scratchSize(tilePixels: tile), tilePixels: tile))
            }
        }
    }
}
