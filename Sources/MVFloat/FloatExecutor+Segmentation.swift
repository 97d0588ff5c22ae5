import MVModel

extension FloatExecutor {
    /// A dense head's label map: the logit map [h, w, classes] (NHWC) upsampled bilinearly
    /// (align_corners=False, source coordinates in float32 as PyTorch computes them) to
    /// `outputHeight`×`outputWidth`, then the argmax over classes at every pixel (the first
    /// maximum wins, as `torch.argmax`). Row-major [outputHeight, outputWidth].
    public static func labels(logits: UnsafeBufferPointer<Float>, height h: Int, width w: Int, classes: Int,
                              outputHeight: Int, outputWidth: Int) -> [Int32] {
        precondition(logits.count == h * w * classes, "logit map has \(logits.count) values, expected \(h)×\(w)×\(classes)")
        func axis(_ size: Int, _ out: Int) -> [(i0: Int, i1: Int, t: Float)] {
            let scale = Float(size) / Float(out)
            return (0..<out).map { o in
                let s = max(scale * (Float(o) + 0.5) - 0.5, 0)
                let i0 = min(Int(s), size - 1)
                return (i0, min(i0 + 1, size - 1), s - Float(i0))
            }
        }
        let rows = axis(h, outputHeight), columns = axis(w, outputWidth)
        var labels = [Int32](repeating: 0, count: outputHeight * outputWidth)
        let l = logits.baseAddress!
        for (y, r) in rows.enumerated() {
            for (x, c) in columns.enumerated() {
                let a = l + (r.i0 * w + c.i0) * classes, b = l + (r.i0 * w + c.i1) * classes
                let e = l + (r.i1 * w + c.i0) * classes, f = l + (r.i1 * w + c.i1) * classes
                var best = -Float.infinity, label = 0
                for k in 0..<classes {
                    let top = (1 - c.t) * a[k] + c.t * b[k]
                    let bottom = (1 - c.t) * e[k] + c.t * f[k]
                    let v = (1 - r.t) * top + r.t * bottom
                    if v > best { best = v; label = k }
                }
                labels[y * outputWidth + x] = Int32(label)
            }
        }
        return labels
    }
}
