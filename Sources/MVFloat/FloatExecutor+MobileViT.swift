import MVKernels
import MVModel

extension FloatExecutor {
    /// The MobileViT block: local convs, unfold, transformer, fold, projection, concat, fusion.
    func mobileViTBlock(_ b: PreparedMobileViTBlock, _ input: Tensor, _ observer: ActivationObserver?) -> Tensor {
        var x = input
        if let d = b.downsampling { x = invertedResidual(d, x, observer) }
        let name = b.block.name
        let c = x.c, d = b.block.hiddenSize
        // The concat buffer [H, W, 2C]: the block input in the first C channels, the projection
        // in the second C, so the concat costs one copy of the input and none of the projection.
        let out = arena.allocate(x.h * x.w * c)
        let mark = arena.mark
        let concat = arena.allocate(x.h * x.w * 2 * c)
        for p in 0..<(x.h * x.w) { (concat + p * 2 * c).update(from: x.data + p * c, count: c) }

        let local = conv(b.convKxK, x, observer)
        let features = conv(b.conv1x1, local, observer)

        // Unfold: resize up to a multiple of the patch size when needed (as transformers does),
        // then gather tokens [P, N, d] with P = patch area, N = number of patches.
        let ps = b.block.patchSize
        let nh = (x.h + ps - 1) / ps * ps, nw = (x.w + ps - 1) / ps * ps
        var grid = features
        if nh != x.h || nw != x.w {
            grid = Tensor(data: arena.allocate(nh * nw * d), h: nh, w: nw, c: d)
            bilinearResize(features, into: grid)
        }
        let patches = ps * ps, tokens = (nh / ps) * (nw / ps)
        let seq = arena.allocate(patches * tokens * d)
        forEachToken(grid: grid, patchSize: ps) { pixel, token in
            (seq + token * d).update(from: grid.data + pixel * d, count: d)
        }
        for layer in b.transformer { transformerLayer(layer, seq, patches: patches, tokens: tokens, observer) }
        observer?("\(name).transformer", [patches, tokens, d], UnsafeMutableBufferPointer(start: seq, count: patches * tokens * d))
        layerNorm(b.layerNorm, seq, rows: patches * tokens, channels: d, seq)
        observer?(b.block.layerNorm.name, [patches, tokens, d], UnsafeMutableBufferPointer(start: seq, count: patches * tokens * d))

        // Fold back into the grid, and resize down to the feature map's size if it was resized.
        forEachToken(grid: grid, patchSize: ps) { pixel, token in
            (grid.data + pixel * d).update(from: seq + token * d, count: d)
        }
        var folded = grid
        if nh != x.h || nw != x.w {
            folded = Tensor(data: arena.allocate(x.h * x.w * d), h: x.h, w: x.w, c: d)
            bilinearResize(grid, into: folded)
        }
        _ = conv(b.projection, folded, observer, into: concat + c, outStride: 2 * c)
        var fused = conv(b.fusion, Tensor(data: concat, h: x.h, w: x.w, c: 2 * c), observer, into: out)
        arena.release(to: mark)
        fused.data = out
        return fused
    }

    /// Calls `body(pixel, token)` for every pixel of the grid, where token = p·N + n is the
    /// row of transformers' unfolded [P, N, C] layout (p the position inside the patch, n the patch).
    func forEachToken(grid: Tensor, patchSize ps: Int, _ body: (Int, Int) -> Void) {
        let pw = grid.w / ps
        let n = (grid.h / ps) * pw
        for y in 0..<grid.h {
            for x in 0..<grid.w {
                let p = (y % ps) * ps + (x % ps)
                let patch = (y / ps) * pw + (x / ps)
                body(y * grid.w + x, p * n + patch)
            }
        }
    }

    /// Emits a tensor that may be a channel slice of a wider buffer (pixel stride > channels) as a
    /// contiguous copy, and writes back what the observer changed (only called when observing).
    func emitSlice(_ observer: ActivationObserver?, _ name: String, _ t: Tensor, stride: Int) {
        guard stride != t.c else { return emit(observer, name, t) }
        let mark = arena.mark
        let copy = arena.allocate(t.count)
        for p in 0..<(t.h * t.w) { (copy + p * t.c).update(from: t.data + p * stride, count: t.c) }
        emit(observer, name, Tensor(data: copy, h: t.h, w: t.w, c: t.c))
        for p in 0..<(t.h * t.w) { (t.data + p * stride).update(from: copy + p * t.c, count: t.c) }
        arena.release(to: mark)
    }

