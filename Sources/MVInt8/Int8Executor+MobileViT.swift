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

    /// The MobileViT block. The downsampling layer writes the first C channels of a [H, W, 2C]
    /// concat buffer and the projection the second C (both at the concat's quantisation), so the
    /// concat is free. The transformer keeps tokens in pixel order: unfold and fold are the index
    /// maps the Q/K/V and attention-output GEMMs use for their rows.
    func mobileViTBlock(_ m: MobileViTBlock, _ input: Tensor, _ observer: Int8Observer?) -> Tensor {
        let arena = plan.arena
        let d = m.downsampling!
        let (h, w) = d.depthwise.outputSize(input.h, input.w)
        let c = m.channels, dim = m.hiddenSize
        let out = Tensor(data: arena.allocate(Int8.self, h * w * c), h: h, w: w, c: c, stride: c)
        let mark = arena.mark
        let concatData = arena.allocate(Int8.self, h * w * 2 * c)
        let concatParams = concatQuantization[m.name]
        let residual = Tensor(data: concatData, h: h, w: w, c: c, stride: 2 * c)
        _ = invertedResidual(d, input, observer, into: residual)
        observe(observer, d.reduce.name, residual, params: concatParams)
        let local = conv(m.convKxK, residual, observer)
        let features = conv(m.conv1x1, local, observer)

        // The token grid: the feature map, resized up to a multiple of the patch size if needed.
        let ps = m.patchSize
        let nh = (h + ps - 1) / ps * ps, nw = (w + ps - 1) / ps * ps
        let resized = nh != h || nw != w
        var grid = features
        if resized {
            if planning {
                plan.resizes[m.name] = (try! BilinearResizeInt8.Plan.make(inputHeight: h, inputWidth: w, outputHeight: nh, outputWidth: nw),
                                        try! BilinearResizeInt8.Plan.make(inputHeight: nh, inputWidth: nw, outputHeight: h, outputWidth: w))
            }
            grid = Tensor(data: arena.allocate(Int8.self, nh * nw * dim), h: nh, w: nw, c: dim, stride: dim)
            resize(features, into: grid, plan: plan.resizes[m.name]!.up)
        }
        let pixels = nh * nw, patches = ps * ps, tokens = pixels / patches
        if planning {
            var offsets = [Int32](repeating: 0, count: pixels)
            for y in 0..<nh {
                for x in 0..<nw {
                    let p = (y % ps) * ps + x % ps, n = (y / ps) * (nw / ps) + x / ps
                    offsets[y * nw + x] = Int32((p * tokens + n) * dim)
                }
            }
            plan.tokenOffsets[m.name] = offsets
            if let t = m.transformer.first {
                plan.attention[m.name] = (0..<threads).map { _ in AttentionScratch(tokens: tokens, headSize: t.headSize, isa: isa) }
            }
        }
        let buffers = TransformerBuffers(arena: arena, pixels: pixels, dim: dim,
                                         ffn: m.transformer.first?.intermediate.outFeatures ?? 0, tokens: tokens,
                                         threads: threads)
        plan.tokenOffsets[m.name]!.withUnsafeBufferPointer { offsets in
            for t in m.transformer {
                transformerLayer(t, stream: grid.data, pixels: pixels, patches: patches, tokens: tokens,
                                 offsets: offsets.baseAddress!, buffers: buffers, scratch: plan.attention[m.name] ?? [],
                                 grid: grid, observer: observer)
            }
        }
        // Final LayerNorm into the normed buffer, then back to the feature map's size.
        let p = layerNorms[m.layerNorm.name]!
        parallel(pixels, grain: 64, LayerNormStep(input: grid.data, output: buffers.normed, dim: dim, parameters: p, isa: isa))
        var folded = Tensor(data: buffers.normed, h: nh, w: nw, c: dim, stride: dim)
        observe(observer, m.layerNorm.name, folded, unfoldPatch: ps)
        if resized {
            let small = Tensor(data: arena.allocate(Int8.self, h * w * dim), h: h, w: w, c: dim, stride: dim)
            resize(folded, into: small, plan: plan.resizes[m.name]!.down)
            folded = small
        }
        let projection = Tensor(data: concatData + c, h: h, w: w, c: c, stride: 2 * c)
        _ = conv(m.projection, folded, observer, into: projection)
        observe(observer, m.projection.name, projection, params: concatParams)
        _ = conv(m.fusion, Tensor(data: concatData, h: h, w: w, c: 2 * c, stride: 2 * c), observer, into: out)
        observe(observer, m.fusion.name, out)
        arena.release(to: mark)
        return out
    }

    func resize(_ src: Tensor, into dst: Tensor, plan resizePlan: BilinearResizeInt8.Plan) {
        parallel(dst.h, grain: 4, ResizeStep(src: src, dst: dst, plan: resizePlan))
    }

    /// Working buffers of a block's transformer layers, carved from the arena once per block.
    struct TransformerBuffers {
        let normed, q, k, v, context, branch, hidden: UnsafeMutablePointer<Int8>
        let scores: UnsafeMutablePointer<Int32>
        let probs: UnsafeMutablePointer<Int8>
        let softmaxScratch: UnsafeMutablePointer<Int32>
        let tokens: Int

        init(arena: Int8Arena, pixels: Int, dim: Int, ffn: Int, tokens: Int, threads: Int) {
            normed = arena.allocate(Int8.self, pixels * dim)
            q = arena.allocate(Int8.self, pixels * dim)
            k = arena.allocate(Int8.self, pixels * dim)
            v = arena.allocate(Int8.self, pixels * dim)
            context = arena.allocate(Int8.self, pixels * dim)
            branch = arena.allocate(Int8.self, pixels * dim)
            hidden = arena.allocate(Int8.self, pixels * max(ffn, 1))
            scores = arena.allocate(Int32.self, tokens * tokens * threads)
            probs = arena.allocate(Int8.self, tokens * tokens * threads)
            softmaxScratch = arena.allocate(Int32.self, IntegerSoftmax.scratchCount(rowLength: tokens) * threads)
            self.tokens = tokens
        }
    }

    func transformerLayer(_ t: TransformerLayer, stream x: UnsafeMutablePointer<Int8>, pixels: Int, patches: Int,
                          tokens: Int, offsets: UnsafePointer<Int32>, buffers b: TransformerBuffers,
                          scratch: [AttentionScratch], grid: Tensor, observer: Int8Observer?) {
        let dim = t.hiddenSize, heads = t.heads, dh = t.headSize
        func pixelTensor(_ data: UnsafeMutablePointer<Int8>, _ c: Int) -> Tensor {
            Tensor(data: data, h: grid.h, w: grid.w, c: c, stride: c)
        }
        // Pixel-order tensors are reported with the patch size (the float executor reports them unfolded).
        let ps = Int(Double(patches).squareRoot().rounded())
        func tokenTensor(_ data: UnsafeMutablePointer<Int8>) -> Tensor {
            Tensor(data: data, h: patches, w: tokens, c: dim, stride: dim)
        }
        let ln1 = layerNorms[t.layerNormBefore.name]!
        parallel(pixels, grain: 64, LayerNormStep(input: x, output: b.normed, dim: dim, parameters: ln1, isa: isa))
        observe(observer, TensorNames.ln1(t), pixelTensor(b.normed, dim), unfoldPatch: ps)
        // Q, K, V written in unfolded token order through the offsets (the unfold).
        func projectTokens(_ layer: LinearLayer, into dst: UnsafeMutablePointer<Int8>) {
            let op = linears[layer.name]!
            parallel(pixels, grain: 64, GEMMStep(a: b.normed, aRows: .strided(dim), k: dim, b: op.packed, output: dst,
                                                 outRows: .indexed(offsets), stage: op.output, table: nil))
            observe(observer, layer.name, tokenTensor(dst))
        }
        projectTokens(t.query, into: b.q)
        projectTokens(t.key, into: b.k)
        projectTokens(t.value, into: b.v)
        // Attention per (position in patch, head): QKᵀ in int32, integer softmax, P·V.
        let aq = attentionQuantization[t.name]!
        parallel(patches * heads, grain: 1,
                 AttentionStep(buffers: b, scratch: scratch, tokens: tokens, dim: dim, heads: heads, headSize: dh,
                               quantization: aq, softmax: softmax[t.name]!, valueRequantization: attentionRequant[t.name]!,
                               isa: isa))
        observe(observer, TensorNames.context(t), tokenTensor(b.context))
        // The attention output reads the context back in pixel order (the fold).
        let out = linears[t.attentionOutput.name]!
        parallel(pixels, grain: 64, GEMMStep(a: b.context, aRows: .indexed(offsets), k: dim, b: out.packed,
                                             output: b.branch, outRows: .strided(dim), stage: out.output, table: nil))
        observe(observer, t.attentionOutput.name, pixelTensor(b.branch, dim), unfoldPatch: ps)
        let add1 = aq.residual1
        parallel(pixels, grain: 256, AddStep(a: x, aStride: dim, b: b.branch, bStride: dim, output: x, outputStride: dim,
                                             columns: dim, parameters: add1, isa: isa))
        observe(observer, TensorNames.residual1(t), pixelTensor(x, dim), unfoldPatch: ps)
        // MLP.
        let ln2 = layerNorms[t.layerNormAfter.name]!
        parallel(pixels, grain: 64, LayerNormStep(input: x, output: b.normed, dim: dim, parameters: ln2, isa: isa))
        observe(observer, TensorNames.ln2(t), pixelTensor(b.normed, dim), unfoldPatch: ps)
        let fc1 = linears[t.intermediate.name]!, fc2 = linears[t.output.name]!
        let ffn = t.intermediate.outFeatures
        withTable(fc1.output.table) { table in
            parallel(pixels, grain: 32, GEMMStep(a: b.normed, aRows: .strided(dim), k: dim, b: fc1.packed, output: b.hidden,
                                                 outRows: .strided(ffn), stage: fc1.output, table: table))
        }
        observe(observer, t.intermediate.name, pixelTensor(b.hidden, ffn), unfoldPatch: ps)
        parallel(pixels, grain: 32, GEMMStep(a: b.hidden, aRows: .strided(ffn), k: ffn, b: fc2.packed, output: b.branch,
                                             outRows: .strided(dim), stage: fc2.output, table: nil))
        observe(observer, t.output.name, pixelTensor(b.branch, dim), unfoldPatch: ps)
        let add2 = adds[t.name]!
        parallel(pixels, grain: 256, AddStep(a: x, aStride: dim, b: b.branch, bStride: dim, output: x, outputStride: dim,
                                             columns: dim, parameters: add2, isa: isa))
        observe(observer, t.name, pixelTensor(x, dim), unfoldPatch: ps)
    }
}
