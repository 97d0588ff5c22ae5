import MVKernels
import MVModel

extension FloatExecutor {
    /// Floats of scratch an attention operator needs: the scores of one (position, head) block,
    /// a packed operand, and a zero bias.
    static func attentionScratch(tokens: Int, headSize dh: Int) -> (scores: Int, packed: Int, zeros: Int) {
        (tokens * tokens, Float32Kernels.packedCount(n: max(tokens, dh), k: max(tokens, dh)),
         max(tokens, dh) + Float32Kernels.panelWidth)
    }

    /// Attention among the N tokens that share a position inside the patch, head by head, on
    /// tokens stored [P, N, C].
    func attention(_ t: TransformerLayer, patchSize ps: Int, q: Tensor, k: Tensor, v: Tensor, context: Tensor,
                   scratch: UnsafeMutablePointer<Float>) {
        let d = t.hiddenSize, heads = t.heads, dh = t.headSize
        let patches = ps * ps, tokens = q.pixels / patches
        let sizes = Self.attentionScratch(tokens: tokens, headSize: dh)
        let scores = scratch, packed = scratch + sizes.scores, zeros = packed + sizes.packed
        zeros.update(repeating: 0, count: sizes.zeros)
        let scale = 1 / Float(dh).squareRoot()
        for p in 0..<patches {
            for h in 0..<heads {
                let base = p * tokens * d + h * dh
                Float32Kernels.packB(k.data + base, n: tokens, k: dh, rowStride: d, into: packed)
                Float32Kernels.gemm(a: q.data + base, lda: d, m: tokens, k: dh, packedB: packed, bias: zeros,
                                    n: tokens, c: scores, ldc: tokens)
                Float32Kernels.softmax(scores, rows: tokens, length: tokens, rowStride: tokens, scale: scale)
                Float32Kernels.packBTransposed(v.data + base, n: dh, k: tokens, kStride: d, into: packed)
                Float32Kernels.gemm(a: scores, lda: tokens, m: tokens, k: tokens, packedB: packed, bias: zeros,
                                    n: dh, c: context.data + base, ldc: d)
            }
        }
    }

    /// Calls `body(pixel, token)` for every pixel of an H×W grid, where token = p·N + n is the
    /// row of transformers' unfolded [P, N, C] layout (p the position inside the patch, n the patch).
    func forEachToken(height: Int, width: Int, patchSize ps: Int, _ body: (Int, Int) -> Void) {
        let pw = width / ps
        let n = (height / ps) * pw
        for y in 0..<height {
            for x in 0..<width {
                let p = (y % ps) * ps + (x % ps)
                let patch = (y / ps) * pw + (x / ps)
                body(y * width + x, p * n + patch)
            }
        }
    }

    /// PyTorch's bilinear interpolation with align_corners=False (no antialiasing), on whole buffers.
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
                let a = src.data + (y0 * src.w + x0) * src.stride, b = src.data + (y0 * src.w + x1) * src.stride
                let e = src.data + (y1 * src.w + x0) * src.stride, f = src.data + (y1 * src.w + x1) * src.stride
                let o = dst.data + (y * dst.w + x) * dst.stride
                for ch in 0..<c {
                    let top = (1 - lx) * a[ch] + lx * b[ch]
                    let bottom = (1 - lx) * e[ch] + lx * f[ch]
                    o[ch] = (1 - ly) * top + ly * bottom
                }
            }
        }
    }
}