    func transformerLayer(_ t: PreparedTransformerLayer, _ x: UnsafeMutablePointer<Float>, patches: Int, tokens: Int,
                          _ observer: ActivationObserver?) {
        let d = t.layer.hiddenSize, rows = patches * tokens
        let heads = t.layer.heads, dh = t.layer.headSize
        let mark = arena.mark
        func observe(_ name: String, _ p: UnsafeMutablePointer<Float>, _ c: Int) {
            observer?(name, [patches, tokens, c], UnsafeMutableBufferPointer(start: p, count: rows * c))
        }
        let normed = arena.allocate(rows * d)
        layerNorm(t.ln1, x, rows: rows, channels: d, normed)
        observe("\(t.layer.name).ln1", normed, d)
        let q = arena.allocate(rows * d), k = arena.allocate(rows * d), v = arena.allocate(rows * d)
        linear(t.q, normed, rows: rows, q)
        linear(t.k, normed, rows: rows, k)
        linear(t.v, normed, rows: rows, v)
        observe(t.layer.query.name, q, d)
        observe(t.layer.key.name, k, d)
        observe(t.layer.value.name, v, d)

        // Attention among the N tokens that share a position inside the patch, head by head.
        let context = arena.allocate(rows * d)
        let scores = arena.allocate(tokens * tokens)
        let packed = arena.allocate(Float32Kernels.packedCount(n: max(tokens, dh), k: max(tokens, dh)))
        let zeros = arena.allocate(max(tokens, dh) + Float32Kernels.panelWidth)
        zeros.update(repeating: 0, count: max(tokens, dh) + Float32Kernels.panelWidth)
        let scale = 1 / Float(dh).squareRoot()
        for p in 0..<patches {
            for h in 0..<heads {
                let base = p * tokens * d + h * dh
                Float32Kernels.packB(k + base, n: tokens, k: dh, rowStride: d, into: packed)
                Float32Kernels.gemm(a: q + base, lda: d, m: tokens, k: dh, packedB: packed, bias: zeros,
                                    n: tokens, c: scores, ldc: tokens)
                Float32Kernels.softmax(scores, rows: tokens, length: tokens, rowStride: tokens, scale: scale)
                Float32Kernels.packBTransposed(v + base, n: dh, k: tokens, kStride: d, into: packed)
                Float32Kernels.gemm(a: scores, lda: tokens, m: tokens, k: tokens, packedB: packed, bias: zeros,
                                    n: dh, c: context + base, ldc: d)
            }
        }
        observe("\(t.layer.name).context", context, d)
        let attention = q  // q is no longer needed
        linear(t.attentionOutput, context, rows: rows, attention)
        observe(t.layer.attentionOutput.name, attention, d)
        for i in 0..<(rows * d) { x[i] += attention[i] }
        observe("\(t.layer.name).residual1", x, d)

        layerNorm(t.ln2, x, rows: rows, channels: d, normed)
        observe("\(t.layer.name).ln2", normed, d)
        let ffn = t.layer.intermediate.outFeatures
        let hidden = arena.allocate(rows * ffn)
        let act = PreparedConv.kernelActivation(t.layer.activation)
        let fused = observer == nil && act != .gelu ? act : .none
        linear(t.fc1, normed, rows: rows, hidden, activation: fused)
        if fused == .none {
            observe("\(t.layer.intermediate.name).preact", hidden, ffn)
            Float32Kernels.activation(hidden, count: rows * ffn, kind: act)
        }
        observe(t.layer.intermediate.name, hidden, ffn)
        let mlp = k  // k is no longer needed
        linear(t.fc2, hidden, rows: rows, mlp)
        observe(t.layer.output.name, mlp, d)
        for i in 0..<(rows * d) { x[i] += mlp[i] }
        observe(t.layer.name, x, d)
        arena.release(to: mark)
    }

    /// PyTorch's bilinear interpolation with align_corners=False (no antialiasing).
    func bilinearResize(_ src: Tensor, into dst: Tensor) {
        let c = src.c
        let sy = Float(src.h) / Float(dst.h), sx = Float(src.w) / Float(dst.w)
        func source(_ i: Int, _ scale: Float, _ size: Int) -> (Int, Int, Float) {
            let s = max(scale * (Float(i) + 0.5) - 0.5, 0)
            let i0 = min(Int(s), size - 1)
            let i1 = min(i0 + 1, size - 1)
            return (i0, i1, s - Float(i0))
        }
        for y in 0..<dst.h {
            let (y0, y1, ly) = source(y, sy, src.h)
            for x in 0..<dst.w {
                let (x0, x1, lx) = source(x, sx, src.w)
                let a = src.data + (y0 * src.w + x0) * c, b = src.data + (y0 * src.w + x1) * c
                let e = src.data + (y1 * src.w + x0) * c, f = src.data + (y1 * src.w + x1) * c
                let o = dst.data + (y * dst.w + x) * c
                for ch in 0..<c {
                    let top = (1 - lx) * a[ch] + lx * b[ch]
                    let bottom = (1 - lx) * e[ch] + lx * f[ch]
                    o[ch] = (1 - ly) * top + ly * bottom
                }
            }
        }
    }
}
