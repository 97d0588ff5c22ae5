import MVFormats
import MVKernels
import MVModel

let benchCommand = Command(
    name: "bench",
    summary: "Measure single-image latency (min/median/p90/p99), peak memory and model size",
    usage: "--model DIR|FILE.mvq [--size HxW] [--image FILE] [--threads N] [--iterations K] [--warmup W] [--json OUT] [--layers] [--verbose]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (float) or .mvq file (int8)"),
        OptionSpec(name: "--size", value: "HxW", help: "input size (default: the model's)"),
        OptionSpec(name: "--image", value: "FILE", help: "time on this image, preprocessed as the model says at --size, instead of the pseudo-random one"),
        OptionSpec(name: "--threads", value: "N", help: "threads (default: number of cores; the float path uses 1)"),
        OptionSpec(name: "--iterations", value: "K", help: "timed runs (default 30)"),
        OptionSpec(name: "--warmup", value: "W", help: "untimed runs first (default 3)"),
        OptionSpec(name: "--json", value: "OUT", help: "write the results as JSON ('-' for stdout)"),
        OptionSpec(name: "--layers", value: nil, help: "int8: also time each layer (median over the runs)"),
        OptionSpec(name: "--verbose", value: nil, help: "log the kernels selected for this CPU"),
    ],
    details: "The input is a fixed pseudo-random image, or --image; latency covers one forward pass (logits included; for a segmentation model also the label map at the input size, whose cost depends on the image: a noise image's map is all region borders)."
) { args in
    let path = try args.required("--model")
    let model = try LoadedModel.load(path)
    let (h, w) = try args.size("--size") ?? model.defaultSize
    try checkInputSize(h, w)
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    let iterations = try args.int("--iterations", default: 30, range: 1...100_000)
    let warmup = try args.int("--warmup", default: 3, range: 0...100_000)
    if args.has("--verbose") {
        for line in model.kernelLog(threads: threads) { Console.info(line) }
    }
    let c = model.graph.config.numChannels
    var state: UInt32 = 12345
    var input = (0..<(c * h * w)).map { _ -> Float in
        state = state &* 1_664_525 &+ 1_013_904_223
        return Float(state >> 8) / Float(1 << 24)
    }
    if let image = args.value("--image") {
        let x = try ImageLoading(args).requiredPixelValues(try model.checkedPreprocessor(size: (h, w)), path: image)
        guard x.height == h, x.width == w, x.values.count == input.count else {
            throw InputError("\(image): preprocessed to \(x.height)×\(x.width), not the \(h)×\(w) to time")
        }
        input = x.values
    }
    let wantsLayers = args.has("--layers")
    if wantsLayers && !model.isInt8 { throw UsageError("--layers needs an int8 .mvq model") }
    let runner = try model.makeRunner(threads: threads)
    var times = [Double](repeating: 0, count: iterations)
    // A segmentation model's run includes its label map at the input's size.
    let dense = runner.isDense
    var logits = [Float](repeating: 0, count: try model.graph.network.shapes(height: h, width: w)[model.graph.network.output]!.count)
    var labels = [Int32](repeating: 0, count: dense ? h * w : 0)
    try input.withUnsafeBufferPointer { x in
        try logits.withUnsafeMutableBufferPointer { out in
            try labels.withUnsafeMutableBufferPointer { labels in
                func once() throws {
                    if dense {
                        try runner.segment(nchw: x, height: h, width: w, logits: out, labels: labels)
                    } else {
                        runner.logits(nchw: x, height: h, width: w, into: out)
                    }
                }
                for _ in 0..<warmup { try once() }
                for i in 0..<iterations {
                    let t0 = monotonicSeconds()
                    try once()
                    times[i] = (monotonicSeconds() - t0) * 1000
                }
            }
        }
    }
    // Per-layer times in separate runs after the timed ones (the observer's clock reads stay out
    // of the latency figures).
    var layers: [(String, Double)] = []
    if wantsLayers, let int8 = runner as? Int8Runner {
        // Every run reports the same tensors in the same order.
        let runs = try input.withUnsafeBufferPointer { x in
            try logits.withUnsafeMutableBufferPointer { out in
                try labels.withUnsafeMutableBufferPointer { labels in
                    try (0..<iterations).map { _ in
                        try int8.layerTimes(nchw: x, height: h, width: w, into: out, labels: dense ? labels : nil)
                    }
                }
            }
        }
        layers = runs[0].indices.map { j in (runs[0][j].0, quantile(runs.map { $0[j].1 }.sorted(), 0.5)) }
    }
    times.sort()
    let macs = try model.graph.network.summary(height: h, width: w).reduce(0) { $0 + $1.macs }
    let median = quantile(times, 0.5)
    let peak = peakResidentBytes()
    let size = model.fileSize
    args.report("\(model.graph.config.variantName) \(model.kindDescription), \(h)×\(w), \(threads) thread(s), \(iterations) runs")
    args.report("latency ms: min \(fixed(times[0], 3))  median \(fixed(median, 3))  p90 \(fixed(quantile(times, 0.9), 3))  p99 \(fixed(quantile(times, 0.99), 3))")
    args.report("throughput: \(fixed(Double(macs) / (median / 1000) / 1e9, 2)) GMAC/s (\(fixed(Double(macs) / 1e6, 1)) M MACs per image)")
    args.report("peak resident memory: \(fixed(Double(peak) / 1_048_576, 1)) MiB, model size: \(fixed(Double(size) / 1_048_576, 2)) MiB")
    if !layers.isEmpty {
        args.report(layerReport(layers))
    }
    if let out = args.value("--json") {
        var fields: [(String, JSON)] = [
            ("model", .string(path)), ("kind", .string(model.kindDescription)),
            ("isa", .string(model.isInt8 ? KernelISA.best.rawValue : "float32")),
            ("size", [.number(Double(h)), .number(Double(w))]),
            ("threads", .number(Double(threads))), ("iterations", .number(Double(iterations))),
            ("min_ms", .number(times[0])), ("median_ms", .number(median)), ("p90_ms", .number(quantile(times, 0.9))),
            ("p99_ms", .number(quantile(times, 0.99))), ("macs", .number(Double(macs))),
            ("peak_rss_bytes", .number(Double(peak))), ("model_bytes", .number(Double(size))),
        ]
        if !layers.isEmpty {
            fields.append(("layers", .array(layers.map { .object([("tensor", .string($0.0)), ("median_ms", .number($0.1))]) })))
        }
        try writeJSON(.object(fields), to: out)
    }
    return 0
}

/// Per-layer medians as a table (every produced tensor, in execution order) followed by the
/// total per operator kind (the tensor name's last component).
func layerReport(_ layers: [(String, Double)]) -> String {
    let total = layers.reduce(0) { $0 + $1.1 }
    var rows: [[String]] = [["tensor", "median ms", "share"]]
    for (name, t) in layers {
        rows.append([name.replacingPrefix("mobilevit.", with: ""), fixed(t, 3), fixed(100 * t / total, 1) + "%"])
    }
    var byKind: [String: Double] = [:]
    for (name, t) in layers {
        // A block's or transformer layer's own name is its residual addition's output.
        let last = name.split(separator: ".").last { Int($0) == nil }.map(String.init) ?? name
        byKind[last == "layer" ? "residual add" : last, default: 0] += t
    }
    var kinds: [[String]] = [["operator (by tensor name)", "ms", "share"]]
    for (kind, t) in byKind.sorted(by: { $0.value > $1.value }) {
        kinds.append([kind, fixed(t, 3), fixed(100 * t / total, 1) + "%"])
    }
    return "per-layer medians (sum \(fixed(total, 3)) ms):\n" + table(rows, rightAlign: [1, 2]) + "\n\n" + table(kinds, rightAlign: [1, 2])
}
