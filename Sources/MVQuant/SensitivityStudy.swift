import MVFloat
import MVFormats
import MVKernels
import MVModel

/// Which tensors cost accuracy: the float model is run with the int8 model's rounding simulated
/// (`FakeQuantization`) and, variant by variant, a group of tensors given more bits (16, or fewer
/// for the bit-width sweep over all activations) or the weights kept in float; each variant's top-1
/// agreement with float over labelled images says what giving that group more precision would buy.
public struct SensitivityStudy {
    public struct Variant: Sendable {
        public var name: String
        /// Tensors rounded to `wideBits` bits instead of 8.
        public var wide: Set<String>
        public var wideBits: Int
        public var floatWeights: Bool

        public init(name: String, wide: Set<String>, wideBits: Int = 16, floatWeights: Bool = false) {
            self.name = name
            self.wide = wide
            self.wideBits = wideBits
            self.floatWeights = floatWeights
        }
    }

    public struct Result: Sendable {
        public var variant: Variant
        public var agreement: Double
        public var top1: Double?
    }

    /// The groups worth asking about in MobileViT, given the quantised tensors' names.
    public static func standardVariants(_ graph: MobileViTGraph, quantised: Set<String>) -> [Variant] {
        var depthwise: Set<String> = [], expand: Set<String> = [], transformer: Set<String> = []
        let network = graph.network
        for op in network.operators {
            switch op.kind {
            case let .conv(l) where l.isDepthwise:
                depthwise.insert(op.output)
                expand.insert(op.inputs[0])  // the inverted residual's expansion
            case let .attention(t):
                // Every tensor of the transformer layer: its own outputs and the names it derives.
                transformer.formUnion(quantised.filter { $0 == t.name || $0.hasPrefix(t.name + ".") })
            default: break
            }
        }
        let preacts = quantised.filter { $0.hasSuffix(".preact") }
        // A dense head's tensors (DeepLabV3's ASPP and projection), after the backbone's last stage.
        var head: Set<String> = []
        if network.isDense, let last = network.operators.lastIndex(where: { $0.output == "mobilevit.encoder.layer.4" || network.aliases[$0.output]?.contains("mobilevit.encoder.layer.4") == true }) {
            head = Set(network.operators[(last + 1)...].map(\.output)).union([TensorNames.asppConcat]).intersection(quantised)
        }
        let gemmInputs = network.gemmInputTensors.intersection(quantised)
        return [
            Variant(name: "all 8-bit (the int8 model)", wide: []),
            Variant(name: "weights in float", wide: [], floatWeights: true),
            Variant(name: "all activations 16-bit", wide: quantised),
            Variant(name: "all activations 9-bit", wide: quantised, wideBits: 9),
            Variant(name: "all activations 10-bit", wide: quantised, wideBits: 10),
            Variant(name: "all activations 12-bit", wide: quantised, wideBits: 12),
            Variant(name: "depthwise outputs 16-bit", wide: depthwise),
            Variant(name: "depthwise pre-activations 16-bit", wide: Set(depthwise.map(TensorNames.preact)).intersection(quantised)),
            Variant(name: "all SiLU pre-activations 16-bit", wide: preacts),
            Variant(name: "expand outputs 16-bit", wide: expand),
            Variant(name: "transformer tensors 16-bit", wide: transformer),
            Variant(name: "depthwise outputs + pre-activations 16-bit", wide: depthwise.union(preacts)),
            Variant(name: "GEMM inputs 16-bit", wide: gemmInputs),
            Variant(name: "all but GEMM inputs 16-bit", wide: quantised.subtracting(gemmInputs)),
        ] + (head.isEmpty ? [] : [
            Variant(name: "segmentation head 16-bit", wide: head),
            Variant(name: "backbone 16-bit", wide: quantised.subtracting(head)),
        ])
    }

    /// - Parameters:
    ///   - image: NCHW pixel values of image `i` and its label (nil if unlabelled); called from several threads.
    ///   - progress: images done.
    /// - Returns: the float model's top-1 (nil without labels) and one result per variant.
    public static func run(checkpoint: Checkpoint, weights: Checkpoint, activations: [String: QuantParams],
                           variants: [Variant], count: Int, height: Int, width: Int, threads: Int,
                           image: @escaping @Sendable (Int) throws -> (pixels: [Float], label: Int?),
                           progress: (Int) -> Void = { _ in }) throws -> (floatTop1: Double?, results: [Result]) {
        let threads = max(1, threads)
        let exact = (0..<threads).map { _ in FloatExecutor(checkpoint: checkpoint) }
        let rounded = (0..<threads).map { _ in FloatExecutor(checkpoint: weights) }
        // A classifier predicts one class; a dense head one per pixel of its logit map (agreement
        // is then over pixels).
        let classes = try exact[0].logitShape(height: height, width: width).channels
        // predictions[i * (variants + 1)]: float; then one per variant.
        let stride = variants.count + 1
        var predictions = [[Int]](repeating: [], count: count * stride)
        var labels = [Int?](repeating: nil, count: count)
        let pool = ThreadPool(threads: threads)
        try predictions.withUnsafeMutableBufferPointer { preds in
            try labels.withUnsafeMutableBufferPointer { labelsOut in
                try pool.parallelForThrowing(count, progress: progress) { i, worker in
                    let (pixels, label) = try image(i)
                    labelsOut[i] = label
                    preds[i * stride] = argmax(exact[worker].run(nchw: pixels, height: height, width: width), classes: classes)
                    for (v, variant) in variants.enumerated() {
                        let executor = variant.floatWeights ? exact[worker] : rounded[worker]
                        let logits = executor.run(nchw: pixels, height: height, width: width) { name, shape, values in
                            guard let p = activations[name], let c = shape.last else { return }
                            FakeQuantization.round(values, channels: c, params: p, bits: variant.wide.contains(name) ? variant.wideBits : 8)
                        }
                        preds[i * stride + 1 + v] = argmax(logits, classes: classes)
                    }
                }
            }
        }
        let labelled = labels.compactMap { $0 }.count
        func top1(_ column: Int) -> Double? {
            guard labelled > 0 else { return nil }
            let hits = (0..<count).filter { labels[$0] != nil && predictions[$0 * stride + column] == [labels[$0]!] }.count
            return Double(hits) / Double(labelled)
        }
        let results = variants.enumerated().map { v, variant in
            var agree = 0, total = 0
            for i in 0..<count {
                let a = predictions[i * stride], b = predictions[i * stride + 1 + v]
                agree += zip(a, b).filter { $0 == $1 }.count
                total += a.count
            }
            return Result(variant: variant, agreement: Double(agree) / Double(max(total, 1)), top1: top1(1 + v))
        }
        return (top1(0), results)
    }

    /// The class of each pixel (one for a classifier's logits).
    static func argmax(_ x: [Float], classes: Int) -> [Int] {
        stride(from: 0, to: x.count, by: classes).map { base in
            (base..<(base + classes)).max { x[$0] < x[$1] }! - base
        }
    }

    static func argmax(_ x: [Float]) -> Int { x.indices.max { x[$0] < x[$1] } ?? -1 }
}
