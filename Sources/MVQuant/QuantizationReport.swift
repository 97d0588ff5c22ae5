import MVFloat
import MVInt8
import MVModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Signal-to-quantisation-noise ratio of every int8 activation against the float executor on the
/// same images: 10·log10(Σ f² / Σ (f − dequant(q))²), accumulated over the images. A low figure
/// shows which layer costs accuracy.
public struct QuantizationReport: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var sqnr: Double
        public var scale: Double
        public var zeroPoint: Int32
    }

    public var rows: [Row]
    public var images: Int

    public static func measure(checkpoint: Checkpoint, model: QuantizedModel, images: [[Float]], height: Int, width: Int) throws
        -> QuantizationReport
    {
        let float = FloatExecutor(checkpoint: checkpoint)
        let int8 = try Int8Executor(model: model, threads: 1)
        var signal: [String: Double] = [:], noise: [String: Double] = [:]
        var order: [String] = []
        var params: [String: QuantParams] = [:]
        for image in images {
            var reference: [String: ([Int], [Float])] = [:]
            _ = float.run(nchw: image, height: height, width: width) { name, shape, values in
                reference[name] = (shape, Array(values))
            }
            _ = image.withUnsafeBufferPointer { x in
                int8.run(nchw: x, height: height, width: width) { name, shape, data, stride, p, unfoldPatch in
                    guard let (_, f) = reference[name] else { return }
                    let q = Self.dequantize(shape: shape, data: data, stride: stride, params: p)
                    // Transformer tensors: float keeps [P, N, C] token order, int8 pixel order on the grid.
                    let aligned = unfoldPatch.map { Self.unfold(q, shape: shape, patch: $0) } ?? q
                    guard aligned.count == f.count else { return }
                    if signal[name] == nil { order.append(name) }
                    params[name] = p
                    var s = 0.0, n = 0.0
                    for i in 0..<f.count {
                        let a = Double(f[i]), d = a - Double(aligned[i])
                        s += a * a
                        n += d * d
                    }
                    signal[name, default: 0] += s
                    noise[name, default: 0] += n
                }
            }
        }
        let rows = order.map { name -> Row in
            let n = noise[name]!, s = signal[name]!
            return Row(name: name, sqnr: n > 0 ? 10 * log10(max(s, 1e-30) / n) : .infinity,
                       scale: params[name]!.scale, zeroPoint: params[name]!.zeroPoint)
        }
        return QuantizationReport(rows: rows, images: images.count)
    }

    static func dequantize(shape: [Int], data: UnsafePointer<Int8>, stride: Int, params p: QuantParams) -> [Float] {
        let c = shape[2], pixels = shape[0] * shape[1]
        var out = [Float](repeating: 0, count: pixels * c)
        for px in 0..<pixels {
            for ch in 0..<c { out[px * c + ch] = p.dequantize(data[px * stride + ch], channel: ch) }
        }
        return out
    }

    /// Pixel order [H, W, C] to transformers' unfolded [P, N, C].
    static func unfold(_ x: [Float], shape: [Int], patch ps: Int) -> [Float] {
        let (h, w, c) = (shape[0], shape[1], shape[2])
        guard h % ps == 0, w % ps == 0 else { return x }
        let n = (h / ps) * (w / ps)
        var out = [Float](repeating: 0, count: x.count)
        for y in 0..<h {
            for xx in 0..<w {
                let token = ((y % ps) * ps + xx % ps) * n + (y / ps) * (w / ps) + xx / ps
                for ch in 0..<c { out[token * c + ch] = x[(y * w + xx) * c + ch] }
            }
        }
        return out
    }
}
